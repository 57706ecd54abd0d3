// mkveth's NAT: outbound masquerading (--masquerade) and port forwards
// (-p HOSTPORT:PORT[/tcp|udp]), as one nftables table per lease in the
// launcher's namespace (lease/tables.ts: named after the host end, its
// comment the host end's record; deleted with the lease by the next launch
// or the reaper).
import { DeniedError, UsageError, parseIp, AF_INET } from '@netgrant/core';
import type { VethConfig } from './conf.js';

export interface Forward {
  proto: 'tcp' | 'udp';
  hostPort: number;
  port: number;
}

/** At most this many -p per launch (the record, in a 255-byte alias, lists them). */
export const MAX_FORWARDS = 8;

/** The -p values, checked against the syntax and the configuration's `ports`. */
export function parseForwards(texts: string[], config: VethConfig): Forward[] {
  if (texts.length > MAX_FORWARDS) throw new UsageError(`-p: at most ${MAX_FORWARDS}`);
  const out: Forward[] = [];
  for (const text of texts) {
    const m = /^([0-9]{1,5}):([0-9]{1,5})(?:\/(tcp|udp))?$/.exec(text);
    const f = m ? { proto: (m[3] ?? 'tcp') as 'tcp' | 'udp', hostPort: Number(m[1]), port: Number(m[2]) } : null;
    if (!f || f.hostPort < 1 || f.hostPort > 65535 || f.port < 1 || f.port > 65535) throw new UsageError(`-p: expected HOSTPORT:PORT[/tcp|udp] with ports 1-65535, got ${JSON.stringify(text)}`);
    if (out.some((o) => o.proto === f.proto && o.hostPort === f.hostPort)) throw new UsageError(`-p: host port ${f.hostPort}/${f.proto} given twice`);
    if (!config.ports.some(([lo, hi]) => f.hostPort >= lo && f.hostPort <= hi)) {
      throw new DeniedError(`-p ${text}: host port ${f.hostPort} is not one the configuration allows${config.ports.length ? ` (ports ${config.ports.map(([lo, hi]) => `${lo}-${hi}`).join(', ')})` : ' (no "ports")'}`);
    }
    out.push(f);
  }
  return out;
}

/** A forward as the lease record writes it. */
export const forwardText = (f: Forward) => `${f.proto}:${f.hostPort}:${f.port}`;

/** The lease's table: masquerading for traffic from its addresses leaving by another interface; DNAT of its host ports arriving for (or sent by the host to) a local address. */
export function natRuleset(hostIf: string, record: string, addresses: string[], masquerade: boolean, forwards: Forward[]): string {
  const families = addresses.map((a) => {
    const addr = a.split('/')[0]!;
    return parseIp(addr)!.family === AF_INET ? { nf: 'ipv4', ip: 'ip', addr, to: addr } : { nf: 'ipv6', ip: 'ip6', addr, to: `[${addr}]` };
  });
  const dnat = families.flatMap((f) => forwards.map((p) => `fib daddr type local meta nfproto ${f.nf} ${p.proto} dport ${p.hostPort} dnat ${f.ip} to ${f.to}:${p.port}`));
  const chain = (name: string, hook: string, priority: string, rules: string[]) => (rules.length ? [`chain ${name} {`, `type nat hook ${hook} priority ${priority}; policy accept;`, ...rules, '}'] : []);
  return [
    `table inet ${hostIf} {`,
    `comment "${record}"`,
    ...chain('postrouting', 'postrouting', 'srcnat', masquerade ? families.map((f) => `meta nfproto ${f.nf} ${f.ip} saddr ${f.addr} oifname != "${hostIf}" masquerade`) : []),
    ...chain('prerouting', 'prerouting', 'dstnat', dnat),
    ...chain('output', 'output', '-100', dnat),
    '}',
    '',
  ].join('\n');
}

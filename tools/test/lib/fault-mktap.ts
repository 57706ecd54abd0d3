// Fault-injection targets (tools/test/lib/faults.ts) for mktap chains run
// directly: the chain's fds checked in its final program, taps and locks
// checked in every namespace the test made.
import { run, sh, SHOW_FDS } from './harness.js';
import type { Target, Outcome } from './faults.js';
import { tunLinks, locksOn, locksOnFile } from './kernel-state.js';

/**
 * The final program: its fds, then the tap's line from ip (proof it exists
 * while held), with the tc filters at `filters` (ingress/egress) on the same line.
 */
export const report = (ipArgs = '', filters?: 'ingress' | 'egress') =>
  ['sh', '-c', `${SHOW_FDS}; ip ${ipArgs} -o -d link show "$TAPNAME" | tr -d '\n'${filters ? `; tc filter show dev "$TAPNAME" ${filters} | tr '\n' ' '` : ''}; echo`];

export interface MktapChain {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  /** Prefix before strace (a shell that opens fds for the chain). */
  wrap?: string[];
  fds: string;
  /** What the tap's `ip -d link` line must show. */
  shows: RegExp;
  netns?: string;
}

function problemsIn(where: string, links: ReturnType<typeof tunLinks>): string[] {
  return links.map((l) => `${where}: ${l.name}${l.persist ? ' (persistent)' : ''}`);
}

export function mktapTarget(c: MktapChain, netnsInodes: number[]): Target {
  return {
    name: c.name,
    programs: ['mktap'],
    async run(strace): Promise<Outcome> {
      const r = run([...(c.wrap ?? []), ...strace, ...c.argv], { env: c.env });
      return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
    },
    checkOk(o) {
      const [fds, link] = o.stdout.split('\n');
      if (fds!.trim() !== c.fds) return `the next program got fds ${JSON.stringify(fds)}, expected ${c.fds}`;
      if (!c.shows.test(link ?? '')) return `the tap is not as asked: ${link}`;
      return null;
    },
    leftovers(after, step, steps, o) {
      const problems: string[] = [];
      // A persistent tap outlives its chain by design: after a success, or a
      // kill or a failed exec once TUNSETPERSIST ran, one complete tap may
      // remain (removed here).
      const persistAt = steps.findIndex((s) => s.kind === 'ioctl TUNSETPERSIST');
      const mayPersist = o.status === 0 || ((after === 'kill' || o.status === 126) && persistAt >= 0 && step !== undefined && steps.indexOf(step) > persistAt);
      for (const ns of c.netns ? [undefined, c.netns] : [undefined]) {
        const links = tunLinks(ns);
        const allowed = mayPersist ? links.filter((l) => l.persist && l.user === 'nobody') : [];
        if (allowed.length > 1) problems.push(`${allowed.length} persistent taps from one request`);
        for (const l of allowed) sh(`ip ${ns ? `-n ${ns} ` : ''}link del ${l.name}`);
        problems.push(...problemsIn(ns ?? 'test namespace', links.filter((l) => !allowed.includes(l))));
      }
      for (const ino of netnsInodes) problems.push(...locksOn(ino).map((l) => `lock held: ${l.trim()}`));
      problems.push(...locksOnFile('/run/netgrant/lease.lock').map((l) => `lease lock held: ${l.trim()}`));
      return problems.length ? problems.join('; ') : null;
    },
  };
}

// Delegated IPAM, the CNI way (SPEC §4, "Delegated plugins"): the network's
// "ipam": {"type": NAME, ...} names a plugin, NAME a plain file name (no
// slash), found as the first executable NAME in CNI_PATH's entries (every
// one absolute; a plugin not root's, or writable by group or others, is
// refused: it would run as root). It runs with the request's CNI_*
// variables (and nothing else) and the network configuration on stdin, for
// ADD, DEL and CHECK; an ADD's result (ips, routes, dns) is checked here
// and then applied to the interface by the creator.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { AF_INET6, parseIp, type Route } from '@netgrant/core';
import type { Assigned } from '@netgrant/lease';
import { CniError, CODE, type CniEnv, type NetConf } from './spec.js';

const PLUGIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TIMEOUT_MS = 30000;
const MAX_OUTPUT = 1 << 20;

export interface Ipam {
  type: string;
  /** The plugin's file. */
  file: string;
}

type Json = Record<string, unknown>;

/** The network's IPAM plugin, found and checked; undefined without "ipam". */
export function ipamOf(conf: NetConf, env: CniEnv): Ipam | undefined {
  const ipam = conf.raw.ipam;
  if (ipam === undefined) return undefined;
  if (typeof ipam !== 'object' || ipam === null || Array.isArray(ipam)) throw new CniError(CODE.invalidConfig, 'ipam: not an object');
  const type = (ipam as Json).type;
  if (typeof type !== 'string' || !PLUGIN_NAME.test(type)) throw new CniError(CODE.invalidConfig, 'ipam: type is not a plugin name (letters, digits, _ . -; no slash)', JSON.stringify(type).slice(0, 80));
  if (env.path.length === 0) throw new CniError(CODE.invalidEnv, 'CNI_PATH not set (the IPAM plugin is looked up in it)');
  const relative = env.path.find((d) => !d.startsWith('/'));
  if (relative !== undefined) throw new CniError(CODE.invalidEnv, 'CNI_PATH: not an absolute directory', JSON.stringify(relative).slice(0, 200));
  for (const dir of env.path) {
    const file = `${dir.replace(/\/+$/, '')}/${type}`;
    let st;
    try {
      st = statSync(file);
    } catch {
      continue;
    }
    if (!st.isFile() || !(st.mode & 0o111)) continue;
    if (st.uid !== 0 || st.mode & 0o022) throw new CniError(CODE.invalidConfig, `ipam: plugin ${file} is not root's alone`, `uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}`);
    return { type, file };
  }
  throw new CniError(CODE.invalidConfig, `ipam: no plugin ${type} in CNI_PATH`, env.path.join(':').slice(0, 200));
}

/** Run the plugin for command; its stdout's JSON (null if empty). Its error JSON becomes a CniError with its code. */
export function runIpam(ipam: Ipam, command: 'ADD' | 'DEL' | 'CHECK', env: CniEnv, text: string): Json | null {
  const vars: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: env.containerId,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifname,
    CNI_ARGS: [...env.args].map(([k, v]) => `${k}=${v}`).join(';'),
    CNI_PATH: env.path.join(':'),
  };
  const r = spawnSync(ipam.file, [], { env: vars, input: text, timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = r.stdout?.toString('utf8').trim() ?? '';
  let json: Json | null = null;
  try {
    json = out ? (JSON.parse(out) as Json) : null;
  } catch {
    /* said below */
  }
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? (r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`);
    const code = typeof json?.code === 'number' && Number.isInteger(json.code) ? json.code : CODE.system;
    const msg = typeof json?.msg === 'string' ? `${json.msg}${typeof json.details === 'string' && json.details ? `: ${json.details}` : ''}` : (r.stderr?.toString('utf8').trim() || why);
    throw new CniError(code, `ipam: ${ipam.type} ${command} failed`, msg.slice(0, 400));
  }
  if (out && (json === null || typeof json !== 'object' || Array.isArray(json))) throw new CniError(CODE.decode, `ipam: ${ipam.type} ${command}: its output is not a JSON object`, out.slice(0, 80));
  return json;
}

/** DEL after a failed ADD: the plugin's error is not the one to report. */
export function releaseQuietly(ipam: Ipam, env: CniEnv, text: string): void {
  try {
    runIpam(ipam, 'DEL', env, text);
  } catch {
    /* the ADD's error is reported; the runtime's DEL will release it again */
  }
}

/** "a.b.c.d/n" (any host bits), its family's prefix range. */
function cidrOf(v: unknown, what: string): { ip: string; prefix: number; family: number } {
  const m = typeof v === 'string' ? /^([0-9a-fA-F:.]+)\/([0-9]{1,3})$/.exec(v) : null;
  const ip = m ? parseIp(m[1]!) : null;
  if (!m || !ip || Number(m[2]) > (ip.family === AF_INET6 ? 128 : 32)) throw new CniError(CODE.decode, `ipam: result: ${what} is not an address/prefix`, JSON.stringify(v).slice(0, 80));
  return { ip: m[1]!, prefix: Number(m[2]), family: ip.family };
}

function ipOf(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !parseIp(v)) throw new CniError(CODE.decode, `ipam: result: ${what} is not an address`, JSON.stringify(v).slice(0, 80));
  return v;
}

const listOf = (v: unknown, what: string): Json[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'object' || x === null)) throw new CniError(CODE.decode, `ipam: result: ${what} is not a list of objects`);
  return v as Json[];
};

/** An ADD result, checked: what the creator applies, and the result's routes and dns as the plugin gave them. */
export function assignedOf(result: Json | null): { assigned: Assigned; routes: Json[]; dns: Json } {
  const ips = listOf(result?.ips, 'ips');
  if (ips.length === 0) throw new CniError(CODE.decode, 'ipam: result: no ips');
  const addresses = ips.map((x, i) => cidrOf(x.address, `ips[${i}].address`));
  const gateways = ips.map((x, i) => ipOf(x.gateway, `ips[${i}].gateway`) ?? '');
  const routes: Route[] = [];
  const given: Json[] = [];
  listOf(result?.routes, 'routes').forEach((r, i) => {
    const dst = cidrOf(r.dst, `routes[${i}].dst`);
    const gw = ipOf(r.gw, `routes[${i}].gw`);
    // No gw: the gateway of the route's family (as the Go plugins' ipam.ConfigureIface does).
    const via = gw ?? gateways.find((g, j) => g !== '' && addresses[j]!.family === dst.family);
    routes.push({ family: dst.family, ...(dst.prefix > 0 ? { dst: dst.ip, prefix: dst.prefix } : {}), ...(via ? { gateway: via } : {}) });
    given.push({ dst: r.dst, ...(gw ? { gw } : {}) });
  });
  const dns = result?.dns;
  if (dns !== undefined && (typeof dns !== 'object' || dns === null || Array.isArray(dns))) throw new CniError(CODE.decode, 'ipam: result: dns is not an object');
  return { assigned: { addresses: addresses.map((a) => `${a.ip}/${a.prefix}`), gateways, routes }, routes: given, dns: (dns as Json | undefined) ?? {} };
}

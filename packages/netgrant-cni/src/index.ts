// netgrant-cni: a CNI plugin (containernetworking/cni SPEC 0.3.0-1.1.0)
// that gives containers netgrant's interfaces. A container runtime runs it
// with CNI_COMMAND and the other CNI_* variables set and the network's
// configuration on stdin; the result, or the error JSON, goes to stdout
// (its documented job), one line to stderr on failure. Rootful it does the
// work itself through the creators' shared code (lease: veth, the
// launchers' -N launch, the attachment tap; delegated IPAM: ipam.ts); its leases
// are keyed by (network, CNI_CONTAINERID, CNI_IFNAME) in the lease record.
import { readFileSync, writeSync } from 'node:fs';
import type { Program } from '@netgrant/core';
import { cniKey } from '@netgrant/lease';
import { CniError, CODE, SUPPORTED_VERSIONS, errorJson, parseNetConf, readEnv, type CniEnv, type NetConf } from './spec.js';
import { addResult } from './result.js';
import { addVeth, checkVeth, delVeth, gcVeth, vethPool } from './veth.js';
import { addRootless, rootless } from './rootless.js';
import { checkRootless, delRootless, gcRootless, statusRootless } from './rootless-ops.js';
import { addVlan, checkVlan, delVlan, gcVlan, vlanPlan } from './vlan.js';
import { addTap, checkTap, delTap, gcTap } from './tap.js';

/** Stdin is the request config: at most this much. */
const MAX_CONFIG = 1 << 20;

const KINDS = ['veth', 'tap', 'macvlan', 'ipvlan'] as const;
type Kind = (typeof KINDS)[number];

function readStdin(): string {
  let buf: Buffer;
  try {
    buf = readFileSync(0);
  } catch (e) {
    throw new CniError(CODE.io, 'read the network configuration from stdin', (e as Error).message);
  }
  if (buf.length > MAX_CONFIG) throw new CniError(CODE.invalidConfig, `the network configuration is over ${MAX_CONFIG} bytes`);
  return buf.toString('utf8');
}

/** The kind the network asks for: rootful every kind (delegated IPAM for macvlan and ipvlan); rootless, the service's chain makes it (veth, macvlan, ipvlan). */
function kindOf(conf: NetConf, viaService: boolean): Kind {
  const kind = conf.raw.kind ?? 'veth';
  if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind)) throw new CniError(CODE.invalidConfig, 'kind: unknown', `${JSON.stringify(kind).slice(0, 64)} (kinds: ${KINDS.join(', ')})`);
  if (kind === 'tap' && viaService) throw new CniError(CODE.unsupportedField, 'kind: not served rootless by this version of netgrant-cni', 'kind=tap');
  if (conf.raw.ipam !== undefined && (viaService || kind === 'veth' || kind === 'tap')) throw new CniError(CODE.unsupportedField, `ipam: delegated IPAM is for kinds macvlan and ipvlan, rootful; ${viaService ? 'rootless' : `kind ${kind}`}, the pool is netgrant's (config)`, `ipam=${JSON.stringify(conf.raw.ipam).slice(0, 64)}`);
  return kind as Kind;
}

/** prevResult's addresses on the attachment's interface (for CHECK), if there is a prevResult. */
function prevAddresses(conf: NetConf, ifname: string): string[] | undefined {
  const prev = conf.raw.prevResult as { interfaces?: { name?: string }[]; ips?: { address?: string; interface?: number }[] } | undefined;
  if (prev === undefined) return undefined;
  if (typeof prev !== 'object' || prev === null) throw new CniError(CODE.invalidConfig, 'prevResult: not an object');
  const ifs = Array.isArray(prev.interfaces) ? prev.interfaces : [];
  const ips = Array.isArray(prev.ips) ? prev.ips : [];
  return ips.filter((ip) => typeof ip.interface === 'number' && ifs[ip.interface]?.name === ifname).map((ip) => String(ip.address));
}

/** GC's still-valid attachments (cni.dev/valid-attachments, or cni.dev/attachments as spec 1.1.0 named it), as keys. */
function validKeys(conf: NetConf): Set<string> {
  const list = conf.raw['cni.dev/valid-attachments'] ?? conf.raw['cni.dev/attachments'] ?? [];
  if (!Array.isArray(list)) throw new CniError(CODE.invalidConfig, 'cni.dev/valid-attachments: not a list');
  const keys = new Set<string>();
  for (const a of list as { containerID?: unknown; ifname?: unknown }[]) {
    if (typeof a !== 'object' || a === null || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') throw new CniError(CODE.invalidConfig, 'cni.dev/valid-attachments: an entry is not {containerID, ifname}');
    try {
      keys.add(cniKey(conf.name, a.containerID, a.ifname));
    } catch {
      /* not an attachment this plugin could have made: nothing of ours to keep */
    }
  }
  return keys;
}

function attachmentKey(conf: NetConf, env: CniEnv): string {
  try {
    return cniKey(conf.name, env.containerId, env.ifname);
  } catch (e) {
    throw new CniError(CODE.invalidEnv, 'CNI_IFNAME: not an interface name', `${JSON.stringify(env.ifname.slice(0, 32))}: ${(e as Error).message}`);
  }
}

/**
 * Rootless: every command but VERSION asks the service, whose creator
 * (--cni) keys the lease by the attachment under the peer's uid and
 * answers DEL, CHECK, GC and STATUS from that uid's records alone
 * (rootless-ops.ts). The key's parts are checked here first, as rootful.
 */
async function serveRootless(env: CniEnv, conf: NetConf, kind: Kind): Promise<string> {
  if (env.command === 'ADD' || env.command === 'DEL' || env.command === 'CHECK') attachmentKey(conf, env);
  switch (env.command) {
    case 'ADD':
      return JSON.stringify(addResult(conf.cniVersion, await addRootless(env, conf, kind), prevOf(conf)));
    case 'DEL':
      await delRootless(env, conf, kind);
      return '';
    case 'CHECK':
      await checkRootless(env, conf, kind, prevAddresses(conf, env.ifname));
      return '';
    case 'GC':
      await gcRootless(conf, validKeys(conf));
      return '';
    case 'STATUS':
      await statusRootless(conf);
      return '';
  }
  return '';
}

function prevOf(conf: NetConf): Record<string, unknown> | undefined {
  const prev = conf.raw.prevResult;
  if (prev !== undefined && (typeof prev !== 'object' || prev === null || Array.isArray(prev))) throw new CniError(CODE.invalidConfig, 'prevResult: not an object');
  return prev as Record<string, unknown> | undefined;
}

/** One command; what goes to stdout on success ('' for none). */
async function serve(env: CniEnv, text: string): Promise<string> {
  if (env.command === 'VERSION') {
    let asked: unknown;
    try {
      asked = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    } catch {
      /* VERSION answers whatever it is sent */
    }
    const cniVersion = (SUPPORTED_VERSIONS as readonly unknown[]).includes(asked) ? (asked as string) : '1.1.0';
    return JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS });
  }
  const conf = parseNetConf(text, env.command);
  const viaService = rootless();
  const kind = kindOf(conf, viaService);
  if (viaService) return serveRootless(env, conf, kind);
  switch (env.command) {
    case 'ADD': {
      const key = attachmentKey(conf, env);
      const made = kind === 'veth' ? addVeth(env, conf, key) : kind === 'tap' ? addTap(env, conf, key) : addVlan(env, conf, text, key, kind);
      return JSON.stringify(addResult(conf.cniVersion, made, prevOf(conf)));
    }
    case 'DEL':
      if (kind === 'veth') delVeth(attachmentKey(conf, env));
      else if (kind === 'tap') delTap(env, attachmentKey(conf, env));
      else delVlan(env, conf, text, attachmentKey(conf, env));
      return '';
    case 'CHECK':
      if (kind === 'veth') checkVeth(env, attachmentKey(conf, env), prevAddresses(conf, env.ifname));
      else if (kind === 'tap') checkTap(env, attachmentKey(conf, env));
      else checkVlan(env, conf, text, attachmentKey(conf, env), kind, prevAddresses(conf, env.ifname));
      return '';
    case 'GC': {
      // Every kind's: a network's kind may have changed since its attachments were made.
      const valid = validKeys(conf);
      gcVeth(conf.name, valid);
      gcVlan(conf.name, valid);
      gcTap(conf.name, valid);
      return '';
    }
    case 'STATUS':
      try {
        if (kind === 'veth') vethPool(conf);
        else if (kind !== 'tap') vlanPlan(conf, kind);
      } catch (e) {
        throw new CniError(50, 'the pool cannot be read', (e as Error).message);
      }
      return '';
  }
  return '';
}

export const program: Program = {
  name: 'netgrant-cni',
  usage: '(run by a container runtime: CNI_COMMAND and the other CNI_* variables, the network configuration on stdin)',
  options: [],
  async run(chain) {
    let cniVersion = '1.0.0';
    try {
      const env = readEnv((k) => chain.env.get(k));
      const text = readStdin();
      try {
        const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
        if (typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v)) cniVersion = v;
      } catch {
        /* parseNetConf says what is wrong */
      }
      const out = await serve(env, text);
      if (out) writeSync(1, `${out}\n`);
    } catch (e) {
      writeSync(1, errorJson(e, cniVersion));
      throw e;
    }
    chain.rest = [];
  },
};

// Traffic control over rtnetlink, only what per-device filters need: the
// clsact qdisc (its ingress and egress hooks), cls_bpf filters in
// direct-action mode, and a dump of a hook's filters. A clsact qdisc and its
// filters belong to the netdev and are destroyed with it.
import { InputError } from '../errors.js';
import { parseAttrs, str, u32, nested, cstr } from './attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL, type Netlink, type NlMessage } from './socket.js';

const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const RTM_GETTFILTER = 46;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_CHAIN = 11;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_TAG = 10;
const TCA_BPF_ID = 11;
/** TCA_BPF_FLAGS: the program's return value is the action (TC_ACT_*). */
export const TCA_BPF_FLAG_ACT_DIRECT = 1;

export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_MIN_INGRESS = 0xfff2;
export const TC_H_MIN_EGRESS = 0xfff3;
/** Direct-action verdicts. */
export const TC_ACT_UNSPEC = -1;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const ETH_P_ALL = 0x0003;

export type TcHook = 'ingress' | 'egress';

const parentOf = (hook: TcHook): number => ((TC_H_CLSACT & 0xffff0000) | (hook === 'ingress' ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS)) >>> 0;

function checkIndex(ifindex: number, what: string): void {
  if (!Number.isInteger(ifindex) || ifindex < 1 || ifindex > 0x7fffffff) throw new InputError(`${what}: bad interface index: ${String(ifindex)}`);
}
function checkHook(hook: string, what: string): void {
  if (hook !== 'ingress' && hook !== 'egress') throw new InputError(`${what}: bad hook: ${JSON.stringify(hook)} (ingress or egress)`);
}

/** struct tcmsg: family, ifindex, handle, parent, info. */
function tcmsg(ifindex: number, handle: number, parent: number, info: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

/** Add a clsact qdisc (handle ffff:) to ifindex; EEXIST if the device has one already. */
export function addClsact(nl: Netlink, ifindex: number): void {
  const what = `add clsact qdisc to link ${ifindex}`;
  checkIndex(ifindex, what);
  nl.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([tcmsg(ifindex, 0xffff0000, TC_H_CLSACT, 0), str(TCA_KIND, 'clsact')]), what);
}

/** Delete ifindex's clsact qdisc and every filter on it. */
export function deleteClsact(nl: Netlink, ifindex: number): void {
  const what = `delete clsact qdisc of link ${ifindex}`;
  checkIndex(ifindex, what);
  nl.request(RTM_DELQDISC, 0, Buffer.concat([tcmsg(ifindex, 0xffff0000, TC_H_CLSACT, 0), str(TCA_KIND, 'clsact')]), what);
}

export interface BpfFilter {
  /** An fd of a loaded BPF_PROG_TYPE_SCHED_CLS program; the filter takes its own reference. */
  progFd: number;
  /** Shown by dumps (TCA_BPF_NAME). */
  name: string;
  /** Filter priority (1 = first); default 1. */
  prio?: number;
  /** Filter handle; default 1. */
  handle?: number;
  /** Ethertype the filter sees (host order); default ETH_P_ALL. */
  protocol?: number;
}

/**
 * Attach a cls_bpf filter in direct-action mode at a clsact hook of ifindex
 * (ingress: frames the device receives; egress: frames it sends). Never
 * replaces a filter (NLM_F_EXCL).
 */
export function addBpfFilter(nl: Netlink, ifindex: number, hook: TcHook, f: BpfFilter): void {
  const what = `add bpf filter ${f.name} at ${hook} of link ${ifindex}`;
  checkIndex(ifindex, what);
  checkHook(hook, what);
  const prio = f.prio ?? 1;
  const proto = f.protocol ?? ETH_P_ALL;
  if (!Number.isInteger(prio) || prio < 1 || prio > 0xffff) throw new InputError(`${what}: bad priority ${prio}`);
  // tcm_info = TC_H_MAKE(prio << 16, htons(protocol))
  const info = ((prio << 16) | (((proto & 0xff) << 8) | ((proto >> 8) & 0xff))) >>> 0;
  const body = Buffer.concat([
    tcmsg(ifindex, f.handle ?? 1, parentOf(hook), info),
    str(TCA_KIND, 'bpf'),
    nested(TCA_OPTIONS, [u32(TCA_BPF_FD, f.progFd), str(TCA_BPF_NAME, f.name), u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)]),
  ]);
  nl.request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, body, what);
}

/** Delete the filter of prio (and handle) at a hook. */
export function deleteFilter(nl: Netlink, ifindex: number, hook: TcHook, prio: number, handle = 1): void {
  const what = `delete filter ${prio} at ${hook} of link ${ifindex}`;
  checkIndex(ifindex, what);
  checkHook(hook, what);
  const info = ((prio << 16) | 0x0300) >>> 0;
  nl.request(RTM_DELTFILTER, 0, Buffer.concat([tcmsg(ifindex, handle, parentOf(hook), info), str(TCA_KIND, 'bpf')]), what);
}

export interface TcFilterInfo {
  kind: string | undefined;
  prio: number;
  /** Ethertype in host order (3 = all). */
  protocol: number;
  /** 0 for the per-priority head entry a dump also returns. */
  handle: number;
  chain: number | undefined;
  /** cls_bpf only. */
  bpf?: { name: string | undefined; direct: boolean; id: number | undefined; tag: string | undefined };
}

function decodeFilter(m: NlMessage): TcFilterInfo {
  const info = m.body.readUInt32LE(16);
  const at = parseAttrs(m.body.subarray(20));
  const kind = cstr(at.get(TCA_KIND));
  const chain = at.get(TCA_CHAIN);
  const f: TcFilterInfo = {
    kind,
    prio: info >>> 16,
    protocol: ((info & 0xff) << 8) | ((info >> 8) & 0xff),
    handle: m.body.readUInt32LE(8),
    chain: chain && chain.length >= 4 ? chain.readUInt32LE(0) : undefined,
  };
  const opts = at.get(TCA_OPTIONS);
  if (kind === 'bpf' && opts) {
    const o = parseAttrs(opts);
    const flags = o.get(TCA_BPF_FLAGS);
    const id = o.get(TCA_BPF_ID);
    f.bpf = {
      name: cstr(o.get(TCA_BPF_NAME)),
      direct: flags !== undefined && flags.length >= 4 && (flags.readUInt32LE(0) & TCA_BPF_FLAG_ACT_DIRECT) !== 0,
      id: id && id.length >= 4 ? id.readUInt32LE(0) : undefined,
      tag: o.get(TCA_BPF_TAG)?.toString('hex'),
    };
  }
  return f;
}

/**
 * The filters at a hook of ifindex. The kernel answers an empty dump when
 * the device has no clsact qdisc (or does not exist).
 */
export function dumpFilters(nl: Netlink, ifindex: number, hook: TcHook): TcFilterInfo[] {
  const what = `list filters at ${hook} of link ${ifindex}`;
  checkIndex(ifindex, what);
  checkHook(hook, what);
  return nl.dump(RTM_GETTFILTER, tcmsg(ifindex, 0, parentOf(hook), 0), what).filter((m) => m.type === RTM_NEWTFILTER).map(decodeFilter);
}

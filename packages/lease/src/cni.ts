// A creator's --cni mode: it serves netgrant-cni's rootless requests in a
// service chain (peer-check, fd-recv -e REQOP -e CNI_NETWORK ..., the
// creator, fd-send -e CNIREPLY ...). REQOP=ADD launches as -N does, the
// lease keyed by the attachment; DEL, CHECK, GC and STATUS are answered by
// the creator itself, from its own records and only those of PEERUID: the
// key is the client's word, the uid is peer-check's (SO_PEERCRED), so one
// user can never name, see, delete or collect another user's attachment
// (docs/protocol.md, "CNI requests").
import { InputError, checkIfName, optFlag, requirePeerId, type Chain, type Env, type OptionValues } from '@netgrant/core';
import { CNI_CONTAINER_ID, CNI_NETWORK_NAME, cniKey } from './record.js';
import { clientNetns } from './launch/target.js';

export const CNI_OPS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'] as const;
export type CniOp = (typeof CNI_OPS)[number];

/** The option every creator that serves netgrant-cni takes. */
export const CNI_OPTIONS = [{ name: 'cni' }] as const;

export interface CniRequest {
  op: CniOp;
  /** Whose records the request may touch (PEERUID). */
  uid: number;
  network: string;
  /** ADD, DEL, CHECK: the attachment ("NETWORK/CONTAINERID/IFNAME"). */
  key?: string;
  /** GC: the keys still valid (CNI_VALID: "CONTAINERID/IFNAME" words). */
  valid?: Set<string>;
}

/** At most this many valid attachments in one GC. */
const MAX_VALID = 4096;

function need(env: Env, name: string): string {
  const v = env.get(name);
  if (v === undefined || v === '') throw new InputError(`--cni: ${name} not set (fd-recv -e ${name})`);
  return v;
}

/**
 * The request the client's metadata makes, checked: REQOP one of the five,
 * CNI_NETWORK, CNI_CONTAINERID and CNI_IFNAME in the CNI grammar (they
 * become a record field), CNI_IFNAME the interface this creator names
 * (-i: the key names the interface it is for). PEERUID must be set: without
 * peer-check the request would act for the server's own uid.
 */
export function cniRequest(env: Env, ifname: string): CniRequest {
  const uid = requirePeerId(env, 'PEERUID', '--cni');
  const op = need(env, 'REQOP') as CniOp;
  if (!CNI_OPS.includes(op)) throw new InputError(`--cni: REQOP: expected ${CNI_OPS.join(', ')}, got ${JSON.stringify(op.slice(0, 16))}`);
  const network = need(env, 'CNI_NETWORK');
  if (!CNI_NETWORK_NAME.test(network)) throw new InputError(`--cni: CNI_NETWORK: not a network name ${JSON.stringify(network.slice(0, 70))}`);
  if (op === 'STATUS') return { op, uid, network };
  if (op === 'GC') {
    const words = (env.get('CNI_VALID') ?? '').split(' ').filter((w) => w !== '');
    if (words.length > MAX_VALID) throw new InputError(`--cni: CNI_VALID: over ${MAX_VALID} attachments`);
    const valid = new Set<string>();
    for (const w of words) {
      const slash = w.indexOf('/');
      if (slash < 0) continue; // no record can have it: nothing to keep
      try {
        valid.add(cniKey(network, w.slice(0, slash), w.slice(slash + 1)));
      } catch {
        /* no record can have it: nothing to keep */
      }
    }
    return { op, uid, network, valid };
  }
  const id = need(env, 'CNI_CONTAINERID');
  if (!CNI_CONTAINER_ID.test(id)) throw new InputError(`--cni: CNI_CONTAINERID: not a container id ${JSON.stringify(id.slice(0, 140))}`);
  const name = checkIfName(need(env, 'CNI_IFNAME'), '--cni: CNI_IFNAME');
  if (name !== ifname) throw new InputError(`--cni: CNI_IFNAME is ${name}, this service names the interface ${ifname} (-i)`);
  return { op, uid, network, key: cniKey(network, id, name) };
}

/**
 * The answer (fd-send -e CNIREPLY): "ok", or "CODE MESSAGE" with a CNI
 * error code (3: no such attachment; 100: it does not match its record).
 * The launch variables the chain's fd-send names are set (empty when the
 * operation has none), so one chain serves every operation.
 */
export function setCniReply(env: Env, reply: string, vars: Record<string, string> = {}): void {
  for (const k of ['NETIF', 'NETADDRS', 'NETGATEWAYS', 'NETHOSTIF']) env.set(k, vars[k] ?? '');
  env.set('CNIREPLY', reply);
}

/**
 * A creator's --cni request (undefined without --cni) and its -N
 * namespace: read for ADD only (the other operations send no fd), and
 * required for it.
 */
export function cniAndTarget(chain: Chain, opts: OptionValues, ifname: string): { cni: CniRequest | undefined; target: number | undefined } {
  const cni = optFlag(opts, 'cni') ? cniRequest(chain.env, ifname) : undefined;
  const target = cni && cni.op !== 'ADD' ? undefined : clientNetns(chain, opts);
  if (cni && cni.op === 'ADD' && target === undefined) throw new InputError('--cni: only with -N');
  return { cni, target };
}

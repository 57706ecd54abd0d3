// Loading the pin program and attaching it where the guest's frames enter
// the host: a clsact qdisc plus a cls_bpf direct-action filter, at the tap's
// ingress or the macvtap's egress. The qdisc and filter belong to the
// device: they die with it, a later device with the same name starts
// without them, and removing them needs CAP_NET_ADMIN over the device's
// namespace, which a lessee does not have.
import {
  type Netlink, type TcHook, InputError, loadProgram, createMap, closeQuietly, addClsact, addBpfFilter, deleteClsact,
  BPF_PROG_TYPE_SCHED_CLS, BPF_MAP_TYPE_ARRAY,
} from '@netgrant/core';
import { pinRules, type PinSpec } from './spec.js';
import { pinProgram } from './program.js';

/** The filter's name as dumps show it (TCA_BPF_NAME). */
export const PIN_FILTER_NAME = 'netgrant-pin';
/** Its priority at the hook: first. */
export const PIN_FILTER_PRIO = 1;
const PROG_NAME = 'netgrant_pin';

export interface LoadedPin {
  /** The program's fd (close-on-exec). */
  prog: number;
  /** Learn mode: the learned-MAC array map's fd (one u64 at key 0: MAC | 1 << 48, 0 = not learned); else null. */
  map: number | null;
}

/** Load the pin program for spec; the caller closes both fds. Throws InputError/SysError, leaving nothing open. */
export function loadPin(spec: PinSpec): LoadedPin {
  const rules = pinRules(spec);
  const map = rules.mac ? null : createMap({ type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 1, name: 'netgrant_mac' });
  try {
    const prog = loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: pinProgram(rules, map), license: 'Dual MIT/GPL', name: PROG_NAME });
    return { prog, map };
  } catch (e) {
    if (map !== null) closeQuietly(map);
    throw e;
  }
}

/**
 * Load the program and attach clsact + bpf da at hook on ifindex, in nl's
 * namespace. Guest TX is a tap's ingress and a macvtap's egress. Throws
 * (SysError/InputError) on any failure, leaving nothing attached that
 * matters (the caller deletes the device). The device must not have a
 * clsact qdisc yet.
 */
export function installPin(nl: Netlink, ifindex: number, spec: PinSpec, hook: TcHook): void {
  if (hook !== 'ingress' && hook !== 'egress') throw new InputError(`pin: bad hook: ${JSON.stringify(hook)} (ingress or egress)`);
  if (!Number.isInteger(ifindex) || ifindex < 1 || ifindex > 0x7fffffff) throw new InputError(`pin: bad interface index: ${String(ifindex)}`);
  const { prog, map } = loadPin(spec);
  try {
    addClsact(nl, ifindex);
    try {
      addBpfFilter(nl, ifindex, hook, { progFd: prog, name: PIN_FILTER_NAME, prio: PIN_FILTER_PRIO });
    } catch (e) {
      try {
        deleteClsact(nl, ifindex);
      } catch {
        // the caller deletes the device, and the qdisc with it
      }
      throw e;
    }
  } finally {
    // The filter holds its own references to the program (and the program to the map).
    closeQuietly(prog);
    if (map !== null) closeQuietly(map);
  }
}

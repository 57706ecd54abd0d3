// VLAN ids: -V VID on a creator's command line, and the configuration's
// `vlan` directive that allows them (shared by mkmacvlan, mkipvlan and
// mkmacvtap):
//
//   vlan 10-20,30          the VIDs -V may ask for, on the file's parents
//
// A VID is 1-4094 (0 means untagged and 4095 is reserved, IEEE 802.1Q);
// anything else, or a VID the file does not list, is refused before any
// system call.
import { DeniedError, InputError, UsageError, VLAN_ID_MIN, VLAN_ID_MAX } from '@netgrant/core';

const VID_TEXT = /^[0-9]{1,4}$/;

const inRange = (n: number) => n >= VLAN_ID_MIN && n <= VLAN_ID_MAX;

/** -V's value, checked: a decimal VID of 1-4094. */
export function parseVid(text: string, what = '-V'): number {
  if (!VID_TEXT.test(text)) throw new UsageError(`${what}: not a VLAN id (1-4094): ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!inRange(n)) throw new UsageError(`${what}: VLAN id out of range (1-4094): ${text}`);
  return n;
}

/** A `vlan` directive's words ("10-20,30", or several words), added to into. */
export function parseVidList(words: string[], where: string, into: Set<number>): void {
  if (words.length === 0) throw new InputError(`${where}: vlan needs VLAN ids (such as 10-20,30)`);
  for (const part of words.join(',').split(',')) {
    const m = /^([0-9]{1,4})(?:-([0-9]{1,4}))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || !inRange(lo) || !inRange(hi) || hi < lo) throw new InputError(`${where}: vlan: not a VLAN id or range of 1-4094: ${JSON.stringify(part)}`);
    for (let v = lo; v <= hi; v++) into.add(v);
  }
}

/** Refuse a VID the configuration does not list. */
export function checkVidAllowed(vid: number, allowed: ReadonlySet<number>, parent: string): void {
  if (!allowed.has(vid)) throw new DeniedError(`-V ${vid}: VLAN ${vid} on ${parent} is not allowed by the configuration`);
}

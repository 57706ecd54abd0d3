// CHECK's tests, whichever kind and side made the attachment: prevResult's
// addresses against the record's, and the interface in the container's
// namespace (its kind, up, its addresses).
import { dumpAddresses, getLink, type Netlink } from '@netgrant/core';
import { CniError, CODE } from './spec.js';

const sorted = (l: string[]) => l.slice().sort().join(',');

/** With a prevResult (expected), its addresses must be addrs, the record's (whose: "lease", "attachment"). */
export function checkPrevAddresses(expected: string[] | undefined, addrs: string[], whose: string): void {
  if (expected && sorted(expected) !== sorted(addrs)) throw new CniError(CODE.system, `the ${whose}'s addresses are not prevResult's`, `${addrs.join(',')} vs ${expected.join(',')}`);
}

/**
 * ifname in nl's namespace must be of kind (and carry record, if given),
 * up, with every address of addrs; missing: the error when it is not there
 * as it should be.
 */
export function checkInterface(nl: Netlink, ifname: string, kind: string, addrs: string[], missing: string, record?: string): void {
  const link = getLink(nl, ifname);
  if (!link || link.kind !== kind || (record !== undefined && link.alias !== record)) throw new CniError(CODE.system, missing);
  if (!link.up) throw new CniError(CODE.system, `${ifname} is down`);
  const have = new Set(dumpAddresses(nl).filter((a) => a.index === link.index).map((a) => `${a.address}/${a.prefix}`));
  const lost = addrs.filter((a) => !have.has(a));
  if (lost.length) throw new CniError(CODE.system, `${ifname} lacks its addresses`, lost.join(','));
}

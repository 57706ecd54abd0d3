// Network sysctls of one interface (/proc/sys/net/...), which the kernel
// resolves in the writer's current network namespace: call it on the main
// thread while in the namespace the interface is in.
import { openSync, writeSync, closeSync } from 'node:fs';
import { SysError } from './errors.js';
import { checkIfName } from './ifname.js';

export type SysctlFamily = 'ipv4/conf' | 'ipv4/neigh' | 'ipv6/conf' | 'ipv6/neigh';

/** Write value to net/FAMILY/IFNAME/KEY. */
export function setIfSysctl(family: SysctlFamily, ifname: string, key: string, value: string): void {
  const path = `/proc/sys/net/${family}/${checkIfName(ifname, 'sysctl')}/${key}`;
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw new SysError(`open ${path}`, Math.abs((e as NodeJS.ErrnoException).errno ?? 5));
  }
  try {
    writeSync(fd, `${value}\n`);
  } catch (e) {
    throw new SysError(`write ${path}`, Math.abs((e as NodeJS.ErrnoException).errno ?? 5));
  } finally {
    closeSync(fd);
  }
}

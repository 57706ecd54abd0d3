// The launcher's capabilities. As root nothing changes. Run with only
// permitted capabilities (file capabilities on a single executable, or
// ambient ones from setpriv), each is raised into the effective set only
// around the calls that need it, and dropped from the permitted (and so the
// ambient) set after its last use: CAP_DAC_OVERRIDE once the configuration
// is read, CAP_SYS_ADMIN once the namespace exists, CAP_NET_ADMIN once the
// interface is configured. Per thread: all of it on the main thread.
import { capGet, capSet, withEffective, capBit, ambientLower, CAP_DAC_OVERRIDE, CAP_SYS_ADMIN, CAP_NET_ADMIN, SysError } from '@netgrant/core';

export type LauncherCap = 'dac_override' | 'sys_admin' | 'net_admin';
const NUMBER: Record<LauncherCap, number> = { dac_override: CAP_DAC_OVERRIDE, sys_admin: CAP_SYS_ADMIN, net_admin: CAP_NET_ADMIN };

export interface Privileges {
  /** Run fn with cap effective. */
  with<T>(cap: LauncherCap, fn: () => T): T;
  /** cap is not needed any more: out of the effective, permitted, inheritable and ambient sets. */
  done(cap: LauncherCap): void;
}

/** Privileges for this process: a no-op as root, the raise/drop dance otherwise. */
export function launcherPrivileges(): Privileges {
  if (process.geteuid?.() === 0) return { with: (_c, fn) => fn(), done: () => undefined };
  const start = capGet();
  const have = start.permitted;
  for (const [name, n] of Object.entries(NUMBER)) {
    if (!(have & capBit(n))) throw new SysError(`need CAP_${name.toUpperCase()} in the permitted set`, 1 /* EPERM */);
  }
  // Ambient capabilities arrive effective: nothing is effective outside with().
  capSet({ effective: 0n, permitted: have, inheritable: start.inheritable });
  return {
    with: (cap, fn) => withEffective(capBit(NUMBER[cap]), fn),
    done(cap) {
      const bit = capBit(NUMBER[cap]);
      const now = capGet();
      capSet({ effective: now.effective & ~bit, permitted: now.permitted & ~bit, inheritable: now.inheritable & ~bit });
      try {
        ambientLower(NUMBER[cap]);
      } catch {
        /* already gone with the permitted bit */
      }
    },
  };
}

// The launcher link shared by mkipvlan and mkmacvlan: the configuration is
// chosen only by the administrator's command line (-c), opened once,
// checked on the fd and locked while an address is chosen and claimed.
import { closeSync } from 'node:fs';
import { UsageError, SysError } from '../errors.js';
import { checkIfName } from '../ifname.js';
import { openTrustedFile, stillAt } from '../config.js';
import { lockExclusive } from '../fd.js';
import { optString, parseUint } from '../runtime/values.js';
import { peerId } from '../runtime/env.js';
import type { Program } from '../runtime/program.js';
import { parseLaunchConfig } from './conf.js';
import { launch } from './launch.js';
import { launcherPrivileges } from './privileges.js';

export interface LauncherSpec {
  name: string;
  kind: 'ipvlan' | 'macvlan';
  modes: readonly string[];
  defaultMode: string;
  defaultConfig: string;
}

const DEFAULT_LOCK_WAIT_MS = '10000';

export function launcherProgram(spec: LauncherSpec): Program {
  return {
    name: spec.name,
    usage: `[-c CONFIG] [-m ${spec.modes.join('|')}] [-i IFNAME] [-t LOCKWAIT_MS] prog...`,
    options: [
      { name: 'config', short: 'c', value: true },
      { name: 'mode', short: 'm', value: true },
      { name: 'ifname', short: 'i', value: true },
      { name: 'timeout', short: 't', value: true },
    ],
    run(chain, opts) {
      const given = optString(opts, 'config');
      const path = given ?? spec.defaultConfig;
      const modeText = optString(opts, 'mode');
      if (modeText !== undefined && !spec.modes.includes(modeText)) throw new UsageError(`-m: expected ${spec.modes.join(', ')}, got ${JSON.stringify(modeText)}`);
      const ifname = checkIfName(optString(opts, 'ifname') ?? 'eth0', '-i');
      const lockWaitMs = parseUint(optString(opts, 'timeout') ?? DEFAULT_LOCK_WAIT_MS, '-t', 1, 3600000);
      const uid = peerId(chain.env, 'PEERUID') ?? process.getuid!();
      const priv = launcherPrivileges();
      // The configuration: trusted, on the program's own filesystem, read once.
      // A path from the command line of a capability-aware launcher is the
      // caller's choice: opened with the caller's own access, never with
      // DAC_OVERRIDE, or any root-owned file would be read for the caller
      // (its first word quoted in the parse error: /etc/shadow) and errors
      // would tell which hidden paths exist. As root nothing changes.
      const openConfig = () => openTrustedFile(path, { sameFilesystemAs: process.argv[1] ?? '/' });
      const file = given === undefined ? priv.with('dac_override', openConfig) : openConfig();
      priv.done('dac_override');
      try {
        const config = parseLaunchConfig(file.text, path, spec.modes);
        const mode = modeText ?? config.mode ?? spec.defaultMode;
        lockExclusive(file.fd, lockWaitMs, `lock ${path}`);
        if (!stillAt(path, file.stat)) throw new SysError(`lock ${path}`, 11 /* EAGAIN */, 'the file was replaced while waiting for its lock, run again');
        const done = launch({
          kind: spec.kind,
          mode,
          ifname,
          config,
          uid,
          withCap: (cap, fn) => priv.with(cap, fn),
          done: (cap) => priv.done(cap),
        });
        chain.env.set('NETIF', done.ifname);
        chain.env.set('NETADDRS', done.addresses.join(','));
        chain.env.set('NETGATEWAYS', done.gateways.join(','));
        chain.env.set('NETPARENT', done.parent);
      } finally {
        // Closing the fd releases the lock: the address is claimed.
        closeSync(file.fd);
        priv.done('sys_admin');
        priv.done('net_admin');
      }
    },
  };
}

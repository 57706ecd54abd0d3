// The launcher link shared by mkipvlan and mkmacvlan: the configuration is
// chosen only by the administrator's command line (-c), opened once,
// checked on the fd and locked while an address is chosen and claimed.
import { closeSync } from 'node:fs';
import { UsageError, InputError } from '../errors.js';
import { checkIfName } from '../ifname.js';
import { openTrustedFile } from '../config.js';
import { lockExclusive } from '../fd.js';
import { optString, parseUint } from '../runtime/values.js';
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

const LOCK_TIMEOUT_MS = 10000;
const NUM_RE = /^[0-9]{1,10}$/;

export function launcherProgram(spec: LauncherSpec): Program {
  return {
    name: spec.name,
    usage: `[-c CONFIG] [-m ${spec.modes.join('|')}] [-i IFNAME] prog...`,
    options: [
      { name: 'config', short: 'c', value: true },
      { name: 'mode', short: 'm', value: true },
      { name: 'ifname', short: 'i', value: true },
    ],
    run(chain, opts) {
      const path = optString(opts, 'config') ?? spec.defaultConfig;
      const modeText = optString(opts, 'mode');
      if (modeText !== undefined && !spec.modes.includes(modeText)) throw new UsageError(`-m: expected ${spec.modes.join(', ')}, got ${JSON.stringify(modeText)}`);
      const ifname = checkIfName(optString(opts, 'ifname') ?? 'eth0', '-i');
      const peer = chain.env.get('PEERUID');
      if (peer !== undefined && !NUM_RE.test(peer)) throw new InputError(`PEERUID has an invalid value ${JSON.stringify(peer)}`);
      const uid = peer !== undefined ? parseUint(peer, 'PEERUID') : process.getuid!();
      const priv = launcherPrivileges();
      // The configuration: trusted, on the program's own filesystem, read once.
      const file = priv.with('dac_override', () => openTrustedFile(path, { sameFilesystemAs: process.argv[1] ?? '/' }));
      priv.done('dac_override');
      try {
        const config = parseLaunchConfig(file.text, path, spec.modes);
        const mode = modeText ?? config.mode ?? spec.defaultMode;
        lockExclusive(file.fd, LOCK_TIMEOUT_MS, `lock ${path}`);
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

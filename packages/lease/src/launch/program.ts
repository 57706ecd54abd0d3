// The launcher link shared by mkipvlan and mkmacvlan: the configuration is
// chosen only by the administrator's command line (-c), opened once and
// checked on the fd. What is in use is decided under the lease lock (a
// root-only file: a lock on the configuration, which users may read, would
// be one any user could hold), waited for at most -t.
import { UsageError, checkIfName, openTrustedFile, optString, parseUint, peerId, say } from '@netgrant/core';
import { closeSync } from 'node:fs';
import { isSea } from 'node:sea';
import type { Chain, Env, OptionValues, Program } from '@netgrant/core';
import { parseLaunchConfig } from './conf.js';
import { launch } from './launch.js';
import { launcherPrivileges, type Privileges } from './privileges.js';
import { TARGET_OPTIONS } from './target.js';
import { CNI_OPTIONS, cniAndTarget } from '../cni.js';
import { serveLaunchedCni } from './cni.js';
import { parseVid, parseVidList } from '../vlan/vid.js';

export interface LauncherSpec {
  name: string;
  kind: 'ipvlan' | 'macvlan';
  modes: readonly string[];
  defaultMode: string;
  defaultConfig: string;
}

const DEFAULT_LOCK_WAIT_MS = '10000';

/**
 * The configuration: trusted, on the program's own filesystem (programFile), read once.
 * A path from the command line of a capability-aware launcher is the
 * caller's choice: opened with the caller's own access, never with
 * DAC_OVERRIDE, or any root-owned file would be read for the caller (its
 * first word quoted in the parse error: /etc/shadow) and errors would tell
 * which hidden paths exist. As root nothing changes.
 */
/**
 * The file this program runs from: the single executable itself (there
 * process.argv[1] is its argv[0], the caller's to choose: any path on the
 * caller's own filesystem), else the entry point Node was started with.
 */
const programFile = (): string => (isSea() ? process.execPath : process.argv[1] ?? '/');

export function readLauncherConfig(given: string | undefined, defaultPath: string, priv: Privileges): { text: string; path: string } {
  const path = given ?? defaultPath;
  const openConfig = () => openTrustedFile(path, { sameFilesystemAs: programFile() });
  const file = given === undefined ? priv.with('dac_override', openConfig) : openConfig();
  closeSync(file.fd);
  return { text: file.text, path };
}

/** Every capability out of every set (the launcher's finally). */
export function dropLauncherCaps(priv: Privileges): void {
  priv.done('dac_override');
  priv.done('sys_admin');
  priv.done('net_admin');
}

/** The options every launcher takes (-c, -i, -t), after its own. */
export const LAUNCHER_OPTIONS = [
  { name: 'config', short: 'c', value: true },
  { name: 'ifname', short: 'i', value: true },
  { name: 'timeout', short: 't', value: true },
] as const;

export interface LauncherArgs {
  /** -c, if given. */
  given: string | undefined;
  ifname: string;
  lockWaitMs: number;
  /** The uid the launch is for: PEERUID, else the real uid. */
  uid: number;
}

/** -c, -i (default eth0), -t and PEERUID, checked. */
export function launcherArgs(chain: Chain, opts: OptionValues): LauncherArgs {
  return {
    given: optString(opts, 'config'),
    ifname: checkIfName(optString(opts, 'ifname') ?? 'eth0', '-i'),
    lockWaitMs: parseUint(optString(opts, 'timeout') ?? DEFAULT_LOCK_WAIT_MS, '-t', 1, 3600000),
    uid: peerId(chain.env, 'PEERUID') ?? process.getuid!(),
  };
}

/** What every launcher exports: NETIF, NETADDRS, NETGATEWAYS. */
export function exportLaunched(env: Env, l: { ifname: string; addresses: string[]; gateways: string[] }): void {
  env.set('NETIF', l.ifname);
  env.set('NETADDRS', l.addresses.join(','));
  env.set('NETGATEWAYS', l.gateways.join(','));
}

export function launcherProgram(spec: LauncherSpec): Program {
  return {
    name: spec.name,
    usage: `[-c CONFIG] [-m ${spec.modes.join('|')}] [-V VID] [-N NETNSFD [--any-netns] [--cni]] [-i IFNAME] [-t LOCKWAIT_MS] prog...`,
    options: [{ name: 'mode', short: 'm', value: true }, { name: 'vlan', short: 'V', value: true }, ...LAUNCHER_OPTIONS, ...TARGET_OPTIONS, ...CNI_OPTIONS],
    run(chain, opts) {
      const modeText = optString(opts, 'mode');
      if (modeText !== undefined && !spec.modes.includes(modeText)) throw new UsageError(`-m: expected ${spec.modes.join(', ')}, got ${JSON.stringify(modeText)}`);
      const vidText = optString(opts, 'vlan');
      const vid = vidText === undefined ? undefined : parseVid(vidText);
      const { given, ifname, lockWaitMs, uid } = launcherArgs(chain, opts);
      const { cni, target } = cniAndTarget(chain, opts, ifname);
      const priv = launcherPrivileges();
      try {
        const { text, path } = readLauncherConfig(given, spec.defaultConfig, priv);
        // `vlan LIST`: the VIDs -V may ask for (vlan/vid.ts).
        const vlans = new Set<number>();
        const config = parseLaunchConfig(text, path, spec.modes, { directives: { vlan: (args, where) => parseVidList(args, where, vlans) } });
        const mode = modeText ?? config.mode ?? spec.defaultMode;
        if (cni && cni.op !== 'ADD') {
          say(spec.name, 'info', `${cni.op} for uid ${cni.uid}: ${serveLaunchedCni(cni, chain.env, spec.name, ifname, lockWaitMs, priv.with)}`);
          return;
        }
        // DAC_OVERRIDE stays permitted for the lease lock and the registry (root's 0600 and 0700).
        const done = launch({
          by: spec.name,
          kind: spec.kind,
          mode,
          ifname,
          config,
          uid,
          lockWaitMs,
          withCap: priv.with,
          done: priv.done,
          ...(target !== undefined ? { target } : {}),
          ...(cni ? { cni: cni.key! } : {}),
          ...(vid !== undefined ? { vlan: { vid, allowed: vlans } } : {}),
        });
        exportLaunched(chain.env, done);
        chain.env.set('NETPARENT', done.parent);
        if (cni) chain.env.set('CNIREPLY', 'ok');
      } finally {
        dropLauncherCaps(priv);
      }
    },
  };
}

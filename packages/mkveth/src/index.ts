// mkveth: a network namespace of one's own (or, with -N, the client's) with
// one end of a veth pair and an address from a subnet the administrator
// listed; the other end stays in the launcher's namespace, routed (or on a
// bridge), carrying the lease.
import { DeniedError, optFlag, optList, type Program } from '@netgrant/core';
import { LAUNCHER_OPTIONS, TARGET_OPTIONS, clientNetns, launcherArgs, launcherPrivileges, readLauncherConfig, dropLauncherCaps, exportLaunched, parseVethConfig, launchVeth, parseForwards } from '@netgrant/lease';

export const program: Program = {
  name: 'mkveth',
  usage: '[-c CONFIG] [-N NETNSFD [--any-netns]] [-i IFNAME] [-t LOCKWAIT_MS] [--masquerade] [-p HOSTPORT:PORT[/tcp|udp]]... prog...',
  options: [...LAUNCHER_OPTIONS, ...TARGET_OPTIONS, { name: 'masquerade' }, { name: 'port', short: 'p', value: true, multi: true }],
  run(chain, opts) {
    const { given, ifname, lockWaitMs, uid } = launcherArgs(chain, opts);
    const masquerade = optFlag(opts, 'masquerade');
    const portTexts = optList(opts, 'port');
    const target = clientNetns(chain, opts);
    const priv = launcherPrivileges();
    try {
      const { text, path } = readLauncherConfig(given, '/etc/netgrant/veth.conf', priv);
      const config = parseVethConfig(text, path);
      if (masquerade && !config.masquerade) throw new DeniedError('--masquerade: the configuration does not allow it (no "masquerade")');
      const forwards = parseForwards(portTexts, config);
      // nft is a program of its own: it gets no capability from a capability-aware launcher.
      if ((masquerade || forwards.length) && process.geteuid?.() !== 0) throw new DeniedError('--masquerade and -p need a launcher run as root (they run nft)');
      const done = launchVeth({
        ifname,
        config,
        masquerade,
        forwards,
        ...(target !== undefined ? { target } : {}),
        uid,
        lockWaitMs,
        withCap: priv.with,
        done: priv.done,
      });
      exportLaunched(chain.env, done);
      chain.env.set('NETHOSTIF', done.hostIf);
    } finally {
      dropLauncherCaps(priv);
    }
  },
};

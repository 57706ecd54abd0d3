// mkveth: a network namespace of one's own (or, with -N, the client's) with
// one end of a veth pair and an address from a subnet the administrator
// listed; the other end stays in the launcher's namespace, routed (or on a
// bridge), carrying the lease. With --cni it serves netgrant-cni's
// rootless requests (lease/cni.ts): ADD is the -N launch keyed by the
// attachment, the other operations are answered from the peer's records.
import { DeniedError, InputError, optFlag, optList, say, type Program } from '@netgrant/core';
import { CNI_OPTIONS, LAUNCHER_OPTIONS, TARGET_OPTIONS, cniAndTarget, launcherArgs, launcherPrivileges, readLauncherConfig, dropLauncherCaps, exportLaunched, parseVethConfig, launchVeth, parseForwards, serveVethCni } from '@netgrant/lease';

export const program: Program = {
  name: 'mkveth',
  usage: '[-c CONFIG] [-N NETNSFD [--any-netns] [--cni]] [-i IFNAME] [-t LOCKWAIT_MS] [--masquerade] [-p HOSTPORT:PORT[/tcp|udp]]... prog...',
  options: [...LAUNCHER_OPTIONS, ...TARGET_OPTIONS, ...CNI_OPTIONS, { name: 'masquerade' }, { name: 'port', short: 'p', value: true, multi: true }],
  run(chain, opts) {
    const { given, ifname, lockWaitMs, uid } = launcherArgs(chain, opts);
    const masquerade = optFlag(opts, 'masquerade');
    const portTexts = optList(opts, 'port');
    const { cni, target } = cniAndTarget(chain, opts, ifname);
    if (cni && (masquerade || portTexts.length)) throw new InputError('--cni: not with --masquerade or -p');
    const priv = launcherPrivileges();
    try {
      const { text, path } = readLauncherConfig(given, '/etc/netgrant/veth.conf', priv);
      const config = parseVethConfig(text, path);
      if (masquerade && !config.masquerade) throw new DeniedError('--masquerade: the configuration does not allow it (no "masquerade")');
      if (cni && cni.op !== 'ADD') {
        say('mkveth', 'info', `${cni.op} for uid ${cni.uid}: ${serveVethCni(cni, chain.env, ifname, priv.with)}`);
        return;
      }
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
        ...(cni ? { cni: cni.key! } : {}),
      });
      exportLaunched(chain.env, done);
      chain.env.set('NETHOSTIF', done.hostIf);
      if (cni) chain.env.set('CNIREPLY', 'ok');
    } finally {
      dropLauncherCaps(priv);
    }
  },
};

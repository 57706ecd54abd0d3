// bridge-acl: the qemu-bridge-helper ACL check as a chain link. Reads the
// bridge a client asked for (REQBRIDGE, from fd-recv), decides with
// /etc/qemu/bridge.conf for the peer (PEERUID/PEERGID), and on allow
// exports ACLBRIDGE for `mktap --bridge-from-acl`.
import { closeSync } from 'node:fs';
import { DeniedError, InputError, checkIfName, openTrustedFile, userById, groupList, optString, requirePeerId, type Program } from '@netgrant/core';
import { loadRules, decide, peerCanRead } from './acl.js';

export const DEFAULT_CONFIG = '/etc/qemu/bridge.conf';

export const program: Program = {
  name: 'bridge-acl',
  usage: '[-c CONFIG] prog...',
  options: [{ name: 'config', short: 'c', value: true }],
  resident: () => null,
  run(chain, opts) {
    const path = optString(opts, 'config') ?? DEFAULT_CONFIG;
    const uid = requirePeerId(chain.env, 'PEERUID');
    const gid = requirePeerId(chain.env, 'PEERGID');
    const requested = chain.env.get('REQBRIDGE');
    if (requested === undefined) throw new InputError('REQBRIDGE not set: the client asked for no bridge (fd-recv -e REQBRIDGE)');
    const bridge = checkIfName(requested, 'REQBRIDGE');
    const user = userById(uid);
    const peer = { uid, gids: user ? groupList(user.name, gid) : [gid] };
    const main = openTrustedFile(path);
    let rules;
    try {
      // qemu-bridge-helper reads it as the user: a user who cannot read it gets nothing.
      if (!peerCanRead(main.stat, peer)) throw new DeniedError(`access denied by acl file: uid ${uid} cannot read ${path}`);
      rules = loadRules(main.text, path, peer, (msg) => chain.warn(msg));
    } finally {
      closeSync(main.fd);
    }
    if (!decide(rules, bridge)) throw new DeniedError(`access denied by acl file: uid ${uid} may not use bridge ${bridge}`);
    chain.env.set('ACLBRIDGE', bridge);
  },
};

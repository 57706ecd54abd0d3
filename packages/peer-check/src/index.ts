// peer-check: learn who is on the other end of a unix socket, allow or deny
// against the -u/-g lists, export PEERUID/PEERGID/PEERPID, exec the rest.
import {
  UsageError, DeniedError, parseFd, parseUint, parseUser, parseGroup, optString, optList, optFlag,
  type Program,
} from '@netgrant/core';
import { socketPeer, envPeer } from './peer.js';

export const program: Program = {
  name: 'peer-check',
  usage: '[-s SOCKFD] [-u USER|UID]... [-g GROUP|GID]... [-a] [-E] [-t MS] prog...',
  options: [
    { name: 'socket', short: 's', value: true },
    { name: 'user', short: 'u', value: true, multi: true },
    { name: 'group', short: 'g', value: true, multi: true },
    { name: 'any', short: 'a' },
    { name: 'trust-env', short: 'E' },
    { name: 'timeout', short: 't', value: true },
  ],
  resident: () => null,
  async run(chain, opts) {
    const sockText = optString(opts, 'socket');
    const sock = sockText === undefined ? 0 : parseFd(sockText, '-s');
    const users = new Set(optList(opts, 'user').flatMap((v) => v.split(',')).map((u) => parseUser(u, '-u')));
    const groups = new Set(optList(opts, 'group').flatMap((v) => v.split(',')).map((g) => parseGroup(g, '-g')));
    const any = optFlag(opts, 'any');
    if (!any && users.size === 0 && groups.size === 0) throw new UsageError('nobody is allowed: give -u, -g or -a');
    const timeoutText = optString(opts, 'timeout');
    const timeoutMs = timeoutText === undefined ? 5000 : parseUint(timeoutText, '-t', 0, 2147483647);

    let peer;
    if (optFlag(opts, 'trust-env')) peer = envPeer(chain.env);
    else peer = await socketPeer(chain.fds.socket(sock, '-s'), timeoutMs, chain.fds.wait);
    const allowed = any || users.has(peer.uid) || groups.has(peer.gid) || peer.groups.some((g) => groups.has(g));
    if (!allowed) throw new DeniedError(`peer uid ${peer.uid} gid ${peer.gid} pid ${peer.pid} is not allowed`);
    chain.env.set('PEERUID', String(peer.uid));
    chain.env.set('PEERGID', String(peer.gid));
    chain.env.set('PEERPID', String(peer.pid));
  },
};

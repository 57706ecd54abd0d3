// cap-drop: drop every capability not kept (effective, permitted,
// inheritable, ambient, bounding), set no_new_privs, optionally switch uid,
// gid and supplementary groups, then exec. Everything is validated before
// any state changes; the drop itself runs synchronously right before exec
// (credentials and capabilities are per thread: see notes/node-syscalls.md §9).
import {
  UsageError, InputError, parseCapList, parseUser, parseGroup, userById, groupList, dropTo, optString, optFlag, type Program,
} from '@netgrant/core';

const NUM_RE = /^[0-9]{1,10}$/;

function peerId(get: (k: string) => string | undefined, name: string): number {
  const v = get(name);
  if (v === undefined) throw new InputError(`--from-peer: ${name} not set (run peer-check first)`);
  if (!NUM_RE.test(v) || Number(v) > 0xfffffffe) throw new InputError(`--from-peer: ${name} has an invalid value ${JSON.stringify(v)}`);
  return Number(v);
}

export const program: Program = {
  name: 'cap-drop',
  usage: '[-k CAP,...] [-u USER|UID] [-g GROUP|GID] [-G GID,...] [--from-peer] prog...',
  options: [
    { name: 'keep', short: 'k', value: true },
    { name: 'user', short: 'u', value: true },
    { name: 'group', short: 'g', value: true },
    { name: 'groups', short: 'G', value: true },
    { name: 'from-peer' },
  ],
  dropsPrivileges: true,
  run(chain, opts) {
    const keep = parseCapList(optString(opts, 'keep') ?? '');
    const fromPeer = optFlag(opts, 'from-peer');
    const userText = optString(opts, 'user');
    const groupText = optString(opts, 'group');
    const groupsText = optString(opts, 'groups');
    if (fromPeer && (userText !== undefined || groupText !== undefined)) throw new UsageError('--from-peer excludes -u and -g');
    let uid = userText === undefined ? undefined : parseUser(userText, '-u');
    let gid = groupText === undefined ? undefined : parseGroup(groupText, '-g');
    if (fromPeer) {
      uid = peerId((k) => chain.env.get(k), 'PEERUID');
      gid = peerId((k) => chain.env.get(k), 'PEERGID');
    }
    if (uid !== undefined && gid === undefined) {
      // A uid alone takes its user's primary group; one with no user must say which.
      const user = userById(uid);
      if (!user) throw new UsageError(`-u ${uid}: no such user in the database, give -g`);
      gid = user.gid;
    }
    if (gid !== undefined && uid === undefined) throw new UsageError('-g needs -u (cap-drop never keeps uid 0 with another gid)');
    let groups: number[] | undefined;
    if (groupsText !== undefined) groups = groupsText === '' ? [] : groupsText.split(',').map((g) => parseGroup(g, '-G'));
    let ids;
    if (uid !== undefined && gid !== undefined) {
      // Default supplementary groups: none for a uid with no user in the database, else
      // the database's list for that user (as login would give), never root's.
      if (groups === undefined) {
        const user = userById(uid);
        groups = user ? groupList(user.name, gid) : [];
      }
      ids = { uid, gid, groups };
    } else if (groups !== undefined) throw new UsageError('-G needs -u and -g (or --from-peer)');
    // Nothing above changed any state. From here on: synchronous, then exec.
    dropTo(keep, ids);
  },
};

// cap-drop: drop every capability not kept (effective, permitted,
// inheritable, ambient, bounding), set no_new_privs, optionally switch uid,
// gid and supplementary groups, then exec. Everything is validated before
// any state changes; the drop itself runs synchronously right before exec
// (credentials and capabilities are per thread: see notes/node-syscalls.md §9).
import {
  UsageError, capNumber, capBit, capLastCap, allCaps, capGet, parseUser, parseGroup, userById, groupList, dropTo,
  optString, optFlag, unsecureNames, requirePeerId, type Program, type DropIds,
} from '@netgrant/core';

/** The kernel's NGROUPS_MAX. */
const NGROUPS_MAX = 65536;

/**
 * The -k list: names as setpriv/capsh write them, numbers, or `all` (every
 * capability this process holds in its permitted set). A number or name the
 * running kernel does not know is a usage error, not a failed step.
 */
export function parseKeep(text: string): bigint {
  if (text === '') return 0n;
  let mask = 0n;
  for (const word of text.split(',')) {
    if (word.toLowerCase() === 'all') {
      mask |= capGet().permitted & allCaps();
      continue;
    }
    let n: number;
    try {
      n = capNumber(word);
    } catch {
      throw new UsageError(`-k: unknown capability ${JSON.stringify(word)}`);
    }
    if (n > capLastCap()) throw new UsageError(`-k: unknown capability ${JSON.stringify(word)} (this kernel's last is ${capLastCap()})`);
    mask |= capBit(n);
  }
  return mask;
}

export const program: Program = {
  name: 'cap-drop',
  usage: '[-k CAP,...] [-u USER|UID] [-g GROUP|GID] [-G GROUP,...] [--from-peer] prog...',
  options: [
    { name: 'keep', short: 'k', value: true },
    { name: 'user', short: 'u', value: true },
    { name: 'group', short: 'g', value: true },
    { name: 'groups', short: 'G', value: true },
    { name: 'from-peer' },
  ],
  dropsPrivileges: true,
  run(chain, opts) {
    // ---- validation: nothing below changes any state until dropTo.
    const keep = parseKeep(optString(opts, 'keep') ?? '');
    const fromPeer = optFlag(opts, 'from-peer');
    const userText = optString(opts, 'user');
    const groupText = optString(opts, 'group');
    const groupsText = optString(opts, 'groups');
    if (fromPeer && (userText !== undefined || groupText !== undefined)) throw new UsageError('--from-peer excludes -u and -g');
    let uid = userText === undefined ? undefined : parseUser(userText, '-u');
    let gid = groupText === undefined ? undefined : parseGroup(groupText, '-g');
    if (fromPeer) {
      uid = requirePeerId(chain.env, 'PEERUID', '--from-peer');
      gid = requirePeerId(chain.env, 'PEERGID', '--from-peer');
    }
    if (uid !== undefined && gid === undefined) {
      // A uid alone takes its user's primary group; one with no user must say which.
      const user = userById(uid);
      if (!user) throw new UsageError(`-u ${uid}: no such user in the database, give -g`);
      gid = user.gid;
    }
    if (gid !== undefined && uid === undefined) throw new UsageError('-g needs -u (cap-drop never keeps uid 0 with another gid)');
    let groups: number[] | undefined;
    if (groupsText !== undefined) {
      groups = groupsText === '' ? [] : groupsText.split(',').map((g) => parseGroup(g, '-G'));
      groups = [...new Set(groups)];
      if (groups.length > NGROUPS_MAX) throw new UsageError(`-G: more than ${NGROUPS_MAX} groups`);
      if (uid === undefined) throw new UsageError('-G needs -u (or --from-peer)');
    }
    let ids: DropIds | undefined;
    if (uid !== undefined && gid !== undefined) {
      // Default supplementary groups: the database's list for the user owning
      // the uid (as login would give), none for a uid with no user; never root's.
      if (groups === undefined) {
        const user = userById(uid);
        groups = user ? groupList(user.name, gid) : [];
      }
      ids = { uid, gid, groups };
    }
    // ---- the environment a capability-holding program gets (core/src/unsecure-env.ts).
    if (keep !== 0n) {
      // cap-drop always runs in a process of its own (never resident), where
      // chain.env is process.env: enumerate it there.
      for (const name of unsecureNames(Object.keys(process.env))) chain.env.unset(name);
    }
    // ---- the drop: synchronous, on the main thread; the runtime execs
    // right after run() returns (dropsPrivileges forces a real exec).
    dropTo(keep, ids);
  },
};

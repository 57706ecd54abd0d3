// Who is on the other end of a unix socket, by the most trustworthy means
// available: SO_PEERCRED + SO_PEERGROUPS on a connected socket; the
// kernel-checked SCM_CREDENTIALS of the first data on a socketpair (where
// SO_PEERCRED names the pair's creator); the super-server's environment
// only when the administrator says to trust it.
import {
  InputError, ProtocolError, peerCred, peerGroups, isUnnamedPair, setPassCred, recvmsg, closeAll,
  userById, groupList, MSG_PEEK, type Env, type WaitReadable,
} from '@netgrant/core';

export interface Peer {
  uid: number;
  gid: number;
  pid: number;
  /** Supplementary groups. */
  groups: number[];
  /** How they were learned, for messages and docs. */
  source: 'SO_PEERCRED' | 'SCM_CREDENTIALS' | 'environment';
}

/** Supplementary groups from the group database (when the kernel cannot tell). */
function databaseGroups(uid: number, gid: number): number[] {
  const user = userById(uid);
  return user ? groupList(user.name, gid) : [];
}

/** The peer of a connected unix socket, or of a socketpair (waits up to timeoutMs for its first data). */
export async function socketPeer(sock: number, timeoutMs: number, wait: WaitReadable): Promise<Peer> {
  if (!isUnnamedPair(sock)) {
    const c = peerCred(sock);
    return { ...c, groups: peerGroups(sock), source: 'SO_PEERCRED' };
  }
  setPassCred(sock, true);
  try {
    if (!(await wait(sock, timeoutMs))) throw new ProtocolError('get socketpair peer credentials', 'the peer sent nothing within the timeout', 110);
    // Peek: the data stays for the next link (fd-recv); the kernel attaches
    // the sender's credentials, checked at send time.
    const r = recvmsg(sock, 1, 1, MSG_PEEK);
    closeAll(r.fds);
    if (r.data.length === 0) throw new ProtocolError('get socketpair peer credentials', 'the peer closed the connection without sending', 32);
    // Credentials are recorded only if an end had SO_PASSCRED when the data
    // was sent; otherwise they read as pid 0 and the overflow uid (65534,
    // "nobody"): never take that for a real peer.
    if (!r.creds || r.creds.pid === 0) {
      throw new ProtocolError('get socketpair peer credentials', 'the kernel did not record who sent the data (SO_PASSCRED was not set on either end when it was sent; fd-send, ipc-pair and spawnOnSocketpair set it)');
    }
    return { ...r.creds, groups: databaseGroups(r.creds.uid, r.creds.gid), source: 'SCM_CREDENTIALS' };
  } finally {
    setPassCred(sock, false);
  }
}

const NUM_RE = /^[0-9]{1,10}$/;

/** The peer as a UCSPI super-server described it: ${PROTO}REMOTEEUID/EGID[/PID]. */
export function envPeer(env: Env): Peer {
  const proto = env.get('PROTO');
  if (proto === undefined) throw new InputError('PROTO not set (-E needs a UCSPI super-server)');
  if (!/^[A-Z0-9]{1,16}$/.test(proto)) throw new InputError(`PROTO has an invalid value ${JSON.stringify(proto)}`);
  const num = (name: string, required: boolean): number => {
    const v = env.get(`${proto}${name}`);
    if (v === undefined || (v === '' && !required)) {
      if (required) throw new InputError(`${proto}${name} not set`);
      return 0;
    }
    if (!NUM_RE.test(v) || Number(v) > 0xfffffffe) throw new InputError(`${proto}${name} has an invalid value ${JSON.stringify(v)}`);
    return Number(v);
  };
  const uid = num('REMOTEEUID', true);
  const gid = num('REMOTEEGID', true);
  return { uid, gid, pid: num('REMOTEPID', false), groups: databaseGroups(uid, gid), source: 'environment' };
}

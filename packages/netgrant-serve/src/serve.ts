// The accept loop: every connection runs the chain in this process with its
// own environment (UCSPI IPC variables, as s6-ipcserver sets them) and its
// own fds; a stalled client waits on the event loop, never blocking others.
//
// Fair service: each uid may hold at most maxPerUid of the maxConn slots at
// once (s6-ipcserver's -C). A connection over its uid's limit is closed the
// moment it is accepted (and counted), so a uid that stalls every slot it may
// and reconnects without end only costs an accept and a close per attempt:
// it never fills the server nor queues anyone behind it. Root (uid 0) is not
// limited: it can stop the server anyway.
import {
  watchReadable, acceptConn, peerCred, mapEnv, mapFds, waitAsync, runResidentChain, say, closeQuietly, type ResidentChain,
} from '@netgrant/core';

export interface ServeOptions {
  listener: number;
  /** Checked and resolved once at start (checkResidentChain). */
  chain: ResidentChain;
  maxConn: number;
  /** At most this many connections of one uid at once (root excepted). */
  maxPerUid: number;
  timeoutMs: number;
  verbose: boolean;
}

const ACCEPT_RETRY_MS = 100;
/** Over-limit closes are reported at most this often (an attacker must not fill the log or hold the loop writing it). */
const REFUSED_REPORT_MS = 1000;

export function serve(o: ServeOptions): Promise<never> {
  const base = { ...process.env };
  let active = 0;
  let count = 0;
  let polling = false;
  const perUid = new Map<number, number>();
  let refused = 0;
  let unreported = 0;
  let reportedAt = 0;
  const refuse = (conn: number, uid: number) => {
    closeQuietly(conn);
    refused++;
    unreported++;
    const now = Date.now();
    if (o.verbose || now - reportedAt >= REFUSED_REPORT_MS) {
      say('netgrant-serve', 'warning', `uid ${uid} is at its limit of ${o.maxPerUid} connections: closed ${unreported} connection${unreported === 1 ? '' : 's'} over it (${refused} in all)`);
      unreported = 0;
      reportedAt = now;
    }
  };
  const watch = watchReadable(o.listener, () => acceptSome());
  polling = true;
  const setPolling = (on: boolean) => {
    if (on === polling) return;
    if (on) watch.start();
    else watch.stop();
    polling = on;
  };

  function acceptSome(): void {
    while (active < o.maxConn) {
      let conn: number | null;
      try {
        conn = acceptConn(o.listener);
      } catch (e) {
        // EMFILE, ENOMEM, ENOBUFS...: the connection stays queued. Never stop
        // serving: pause (the poll is level-triggered) and try again.
        say('netgrant-serve', 'warning', e instanceof Error ? e.message : String(e));
        setPolling(false);
        setTimeout(() => setPolling(true), ACCEPT_RETRY_MS);
        return;
      }
      if (conn === null) break;
      let cred: { uid: number; gid: number; pid: number };
      try {
        cred = peerCred(conn);
      } catch (e) {
        // This connection fails (one fatal line, as any failed chain's); the server goes on.
        closeQuietly(conn);
        say('netgrant-serve', 'fatal', e instanceof Error ? e.message : String(e));
        continue;
      }
      const uid = cred.uid;
      const mine = perUid.get(uid) ?? 0;
      if (uid !== 0 && mine >= o.maxPerUid) {
        refuse(conn, uid);
        continue;
      }
      perUid.set(uid, mine + 1);
      active++;
      void handle(conn, cred, mine + 1).finally(() => {
        active--;
        const left = (perUid.get(uid) ?? 1) - 1;
        if (left > 0) perUid.set(uid, left);
        else perUid.delete(uid);
        setPolling(true);
      });
    }
    if (active >= o.maxConn) setPolling(false);
  }

  async function handle(conn: number, cred: { uid: number; gid: number; pid: number }, ofUid: number): Promise<void> {
    const n = ++count;
    const deadline = Date.now() + o.timeoutMs;
    const fds = mapFds({ 0: conn, 1: conn, 2: 2 });
    // Every wait ends by the connection's deadline.
    const wait = (fd: number, ms: number) => waitAsync(fd, Math.max(0, Math.min(ms < 0 ? Infinity : ms, deadline - Date.now())));
    const nap = async (ms: number) => (await fds.nap(Math.max(0, Math.min(ms, deadline - Date.now())))) && Date.now() < deadline;
    try {
      // IPCCONNNUM: this uid's connections open now, this one included (as s6-ipcserver sets it).
      const env = mapEnv({ ...base, PROTO: 'IPC', IPCREMOTEEUID: String(cred.uid), IPCREMOTEEGID: String(cred.gid), IPCREMOTEPATH: '', IPCCONNNUM: String(ofUid) });
      if (o.verbose) say('netgrant-serve', 'info', `connection ${n}: uid ${cred.uid} gid ${cred.gid} pid ${cred.pid}`);
      await runResidentChain(o.chain, env, { ...fds, wait, nap }, (prog, msg) => say(prog, 'warning', msg));
    } catch (e) {
      const prog = (e as { prog?: { name: string } }).prog?.name ?? 'netgrant-serve';
      say(prog, 'fatal', e instanceof Error ? e.message : String(e));
    } finally {
      // Closes every fd the chain still holds, the connection included (once:
      // a second close could hit another connection's fd given the same number).
      fds.release();
      if (o.verbose) say('netgrant-serve', 'info', `connection ${n}: done`);
    }
  }

  return new Promise<never>(() => undefined);
}

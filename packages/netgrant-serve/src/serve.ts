// The accept loop: every connection runs the chain in this process with its
// own environment (UCSPI IPC variables, as s6-ipcserver sets them) and its
// own fds; a stalled client waits on the event loop, never blocking others.
import {
  watchReadable, acceptConn, peerCred, mapEnv, mapFds, waitAsync, runResidentChain, say, type ResidentChain,
} from '@netgrant/core';

export interface ServeOptions {
  listener: number;
  /** Checked and resolved once at start (checkResidentChain). */
  chain: ResidentChain;
  maxConn: number;
  timeoutMs: number;
  verbose: boolean;
}

const ACCEPT_RETRY_MS = 100;

export function serve(o: ServeOptions): Promise<never> {
  const base = { ...process.env };
  let active = 0;
  let count = 0;
  let polling = false;
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
      active++;
      void handle(conn).finally(() => {
        active--;
        setPolling(true);
      });
    }
    if (active >= o.maxConn) setPolling(false);
  }

  async function handle(conn: number): Promise<void> {
    const n = ++count;
    const deadline = Date.now() + o.timeoutMs;
    const fds = mapFds({ 0: conn, 1: conn, 2: 2 });
    // Every wait ends by the connection's deadline.
    const wait = (fd: number, ms: number) => waitAsync(fd, Math.max(0, Math.min(ms < 0 ? Infinity : ms, deadline - Date.now())));
    try {
      const cred = peerCred(conn);
      const env = mapEnv({ ...base, PROTO: 'IPC', IPCREMOTEEUID: String(cred.uid), IPCREMOTEEGID: String(cred.gid), IPCREMOTEPATH: '', IPCCONNNUM: String(active) });
      if (o.verbose) say('netgrant-serve', 'info', `connection ${n}: uid ${cred.uid} gid ${cred.gid} pid ${cred.pid}`);
      await runResidentChain(o.chain, env, { ...fds, wait }, (prog, msg) => say(prog, 'warning', msg));
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

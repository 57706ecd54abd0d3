// Where the resident server's listening socket comes from: a path it binds
// itself, fd 0 (s6-ipcserver-socketbinder), or systemd socket activation
// (LISTEN_FDS=1 with LISTEN_PID ours: fd 3).
import { lstatSync, unlinkSync, chmodSync } from 'node:fs';
import {
  InputError, SysError, unixSocket, bindListen, connectUnix, isUnixSocket, isListening, socketType, SOCK_STREAM, setNonblocking, closeQuietly, dupCloexec, type Env,
} from '@netgrant/core';

export type ListenFrom = { kind: 'path'; path: string; mode: number; backlog: number } | { kind: 'stdin' } | { kind: 'systemd' };

/** Is something accepting connections at path? */
function alive(path: string): boolean {
  const fd = unixSocket();
  try {
    connectUnix(fd, path);
    return true;
  } catch {
    return false;
  } finally {
    closeQuietly(fd);
  }
}

/** The listening socket, non-blocking and close-on-exec. */
export function openListener(from: ListenFrom, env: Env): number {
  if (from.kind === 'path') {
    let st;
    try {
      st = lstatSync(from.path);
    } catch {
      st = undefined;
    }
    if (st) {
      // Replace only a stale socket of a server that is gone; never another kind of file.
      if (!st.isSocket()) throw new InputError(`${from.path} exists and is not a socket`);
      if (alive(from.path)) throw new InputError(`${from.path}: another server is listening there`);
      unlinkSync(from.path);
    }
    const fd = unixSocket(true);
    try {
      bindListen(fd, from.path, from.backlog);
      chmodSync(from.path, from.mode);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    return fd;
  }
  let fd: number;
  if (from.kind === 'systemd') {
    if (env.get('LISTEN_PID') !== String(process.pid)) throw new InputError('LISTEN_PID is not this process (-L needs systemd socket activation)');
    if (env.get('LISTEN_FDS') !== '1') throw new InputError(`LISTEN_FDS must be 1, got ${JSON.stringify(env.get('LISTEN_FDS'))}`);
    fd = 3;
  } else fd = 0;
  if (!isUnixSocket(fd) || !isListening(fd) || socketType(fd) !== SOCK_STREAM) throw new InputError(`fd ${fd} is not a listening unix stream socket`);
  // Own it as a close-on-exec fd above stdio.
  const own = dupCloexec(fd, 3);
  closeQuietly(fd);
  try {
    setNonblocking(own, true);
  } catch (e) {
    closeQuietly(own);
    throw e instanceof SysError ? e : new InputError(String(e));
  }
  return own;
}

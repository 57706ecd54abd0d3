// netgrant-bridge-helper: a drop-in for qemu-bridge-helper that needs no
// privilege. QEMU runs `helper [--use-vnet] --br=BRIDGE --fd=N` with one end
// of a socketpair at N; the helper asks a netgrant service (whose chain
// checks the peer against bridge.conf and creates the tap) for a tap on
// BRIDGE, and hands the fd to QEMU the way qemu-bridge-helper does: one
// byte 0 with the fd in SCM_RIGHTS. Exit 0 on success, 1 otherwise (QEMU
// accepts the fd only on exit 0).
import {
  UsageError, InputError, DeniedError, SysError, checkIfName, parseFd, optString, optFlag, unixSocket, connectUnix, sendMessage, recvMessage,
  encodeEnv, sendByte, closeAll, closeQuietly, type Program,
} from '@netgrant/core';

export const DEFAULT_SOCKET = '/run/netgrant/qemu-bridge.sock';
const REPLY_TIMEOUT_MS = 30000;

export const program: Program = {
  name: 'netgrant-bridge-helper',
  usage: '[--use-vnet] --br=BRIDGE --fd=UNIXFD',
  options: [
    { name: 'use-vnet' },
    { name: 'br', value: true },
    { name: 'fd', value: true },
  ],
  exitCodes: { usage: 1, denied: 1, syscall: 1, internal: 1 },
  async run(chain, opts) {
    if (chain.rest.length) throw new UsageError(`unexpected argument ${JSON.stringify(chain.rest[0]!.toString())}`);
    const brText = optString(opts, 'br');
    const fdText = optString(opts, 'fd');
    if (brText === undefined || fdText === undefined) throw new UsageError('--br and --fd are required');
    const bridge = checkIfName(brText, '--br');
    const qemu = chain.fds.socket(parseFd(fdText, '--fd'), '--fd');
    const path = chain.env.get('NETGRANT_BRIDGE_SOCKET') ?? DEFAULT_SOCKET;
    const sock = unixSocket();
    try {
      connectUnix(sock, path);
      sendMessage(sock, encodeEnv([['REQBRIDGE', bridge], ['REQVNETHDR', optFlag(opts, 'use-vnet') ? '1' : '0']]));
      let reply;
      try {
        reply = await recvMessage(sock, { maxFds: 1, timeoutMs: REPLY_TIMEOUT_MS, wait: chain.fds.wait });
      } catch (e) {
        if (e instanceof SysError && (e.code === 'EPIPE' || e.code === 'ECONNRESET')) {
          throw new DeniedError(`the netgrant service at ${path} refused to create a tap on ${bridge} (access denied by acl file, or a failure: see the service's log)`);
        }
        throw e;
      }
      try {
        if (reply.fds.length !== 1) throw new InputError(`the service sent ${reply.fds.length} fds, expected one tap`);
        sendByte(qemu, 0, reply.fds[0]!);
      } finally {
        closeAll(reply.fds);
      }
    } finally {
      closeQuietly(sock);
    }
  },
};

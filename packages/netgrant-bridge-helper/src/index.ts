// netgrant-bridge-helper: a drop-in for qemu-bridge-helper that needs no
// privilege. QEMU runs `helper [--use-vnet] --br=BRIDGE --fd=N` with one end
// of a socketpair at N; the helper asks a netgrant service (whose chain
// checks the peer against bridge.conf and creates the tap) for a tap on
// BRIDGE, and hands the fd to QEMU the way qemu-bridge-helper does: one
// byte 0 with the fd in SCM_RIGHTS. Exit 0 on success, 1 otherwise (QEMU
// accepts the fd only on exit 0).
//
// Which service: NETGRANT_BRIDGE_SOCKET if the environment has it (QEMU run
// by hand); else the `socket` line of /etc/netgrant/bridge-helper.conf, a
// root-owned file checked like every trusted config; else the compiled-in
// DEFAULT_SOCKET. The session libvirtd that virsh autostarts has a cleared
// environment, which is what its helpers get: under libvirt the file and
// the default are what counts (docs/netgrant-bridge-helper.1.md).
import {
  UsageError, InputError, DeniedError, SysError, checkIfName, parseFd, optString, optFlag, unixSocket, connectUnix, sendMessage, recvMessage,
  encodeEnv, sendByte, closeAll, closeQuietly, openTrustedFile, type Program,
} from '@netgrant/core';

export const DEFAULT_SOCKET = '/run/netgrant/qemu-bridge.sock';
export const CONFIG = '/etc/netgrant/bridge-helper.conf';
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_PATH = 107;

/**
 * The socket named by the config file's text: `socket PATH` (an absolute
 * path), `#` comments and blank lines; anything else is refused.
 */
export function parseConfig(text: string, where = CONFIG): string | undefined {
  let socket: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const m = /^socket\s+(\S+)$/.exec(line);
    if (!m) throw new InputError(`${where} line ${i + 1}: expected "socket /PATH"`);
    const path = m[1]!;
    if (!path.startsWith('/') || Buffer.byteLength(path) > MAX_PATH) throw new InputError(`${where} line ${i + 1}: the socket must be an absolute path of at most ${MAX_PATH} bytes`);
    if (socket !== undefined) throw new InputError(`${where} line ${i + 1}: a second socket line`);
    socket = path;
  });
  return socket;
}

/** The service's socket: the environment's, the config file's, or the default. */
function servicePath(env: string | undefined): string {
  if (env !== undefined && env !== '') return env;
  let file;
  try {
    file = openTrustedFile(CONFIG);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOENT') return DEFAULT_SOCKET;
    throw e;
  }
  try {
    return parseConfig(file.text) ?? DEFAULT_SOCKET;
  } finally {
    closeQuietly(file.fd);
  }
}
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
    const path = servicePath(chain.env.get('NETGRANT_BRIDGE_SOCKET'));
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

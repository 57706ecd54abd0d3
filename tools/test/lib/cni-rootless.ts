// netgrant-cni's rootless side in tests: the plugin run as a rootless
// runtime runs it (uid 0 in a user namespace of an unprivileged uid), the
// service chain the administrator writes (docs/netgrant-cni.8.md), and
// requests written by hand.
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { BASE_ENV, PYTHON, run, until, NOBODY } from './harness.js';
import { as, gone } from './launcher-attacks.js';
import type { Server } from './service.js';

export interface Rootless {
  proc: ChildProcess;
  /** The plugin's stdout (the result or the error JSON), its status, and the container's pid (in the test's pid namespace). */
  out: Record<string, any> | null;
  status: number;
  container: number;
  stderr: string;
}

/** The plugin's runs against the service at sock (the configuration's "socket" unless it names another). */
export function cniClient(sock: string) {
  /**
   * As uid 65534 in a user namespace of its own (uid 0 there): a "container"
   * (a process in a new network namespace of that user namespace), then the
   * plugin's ADD for it; both stay until killed. CNI_NETNS is the
   * container's, or netns (a path seen from inside; fd 3 is passed in).
   */
  async function rootlessAdd(o: { id: string; config?: Record<string, unknown>; netns?: string; ifname?: string; fd3?: number; uid?: number }): Promise<Rootless> {
    const config = JSON.stringify({ cniVersion: '1.0.0', name: 'ngnet', type: 'netgrant-cni', kind: 'veth', socket: sock, ...(o.config ?? {}) });
    const script = `unshare -n sleep 300 & c=$!
while [ "$(readlink /proc/$c/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
echo "container=$(cat /proc/$c/stat | cut -d' ' -f1)" >&2
printf '%s' "$CONF" | CNI_COMMAND=ADD CNI_CONTAINERID=${o.id} CNI_NETNS=${o.netns ?? '/proc/$c/ns/net'} CNI_IFNAME=${o.ifname ?? 'eth0'} netgrant-cni
echo "rc=$?" >&2
wait`;
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
    if (o.fd3 !== undefined) stdio[3] = o.fd3;
    const proc = spawn(as(o.uid ?? NOBODY)[0]!, [...as(o.uid ?? NOBODY).slice(1), 'unshare', '-Ur', 'sh', '-c', script], { env: { ...BASE_ENV, CONF: config }, stdio });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await until(() => /rc=\d+/.test(stderr) || proc.exitCode !== null, 60000);
    let out: Record<string, any> | null = null;
    try {
      out = JSON.parse(stdout) as Record<string, any>;
    } catch {
      /* asserted */
    }
    return { proc, out, status: Number(/rc=(\d+)/.exec(stderr)?.[1] ?? -1), container: Number(/container=(\d+)/.exec(stderr)?.[1] ?? 0), stderr };
  }

  /** The plugin as uid, in the user namespace of pid (a rootless container's: the plugin owns its network namespace), or in one of its own. */
  function plugin(o: { uid: number; pid?: number; cmd: string; env?: Record<string, string>; config?: Record<string, unknown> }) {
    const where = o.pid ? ['nsenter', '-U', '-t', String(o.pid), '--preserve-credentials'] : ['unshare', '-Ur'];
    const r = run([...as(o.uid), ...where, 'netgrant-cni'], { env: { CNI_COMMAND: o.cmd, ...(o.env ?? {}) }, input: Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: 'ngnet', type: 'netgrant-cni', socket: sock, ...(o.config ?? {}) })) });
    let out: Record<string, any> | null = null;
    try {
      out = JSON.parse(r.stdout) as Record<string, any>;
    } catch {
      /* '' on success */
    }
    return { ...r, out };
  }
  return { rootlessAdd, plugin };
}

export const inside = (pid: number, cmd: string) => run(['nsenter', '-n', '-t', String(pid), 'sh', '-c', cmd]);

/** The service chain: peer-check, fd-recv of the request (no fd but for ADD: -m 0), the creator with --cni, fd-send of the answer. */
export const serviceChain = (path: string, uids: number[], creator: string[], answer: string[]) => ['s6-ipcserver', '-C', '2', path, 'peer-check', ...uids.flatMap((u) => ['-u', String(u)]),
  'fd-recv', '-s', '0', '-d', '5', '-m', '0', '-t', '20000', '-e', 'REQOP', '-e', 'CNI_NETWORK', '-e', 'CNI_CONTAINERID', '-e', 'CNI_IFNAME', '-e', 'CNI_VALID',
  ...creator, '--cni', '-N', '5', '-i', 'eth0', 'fd-send', '-s', '1', ...['NETIF', 'NETADDRS', 'NETGATEWAYS', ...answer, 'CNIREPLY'].flatMap((v) => ['-e', v])];

export const attachment = (id: string, pid?: number) => ({ CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_NETNS: pid ? `/proc/${pid}/ns/net` : '' });

/** A framed request written by hand (fd-send's framing, docs/protocol.md), as uid; the connection's answer, if any. */
export function rawRequest(uid: number, path: string, vars: Record<string, string>): string {
  const py = `import socket,struct,sys
p=b''.join(k.encode()+b'='+v.encode()+b'\\0' for k,v in ${JSON.stringify(vars)}.items())
s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.sendall(struct.pack('>IH',len(p),0)+p);s.settimeout(20)
d=b''
while True:
  b=s.recv(4096)
  if not b: break
  d+=b
sys.stdout.write(d[6:].replace(b'\\0',b' ').decode())`;
  return run([...as(uid), PYTHON, '-c', py, path]).stdout;
}


/**
 * A launcher's (macvlan, ipvlan) attachment id deleted by NOBODY's plugin
 * in r's container: the plugin deletes eth0 in the namespace it owns, the
 * service (srv) holds the entry, and the address, until the namespace goes.
 */
export async function delLaunched(plugin: ReturnType<typeof cniClient>['plugin'], srv: Server, r: Rootless, id: string, config: Record<string, unknown>): Promise<void> {
  const p = plugin({ uid: NOBODY, pid: r.container, cmd: 'DEL', env: attachment(id, r.container), config });
  assert.is(p.status, 0, p.stdout + p.stderr);
  assert.is(inside(r.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0', 'the plugin deleted eth0 in the namespace it owns');
  assert.ok(await srv.waitForOutput(new RegExp(`DEL for uid ${NOBODY}: ngnet/${id}/eth0: held until the namespace goes`)), srv.output());
}

/** A rootlessAdd's container and shell, killed and waited for. */
export async function endRootless(r: Rootless | undefined): Promise<void> {
  if (!r) return;
  if (r.container) process.kill(r.container, 'SIGKILL');
  r.proc.kill('SIGKILL');
  await gone(r.proc);
}

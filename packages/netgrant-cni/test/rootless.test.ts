// netgrant-cni rootless, kind veth: the plugin runs as a rootless runtime
// runs it, uid 0 in a user namespace of a real unprivileged user (65534,
// `unshare -Ur`: no power over the host), with the container's namespace
// made in that user namespace. It sends the namespace to the
// administrator's service (s6-ipcserver, peer-check, fd-recv, mkveth -N,
// fd-send), whose chain decides everything: the owner check, the pool, the
// quota, the interface name. Hostile clients forge their requests: another
// uid's container namespace, the host's namespace, another pool or
// interface name in their config, DEL and GC of another uid's lease.
// Rootless podman itself runs in rootless-podman.test.ts.
//
// @netgrant-test-modes: in-process
// netgrant-cni ends every chain (a runtime execs it, it execs nothing), so
// both modes run the same code; the service chains' modes are mkveth's and
// mkmacvlan's own -N files'.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_ENV, run, sh, tempDir, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, gone, OTHER } from '../../../tools/test/lib/launcher-attacks.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const pool = conf('limit 1\n10.55.0.0/29\n');
const otherPool = conf('10.54.0.0/24\n');
sh('ip addr add 192.0.2.1/32 dev lo');
const sock = join(dir, 'cni.sock');

interface Rootless {
  proc: ChildProcess;
  /** The plugin's stdout (the result or the error JSON), its status, and the container's pid (in the test's pid namespace). */
  out: Record<string, any> | null;
  status: number;
  container: number;
  stderr: string;
}

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

const inside = (pid: number, cmd: string) => run(['nsenter', '-n', '-t', String(pid), 'sh', '-c', cmd]);

test('rootless ADD through the service: eth0 in the container with the service\'s pool address, pinged from the host; the quota, a forged pool, another uid\'s or the host\'s namespace, a name the service does not give; DEL and GC touch nothing of the service\'s', async () => {
  const srv = await startServer(['s6-ipcserver', '-C', '2', sock, 'peer-check', '-u', String(NOBODY), '-u', String(OTHER),
    'fd-recv', '-s', '0', '-d', '5', '-t', '20000', 'mkveth', '-c', pool, '-N', '5', '-i', 'eth0', 'fd-send', '-s', '1', '-e', 'NETIF', '-e', 'NETADDRS', '-e', 'NETGATEWAYS', '-e', 'NETHOSTIF'], sock);
  chmodSync(sock, 0o777);
  const procs: ChildProcess[] = [];
  const containers: number[] = [];
  const add = async (o: Parameters<typeof rootlessAdd>[0]) => {
    const r = await rootlessAdd(o);
    procs.push(r.proc);
    if (r.container) containers.push(r.container);
    return r;
  };
  const killAll = async () => {
    for (const pid of containers.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of procs) p.kill('SIGKILL');
    for (const p of procs) await gone(p);
  };
  try {
    // Its config asks for another pool: the service's is what it gets.
    const a = await add({ id: 'r1', config: { config: otherPool } });
    assert.is(a.status, 0, a.stderr + JSON.stringify(a.out) + srv.output());
    const res = a.out!;
    assert.match(res.ips[0].address, /^10\.55\.0\.[1-6]\/32$/);
    assert.is(res.interfaces[1].name, 'eth0');
    assert.match(res.interfaces[1].mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.match(inside(a.container, 'ip -o link show eth0').stdout, new RegExp(`link/ether ${res.interfaces[1].mac} `));
    const addr = res.ips[0].address.split('/')[0];
    assert.is(run(['ping', '-c', '1', '-W', '5', addr]).status, 0, 'the host reaches the rootless container');
    assert.equal(hostEnds().map((h) => [h.name, h.record?.uid, h.record?.addrs]), [[res.interfaces[0].name, NOBODY, [res.ips[0].address]]]);

    // The same uid again: at the service's limit (1).
    const b = await add({ id: 'r2' });
    assert.is.not(b.status, 0);
    assert.is(b.out?.code, 101, JSON.stringify(b.out));
    assert.match(srv.output(), /uid 65534 already has 1 veth namespace, the limit is 1/);
    assert.is(inside(b.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0');

    // Another uid's container namespace (an fd of it, however the client got it), and the host's own: refused by the service.
    const o = spawn(as(OTHER)[0]!, [...as(OTHER).slice(1), 'unshare', '-Urn', 'sleep', '300'], { stdio: 'ignore' });
    procs.push(o);
    await until(() => sh(`[ "$(readlink /proc/${o.pid}/ns/net)" != "$(readlink /proc/self/ns/net)" ]`).status === 0, 5000);
    const theirs = openSync(`/proc/${o.pid}/ns/net`, 'r');
    try {
      const c = await add({ id: 'r3', netns: '/proc/self/fd/3', fd3: theirs });
      assert.is(c.out?.code, 101, JSON.stringify(c.out) + c.stderr);
    } finally {
      closeSync(theirs);
    }
    assert.match(srv.output(), /-N: the network namespace is not owned by uid 65534/);
    const h = await add({ id: 'r4', uid: OTHER, netns: '/proc/self/ns/net' });
    assert.is(h.out?.code, 101, JSON.stringify(h.out) + h.stderr);
    assert.match(srv.output(), /-N: the server's own network namespace|not owned by uid 65533/);

    // A name the service does not give (eth1): the plugin refuses the answer and deletes what the service made.
    const n = await add({ id: 'r5', uid: OTHER, ifname: 'eth1' });
    assert.is(n.out?.code, 100, JSON.stringify(n.out));
    assert.match(n.out!.msg, /named the interface "eth0", not CNI_IFNAME/);
    assert.is(await until(() => hostEnds().length === 1, 10000), true, 'only r1\'s lease is left');

    // A kind the service does not make (its creator is mkveth): the answer is refused, and what the service made goes.
    const k = await add({ id: 'r6', uid: OTHER, config: { kind: 'macvlan' } });
    assert.is(k.out?.code, 100, JSON.stringify(k.out));
    assert.match(k.out!.msg, /the service made a veth, the network asks for macvlan/);
    assert.is(await until(() => hostEnds().length === 1, 10000), true, 'only r1\'s lease is left');
    assert.is(inside(k.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0');

    // DEL and GC from a rootless plugin, naming the other uid's attachment: nothing of the service's changes.
    const forged = (cmd: string, extra: Record<string, string>, cfg: Record<string, unknown> = {}) =>
      run([...as(OTHER), 'unshare', '-Ur', 'netgrant-cni'], { env: { CNI_COMMAND: cmd, ...extra }, input: Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: 'ngnet', type: 'netgrant-cni', socket: sock, ...cfg })) });
    assert.is(forged('DEL', { CNI_CONTAINERID: 'r1', CNI_IFNAME: 'eth0', CNI_NETNS: '' }).status, 0);
    assert.is(forged('GC', { CNI_PATH: '/usr/lib/cni' }, { 'cni.dev/valid-attachments': [] }).status, 0);
    assert.equal(hostEnds().map((x) => x.record?.addrs), [[res.ips[0].address]]);
    assert.is(run(['ping', '-c', '1', '-W', '5', addr]).status, 0);

    // The container's namespace going ends the lease.
    await killAll();
    assert.is(await settled(), null);
  } finally {
    await killAll();
    await srv.stop();
  }
  assert.is(await settled(), null);
});

test('rootless kind macvlan through a mkmacvlan -N service: eth0 a macvlan on the administrator\'s parent with its pool address, reached by a peer on the parent\'s LAN; no host end in the result', async () => {
  // The parent mp0 holds the pool's subnet; its peer end mp1 is the LAN, in a namespace of its own with a host on it.
  const peer = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
  await until(() => sh(`[ "$(readlink /proc/${peer.pid}/ns/net)" != "$(readlink /proc/self/ns/net)" ]`).status === 0, 5000);
  sh(`ip link add mp0 type veth peer name mp1 && ip addr add 10.53.0.1/24 dev mp0 && ip link set mp0 up && ip link set mp1 netns ${peer.pid}`);
  inside(peer.pid!, 'ip addr add 10.53.0.250/24 dev mp1 && ip link set mp1 up');
  const mpool = conf('10.53.0.0/24\n');
  const msock = join(dir, 'macvlan.sock');
  const srv = await startServer(['s6-ipcserver', '-C', '2', msock, 'peer-check', '-u', String(NOBODY),
    'fd-recv', '-s', '0', '-d', '5', '-t', '20000', 'mkmacvlan', '-c', mpool, '-N', '5', '-i', 'eth0', 'fd-send', '-s', '1', '-e', 'NETIF', '-e', 'NETADDRS', '-e', 'NETGATEWAYS'], msock);
  chmodSync(msock, 0o777);
  let r: Rootless | undefined;
  try {
    r = await rootlessAdd({ id: 'm1', config: { kind: 'macvlan', socket: msock } });
    assert.is(r.status, 0, r.stderr + JSON.stringify(r.out) + srv.output());
    assert.is(r.out!.interfaces.length, 1, 'no host end');
    assert.equal([r.out!.interfaces[0].name, r.out!.interfaces[0].sandbox !== undefined, r.out!.ips[0].interface], ['eth0', true, 0]);
    assert.match(r.out!.ips[0].address, /^10\.53\.0\.\d+\/24$/);
    assert.match(inside(r.container, 'ip -d -o link show eth0').stdout, /macvlan/);
    const addr = r.out!.ips[0].address.split('/')[0];
    assert.is(inside(peer.pid!, `ping -c 1 -W 5 ${addr}`).status, 0, 'a peer on the LAN reaches the rootless container');
  } finally {
    if (r?.container) process.kill(r.container, 'SIGKILL');
    r?.proc.kill('SIGKILL');
    if (r) await gone(r.proc);
    peer.kill('SIGKILL');
    await gone(peer);
    await srv.stop();
    sh('ip link del mp0');
  }
});

test.after(cleanup);
test.run();

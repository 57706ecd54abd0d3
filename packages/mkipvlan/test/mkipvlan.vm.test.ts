// mkipvlan in the kernel VM lane (tools/guest/vm-lane.mjs): Debian's stock
// kernel has ipvlan. The launcher suite in the default mode (l3s), then
// what is ipvlan's own: the modes' routes, and the kernel's duplicate check
// (EADDRINUSE) arbitrating addresses mkipvlan cannot see; -N into a
// client's own namespace (mkmacvlan's -N is tested natively in full); and
// the seed's own way, `mkipvlan ip addr show` run by a user from the setcap'd
// single executable (docs/single-executable.md; mkmacvlan's the same natively
// in test/single-executable.test.ts).
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the VM lane is for the
// kernel's ipvlan; the launchers' exec path is shared code
// (@netgrant/lease), run natively in both modes by mkmacvlan's tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, sh, failsWith, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { launcherSuite, hold } from '../../../tools/test/lib/launcher.js';
import { as, background } from '../../../tools/test/lib/launcher-attacks.js';
import { copyCapable } from '../../../tools/test/lib/single-executable.js';
import { openSync, closeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

const { dir, conf } = launcherSuite({ prog: 'mkipvlan', wrongMode: ['bridge', /-m: expected l3s, l3, l2/], routesViaGateway: false, race: { launches: 8, prefix: 29 }, parts: ['kernel'] });

test('mkipvlan: the modes: l2 routes via the gateway, l3 and l3s through the device; the kernel reports the mode', () => {
  const c = conf('10.30.0.0/24\n');
  for (const [mode, viaGateway] of [['l2', true], ['l3', false], ['l3s', false]] as const) {
    const r = run(['mkipvlan', '-c', c, '-m', mode, 'sh', '-c', 'ip -j -d link show eth0; ip -j route show default']);
    assert.is(r.status, 0, r.stderr);
    const [linkJson, routeJson] = r.stdout.trim().split('\n');
    const link = (JSON.parse(linkJson!) as { linkinfo: { info_kind: string; info_data: { mode: string } } }[])[0]!;
    assert.equal([link.linkinfo.info_kind, link.linkinfo.info_data.mode], ['ipvlan', mode]);
    const def = (JSON.parse(routeJson!) as { gateway?: string; dev: string }[])[0]!;
    assert.equal([def.gateway, def.dev], [viaGateway ? '10.30.0.1' : undefined, 'eth0'], `${mode}: ${routeJson}`);
  }
  const fromFile = run(['mkipvlan', '-c', conf('mode l2\n10.30.0.0/24\n'), 'sh', '-c', 'ip -j -d link show eth0']);
  assert.is((JSON.parse(fromFile.stdout) as { linkinfo: { info_data: { mode: string } } }[])[0]!.linkinfo.info_data.mode, 'l2', fromFile.stderr);
});

test('mkipvlan: addresses held where mkipvlan cannot look: the kernel refuses them (EADDRINUSE), mkipvlan draws again', () => {
  // A namespace with no process in it (only a bind mount under /run/netns):
  // the /proc scan never sees it. Its ipvlan on the same parent holds every
  // usable address of 10.33.0.0/29 but .6, so only the kernel knows.
  sh('ip link add hp0 type veth peer name hp1 && ip addr add 10.33.0.1/29 dev hp0 && ip link set hp0 up && ip link set hp1 up');
  sh('ip netns add hidden && ip link add hid0 link hp0 type ipvlan mode l3s && ip link set hid0 netns hidden');
  for (const a of [2, 3, 4, 5]) sh(`ip -n hidden addr add 10.33.0.${a}/32 dev hid0`);
  const c = conf('10.33.0.0/29\n');
  for (let i = 0; i < 4; i++) {
    const r = run(['mkipvlan', '-c', c, 'sh', '-c', 'echo $NETADDRS']);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), '10.33.0.6/29', 'the only address the kernel lets through');
  }
  sh('ip -n hidden addr add 10.33.0.6/32 dev hid0');
  const full = run(['mkipvlan', '-c', c, 'true']);
  assert.is(failsWith(full, 'mkipvlan', 111, /allocate an address in 10\.33\.0\.0\/29: .*no free address/), null, full.stderr);
  sh('ip netns del hidden');
});

test('mkipvlan: a launch ends with its last process, and its address is free again', async () => {
  const c = conf('10.31.0.0/30\n');
  const a = await hold(['mkipvlan', '-c', c]);
  assert.is(a.vars.NETADDRS, '10.31.0.2/30');
  a.proc.kill('SIGKILL');
  await new Promise((r) => a.proc.on('close', r));
  // Namespace teardown is asynchronous in the kernel: give it a moment.
  let again = run(['true']);
  await until(() => (again = run(['mkipvlan', '-c', c, 'sh', '-c', 'echo $NETADDRS'])).status === 0, 10000);
  assert.is(again.stdout.trim(), '10.31.0.2/30', again.stderr);
});

test('mkipvlan -N: the ipvlan goes into a client\'s own namespace (uid 65534, unshare -rn) with a pool address; root there, the client cannot take a launched neighbour\'s address (EADDRINUSE); the same namespace twice, another uid\'s: refused', async () => {
  const c = conf('10.34.0.0/29\n');
  sh('ip link add np0 type veth peer name np1 && ip addr add 10.34.0.1/29 dev np0 && ip link set np0 up && ip link set np1 up');
  const neighbour = await hold(['mkipvlan', '-c', c]);
  const k = await background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c', 'echo ready; exec sleep 300']);
  const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
  const withNs = (env: Record<string, string>, script: string) => run(['mkipvlan', '-c', c, '-N', '5', 'sh', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
  try {
    const r = withNs({ PEERUID: String(NOBODY) }, 'echo "$NETIF $NETADDRS"');
    assert.is(r.status, 0, r.stderr);
    const [ifname, addr] = r.stdout.trim().split(' ');
    assert.is(ifname, 'eth0');
    assert.match(addr!, /^10\.34\.0\.[2-6]\/29$/);
    assert.is.not(addr, neighbour.vars.NETADDRS);
    const inside = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(k.proc.pid), 'sh', '-c',
      `ip -4 -o addr show eth0 | cut -d" " -f7; ip addr add ${neighbour.vars.NETADDRS!.split('/')[0]}/32 dev eth0`]);
    assert.is(inside.stdout.trim(), addr);
    // The kernel's extended ack (ipvlan's address validator: EADDRINUSE).
    assert.match(inside.stderr, /Address already (in use|assigned to an ipvlan device)/, inside.stdout + inside.stderr);
    const twice = withNs({ PEERUID: String(NOBODY) }, 'true');
    assert.is(failsWith(twice, 'mkipvlan', 1, /-N: that namespace already has a launched interface/), null, twice.stderr);
    const other = withNs({ PEERUID: '1000' }, 'true');
    assert.is(failsWith(other, 'mkipvlan', 1, /-N: the network namespace is not owned by uid 1000/), null, other.stderr);
  } finally {
    closeSync(ns);
    k.proc.kill('SIGKILL');
    neighbour.proc.kill('SIGKILL');
  }
});

test('mkipvlan with file capabilities: uid 65534 runs `mkipvlan ip addr show` from the setcap\'d single executable and gets an ipvlan; the program has no capability; the configuration\'s read permission is the access list', () => {
  // On the overlay (the guest's root: a tmpfs upper layer holds security.capability), beside the configuration: the same filesystem.
  const bin = copyCapable(join(dir, 'sea'));
  // The lease lock and the registry are root's (a root launch or tmpfiles.d makes them).
  sh('install -d -m 0755 /run/netgrant && { [ -e /run/netgrant/lease.lock ] || install -m 0600 /dev/null /run/netgrant/lease.lock; } && install -d -m 0700 /run/netgrant/launched');
  const c = conf('10.30.0.0/24\n');
  const r = run([...as(NOBODY), join(bin, 'mkipvlan'), '-c', c, 'sh', '-c', 'id -u; ip -j -d link show eth0; ip -4 -o addr show eth0; grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status']);
  assert.is(r.status, 0, r.stderr);
  const [uid, link, addr, ...caps] = r.stdout.trim().split('\n');
  assert.is(uid, String(NOBODY));
  const info = (JSON.parse(link!) as { linkinfo: { info_kind: string; info_data: { mode: string } } }[])[0]!.linkinfo;
  assert.equal([info.info_kind, info.info_data.mode], ['ipvlan', 'l3s']);
  assert.match(addr!, /^\d+: eth0\s+inet 10\.30\.0\.\d+\/24 /, addr);
  assert.is(caps.length, 4);
  for (const l of caps) assert.match(l, /:\s+0000000000000000$/, l);
  chmodSync(c, 0o600);
  const denied = run([...as(NOBODY), join(bin, 'mkipvlan'), '-c', c, 'true']);
  assert.is(failsWith(denied, 'mkipvlan', 111, /^mkipvlan: fatal: open .*: Permission denied \(EACCES\)$/), null, denied.stderr);
});

test.run();

// mkipvlan in the kernel VM lane (tools/guest/vm-lane.mjs): Debian's stock
// kernel has ipvlan. The launcher suite in the default mode (l3s), then
// what is ipvlan's own: the modes' routes, and the kernel's duplicate check
// (EADDRINUSE) arbitrating addresses mkipvlan cannot see.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, sh, failsWith, until } from '../../../tools/test/lib/harness.js';
import { launcherSuite, hold } from '../../../tools/test/lib/launcher.js';

const { conf } = launcherSuite({ prog: 'mkipvlan', wrongMode: ['bridge', /-m: expected l3s, l3, l2/], routesViaGateway: false });

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

test.run();

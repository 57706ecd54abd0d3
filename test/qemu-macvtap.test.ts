// A real guest on a macvtap (issue 17), in one boot: Debian's stock kernel
// and the pin guest (tools/guest/pin-guest.mjs) under QEMU (TCG) as uid
// 65534, its 2-queue pinned macvtap from the documented service chain
// (s6-ipcserver, peer-check, mkmacvtap, fd-send; the client s6-ipcclient +
// fd-recv), on a veth end of the test's namespace whose other macvlan
// child, in bridge mode, is a peer namespace's interface. The guest sees 2
// queues, pings the peer as itself, fails as a foreign address and a
// foreign MAC, pings again as itself; then QEMU is killed with SIGKILL and
// netgrant-reap must delete the macvtap within 1 s. (The unpinned control,
// every spoof through, is lib/pin-cases.ts's macvtap case.)
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): a real guest's traffic
// through its macvtap; the chain that hands it over is run both ways by
// mkmacvtap's own file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, BASE_ENV, NOBODY } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';
// @ts-expect-error plain ES module of the test tools
import { pinGuest, pinAppend } from '../tools/guest/pin-guest.mjs';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const guest = pinGuest() as { kernel: string; initrd: string };
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
const VHOST = existsSync('/dev/vhost-net') ? 'on' : 'off';
const macvtaps = () => (JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'macvtap']).stdout || '[]') as { ifname: string }[]).map((l) => l.ifname);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

sh([
  'ip link add mvq0 type veth peer name mvq1 && ip link set mvq0 up && ip link set mvq1 up',
  'ip netns add mvq-peer && ip link add mvqpeer link mvq0 type macvlan mode bridge && ip link set mvqpeer netns mvq-peer',
  'ip -n mvq-peer addr add 10.9.4.1/24 dev mvqpeer && ip -n mvq-peer link set mvqpeer up && ip -n mvq-peer link set lo up',
].join(' && '));

test('a 2-queue pinned macvtap: the guest sees 2 queues, reaches the macvlan peer, its spoofs do not; after kill -9 of QEMU no macvtap within 1 s', async () => {
  const reaper = spawn('netgrant-reap', ['-i', '200'], { env: BASE_ENV, stdio: 'ignore' });
  const sock = join(dir, 'macvtap.sock');
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY),
    'mkmacvtap', '-l', 'mvq0', '-q', '2', '--vnet-hdr', '--pin', '--guest-ip', '10.9.4.2', 'fd-send', '-s', '1', '-d', '3,4', '-e', 'TAPNAME,GUESTMAC'], sock);
  try {
    const append = `${pinAppend('10.9.4.2/24', '10.9.4.1', '10.9.4.66/24', '52:54:00:66:66:66')} nghold=1`;
    const qemu = `exec qemu-system-x86_64 -machine pc -accel tcg -m 256 -smp 2 -nographic -no-reboot -kernel ${guest.kernel} -initrd ${guest.initrd} -append '${append}' ` +
      `-netdev tap,id=n0,fds=3:4,vhost=${VHOST} -device "virtio-net-pci,netdev=n0,mq=on,vectors=6,mac=$GUESTMAC"`;
    // Each link execs the next: the process spawned ends as QEMU itself.
    const p = spawn(asNobody[0]!, [...asNobody.slice(1), 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3,4', '-e', 'TAPNAME,GUESTMAC', 'sh', '-c', qemu], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    for (let i = 0; i < 2400 && !/NETGRANT-GUEST .*/.test(out) && p.exitCode === null; i++) await sleep(100);
    const line = /NETGRANT-GUEST .*/.exec(out)?.[0] ?? '';
    assert.is(/NETGRANT-QUEUES (\d+)/.exec(out)?.[1], '2', out.slice(-3000) + s.output());
    assert.is(line, 'NETGRANT-GUEST own=ok foreign-ip=fail foreign-mac=fail back=ok', out.slice(-3000) + s.output());
    assert.is(macvtaps().length, 1, 'the macvtap lives while QEMU does');
    assert.is(p.exitCode, null, 'QEMU still runs');
    p.kill('SIGKILL');
    const killed = Date.now();
    while (macvtaps().length && Date.now() - killed < 3000) await sleep(50);
    const took = Date.now() - killed;
    assert.equal(macvtaps(), [], 'the reaper deleted it');
    assert.ok(took <= 1000, `gone ${took} ms after kill -9 (at most 1000)`);
  } finally {
    await s.stop();
    reaper.kill('SIGKILL');
  }
});

test.after(() => {
  sh('ip netns del mvq-peer; ip link del mvq0');
  cleanup();
});
test.run();

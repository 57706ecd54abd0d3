// End to end with a real guest: Debian's stock kernel and a busybox
// initramfs boot under QEMU (TCG) as uid 65534, with a tap from netgrant on
// a bridge in the test's own namespace; the guest pings the bridge.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): a real guest's traffic
// through its tap; the chains that hand the tap over are run both ways by
// mktap's and the bridge helper's own files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, BASE_ENV, NOBODY } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';
// @ts-expect-error plain ES module of the test tools
import { pingGuest, pingAppend } from '../tools/guest/ping-guest.mjs';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const guest = pingGuest() as { kernel: string; initrd: string };
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const qemu = (append: string, netdev: string[]) => [
  'timeout', '180', 'qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', '256', '-smp', '2', '-nographic', '-no-reboot',
  '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', append, ...netdev,
];
const taps = () => JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout || '[]') as { ifname: string }[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

sh('ip link add br-vm type bridge && ip addr add 10.9.0.1/24 dev br-vm && ip link set br-vm up');

test('(a) tap service under s6-ipcserver; QEMU as nobody gets fd 3 through s6-ipcclient + fd-recv', async () => {
  const sock = join(dir, 'tap.sock');
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 'mktap', '-b', 'br-vm', '--vnet-hdr', '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME'], sock);
  try {
    const r = run([...asNobody, 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME',
      ...qemu(pingAppend('10.9.0.2/24', '10.9.0.1'), ['-netdev', 'tap,id=n0,fd=3', '-device', 'virtio-net-pci,netdev=n0'])], { timeout: 200000 });
    assert.match(r.stdout, /NETGRANT-GUEST ping=ok/, r.stdout.slice(-2000) + r.stderr + s.output());
    assert.equal(taps(), [], 'no tap after QEMU exits');
  } finally {
    await s.stop();
  }
});

test('(b) -netdev bridge,helper=netgrant-bridge-helper: unmodified QEMU, no setuid anywhere', async () => {
  const conf = join(dir, 'bridge.conf');
  writeFileSync(conf, 'allow br-vm\n');
  chmodSync(conf, 0o644);
  chownSync(conf, 0, 0);
  const sock = join(dir, 'qemu-bridge.sock');
  const s = await startServer(['netgrant-serve', sock, 'peer-check', '-a', 'fd-recv', '-s', '0', '-m', '0', '-t', '5000', '-e', 'REQBRIDGE,REQVNETHDR',
    'bridge-acl', '-c', conf, 'mktap', '--bridge-from-acl', '--vnet-hdr', '-R', '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3'], sock);
  try {
    const helper = run(['sh', '-c', 'command -v netgrant-bridge-helper']).stdout.trim();
    const r = run([...asNobody, ...qemu(pingAppend('10.9.0.3/24', '10.9.0.1'), ['-netdev', `bridge,id=n0,br=br-vm,helper=${helper}`, '-device', 'virtio-net-pci,netdev=n0'])],
      { env: { ...BASE_ENV, NETGRANT_BRIDGE_SOCKET: sock }, timeout: 200000 });
    assert.match(r.stdout, /NETGRANT-GUEST ping=ok/, r.stdout.slice(-2000) + r.stderr + s.output());
    assert.equal(taps(), []);
  } finally {
    await s.stop();
  }
});

test('(c) a 2-queue tap: -netdev tap,fds=3:4 with a multiqueue virtio-net; kill -9 leaves no tap', async () => {
  const sock = join(dir, 'mq.sock');
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 'mktap', '-b', 'br-vm', '-q', '2', '--vnet-hdr', '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3,4'], sock);
  try {
    const client = [...asNobody, 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3,4'];
    const mq = ['-netdev', 'tap,id=n0,fds=3:4', '-device', 'virtio-net-pci,netdev=n0,mq=on,vectors=6'];
    const r = run([...client, ...qemu(pingAppend('10.9.0.4/24', '10.9.0.1'), mq)], { timeout: 200000 });
    assert.match(r.stdout, /NETGRANT-GUEST ping=ok queues=2/, r.stdout.slice(-2000) + r.stderr + s.output());
    assert.equal(taps(), []);
    // Killed mid-boot with SIGKILL: the kernel drops the tap with the last fd.
    const p = spawn(client[0]!, [...client.slice(1), ...qemu(pingAppend('10.9.0.5/24', '10.9.0.1'), mq).slice(2)], { env: BASE_ENV, stdio: 'ignore' });
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      await sleep(100);
      seen = taps().length === 1;
    }
    assert.ok(seen, 'the tap exists while QEMU runs');
    run(['pkill', '-KILL', '-f', 'qemu-system-x86_64 -machine pc -accel tcg -m 256 -smp 2 -nographic -no-reboot -kernel .* 10.9.0.5']);
    p.kill('SIGKILL');
    let gone = false;
    for (let i = 0; i < 60 && !gone; i++) {
      await sleep(100);
      gone = taps().length === 0;
    }
    assert.ok(gone, 'no tap after kill -9');
  } finally {
    await s.stop();
  }
});

test.after(cleanup);
test.run();

// A real guest on a pinned lease (issue 11): Debian's stock kernel and a
// busybox initramfs under QEMU (TCG) as uid 65534, its tap from the
// documented service chain (s6-ipcserver, peer-check, mktap --pin, fd-send;
// the client s6-ipcclient + fd-recv), on a bridge in the test's own
// namespace. The guest pings the bridge as itself, then from a foreign
// address it added, then with a foreign MAC, then as itself again
// (tools/guest/pin-guest.mjs). The same guest on an unpinned lease is the
// control: there every spoof gets through.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): a real guest's traffic
// through a pinned tap; the service chain's links are run both ways by
// mktap's and netgrant-serve's own files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, NOBODY } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';
// @ts-expect-error plain ES module of the test tools
import { pinGuest, pinAppend } from '../tools/guest/pin-guest.mjs';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const guest = pinGuest() as { kernel: string; initrd: string };
const GUEST_MAC = '52:54:00:12:34:56';
const FOREIGN_MAC = '52:54:00:66:66:66';
const FOREIGN_IP = '10.9.2.66';
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];

sh('ip link add br-pin type bridge && ip addr add 10.9.2.1/24 dev br-pin && ip link set br-pin up');

/** Serve leases with mktap's pin options, boot the guest as nobody on one; its result line and the host's view. */
async function boot(sockName: string, pinArgs: string[], ip: string, qemuMac: string | null) {
  sh(`ip neigh flush dev br-pin; bridge fdb del ${FOREIGN_MAC} dev br-pin master 2>/dev/null; true`);
  const sock = join(dir, sockName);
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 'mktap', '-b', 'br-pin', '--vnet-hdr', '--owner-from-peer', ...pinArgs, 'fd-send', '-s', '1', '-d', '3'], sock);
  try {
    const r = run([...asNobody, 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3',
      'timeout', '240', 'qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot',
      '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', pinAppend(`${ip}/24`, '10.9.2.1', `${FOREIGN_IP}/24`, FOREIGN_MAC),
      '-netdev', 'tap,id=n0,fd=3', '-device', `virtio-net-pci,netdev=n0${qemuMac ? `,mac=${qemuMac}` : ''}`], { timeout: 260000 });
    const line = /NETGRANT-GUEST .*/.exec(r.stdout)?.[0] ?? '';
    return { line, out: r.stdout.slice(-3000) + r.stderr + s.output(), fdb: run(['bridge', 'fdb', 'show', 'br', 'br-pin']).stdout, neigh: run(['ip', 'neigh', 'show', FOREIGN_IP]).stdout };
  } finally {
    await s.stop();
  }
}

test('mktap --pin --guest-mac --guest-ip: the guest pings the bridge; its foreign address and foreign MAC do not get through', async () => {
  const r = await boot('pin.sock', ['--pin', '--guest-mac', GUEST_MAC, '--guest-ip', '10.9.2.2'], '10.9.2.2', GUEST_MAC);
  assert.is(r.line, 'NETGRANT-GUEST own=ok foreign-ip=fail foreign-mac=fail back=ok', r.out);
  assert.not.match(r.fdb, new RegExp(FOREIGN_MAC), 'the bridge never learned the foreign MAC');
  assert.not.match(r.neigh, /lladdr/, 'the host never resolved the foreign address');
});

test('mktap --pin without --guest-mac (learn): QEMU picks the MAC, the first one the guest uses is the only one that passes', async () => {
  const r = await boot('learn.sock', ['--pin', '--guest-ip', '10.9.2.4'], '10.9.2.4', null);
  assert.is(r.line, 'NETGRANT-GUEST own=ok foreign-ip=fail foreign-mac=fail back=ok', r.out);
  assert.not.match(r.fdb, new RegExp(FOREIGN_MAC));
});

test('control: the same guest on an unpinned lease gets every spoof through', async () => {
  const r = await boot('plain.sock', [], '10.9.2.3', GUEST_MAC);
  assert.is(r.line, 'NETGRANT-GUEST own=ok foreign-ip=ok foreign-mac=ok back=ok', r.out);
});

test.after(cleanup);
test.run();

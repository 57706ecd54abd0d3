// A real guest gets its addressed lease by DHCP (issue 15): Debian's stock
// kernel and a busybox initramfs under QEMU (TCG) as uid 65534, its tap
// from the documented service chain (s6-ipcserver, peer-check, mktap
// --pool --pin, fd-send; the client s6-ipcclient + fd-recv, passing
// GUESTMAC to an unmodified QEMU), on a bridge in the test's namespace;
// netgrant-dhcpd runs as uid 65534 with no capability. busybox udhcpc in
// the guest gets the lease's address, router and MTU and pings the bridge;
// with another MAC it gets no answer. The same guest's second NIC is on a
// routed lease (mktap --routed, pinned): it gets a /32, the link-local
// router and the on-link route, and pings the router. One boot (guests are
// expensive); a second client implementation is dhcpd.test.ts's.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): a real guest's DHCP through
// a pinned tap; the chain's links run both ways in mktap's own files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, NOBODY, BASE_ENV } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';
import { confMaker } from '../tools/test/lib/launcher.js';
// @ts-expect-error plain ES module of the test tools
import { dhcpGuest, dhcpAppend } from '../tools/guest/dhcp-guest.mjs';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const guest = dhcpGuest() as { kernel: string; initrd: string };
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
let dhcpd: ChildProcess | undefined;

sh('sysctl -qw net.ipv4.ip_unprivileged_port_start=67');
sh('ip link add br-dh type bridge && ip addr add 10.93.0.1/24 dev br-dh && ip link set br-dh up');

test('bridged and routed, pinned: udhcpc in a QEMU guest gets each lease\'s address, router and MTU and pings the host; with another MAC, no answer', async () => {
  const conf = confMaker(dir);
  const pool = conf('10.93.0.0/24\n');
  const routedPool = conf('10.94.0.0/24\n');
  dhcpd = spawn(asNobody[0]!, [...asNobody.slice(1), 'netgrant-dhcpd', '-1'], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    dhcpd!.stdout!.once('data', resolve);
    dhcpd!.once('close', (c) => reject(new Error(`netgrant-dhcpd exited ${c}`)));
  });
  const sock = join(dir, 'vm.sock');
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 'mktap', '-b', 'br-dh', '--vnet-hdr', '--owner-from-peer', '-m', '1400', '--pool', pool, '--pin', 'fd-send', '-s', '1', '-d', '3', '-e', 'GUESTMAC,GUESTADDRS'], sock);
  const rsock = join(dir, 'routed.sock');
  const rs = await startServer(['s6-ipcserver', rsock, 'peer-check', '-u', String(NOBODY), 'mktap', '--routed', '--vnet-hdr', '--owner-from-peer', '-m', '1450', '--pool', routedPool, '--pin', 'fd-send', '-s', '1', '-d', '3', '-e', 'GUESTMAC,GUESTADDRS'], rsock);
  try {
    const r = run([...asNobody, 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', '-e', 'GUESTMAC,GUESTADDRS',
      'sh', '-c', `echo "LEASE $GUESTADDRS $GUESTMAC"; exec s6-ipcclient ${rsock} fd-recv -s 6 -d 4 -e GUESTMAC,GUESTADDRS sh -c 'echo "ROUTED $GUESTADDRS $GUESTMAC"; exec timeout 240 qemu-system-x86_64 -machine pc -accel tcg -m 256 -nographic -no-reboot -kernel ${guest.kernel} -initrd ${guest.initrd} -append "${dhcpAppend('52:54:00:66:66:67')}" -netdev tap,id=n0,fd=3 -device virtio-net-pci,netdev=n0,mac=${'$'}{1} -netdev tap,id=n1,fd=4 -device virtio-net-pci,netdev=n1,mac=$GUESTMAC' sh "$GUESTMAC"`], { timeout: 260000 });
    const lease = /LEASE (\S+) (\S+)/.exec(r.stdout);
    assert.ok(lease, r.stdout + r.stderr + s.output() + rs.output());
    const [addr, prefix] = lease![1]!.split('/');
    const line = /NETGRANT-DHCP .*/.exec(r.stdout)?.[0] ?? '';
    assert.is(line, `NETGRANT-DHCP ip=${addr} mask=${prefix} router=10.93.0.1 mtu=1400 ping=ok changed=fail`, r.stdout.slice(-3000) + r.stderr + s.output());
    const routed = /ROUTED (\S+) (\S+)/.exec(r.stdout);
    assert.ok(routed, r.stdout + rs.output());
    const line2 = /NETGRANT-DHCP2 .*/.exec(r.stdout)?.[0] ?? '';
    assert.is(line2, `NETGRANT-DHCP2 ip=${routed![1]!.split('/')[0]} mask=32 router=169.254.1.1 mtu=1450 staticroutes=169.254.1.1/32,0.0.0.0,0.0.0.0/0,169.254.1.1 ping=ok`, r.stdout.slice(-3000) + r.stderr + rs.output());
  } finally {
    await s.stop();
    await rs.stop();
  }
});

test.after(() => {
  dhcpd?.kill('SIGKILL');
  sh('ip link del br-dh');
  cleanup();
});
test.run();

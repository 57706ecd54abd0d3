// mkphys on real NICs: two virtio NICs of the guest on a QEMU hub of their
// own (GUEST_NICS.phys), in the kernel VM lane (docs/testing-vm.md): this
// machine's namespaces hold no physical device to lease. The NIC goes into
// a client's own namespace (uid 65534, unshare -rn), which reconfigures it
// and reaches the peer on the other NIC over the wire; a second request is
// refused while it holds it; when its namespace dies the kernel gives the
// NIC back to the initial namespace with what the client set but its
// addresses and up state, and netgrant-reap -o there restores the host's.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the subject is the kernel's
// move of a physical device; mkphys's chain (and its refusals) run natively
// in both modes in mkphys.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync, closeSync, readdirSync } from 'node:fs';
import { run, sh, failsWith, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, background } from '../../../tools/test/lib/launcher-attacks.js';
import { takeNic } from '../../../tools/test/lib/vm-nics.js';
import { tempDir } from '../../../tools/test/lib/harness.js';
import { GUEST_NICS } from '../../../tools/guest/nics.mjs';
import { chmodSync } from 'node:fs';

interface IpLink { ifname: string; address: string; mtu: number; flags: string[]; parentdev?: string; addr_info?: { local: string }[] }
const INITIAL = ['nsenter', '--net=/proc/1/ns/net'];
const linksIn = (pre: string[]): IpLink[] => JSON.parse(run([...pre, 'ip', '-d', '-j', 'addr', 'show']).stdout || '[]') as IpLink[];

const [macP, macQ] = GUEST_NICS.phys;
const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
takeNic(macP, 'ph0');
takeNic(macQ, 'ph1');
sh('ip link set ph0 up && ip netns add pq && ip link set ph1 netns pq && ip -n pq addr add 10.41.0.1/24 dev ph1 && ip -n pq link set ph1 up');
const host = linksIn([]).find((l) => l.ifname === 'ph0')!;
const c = conf('interface ph0\n');
/** The NIC, wherever it is in the initial namespace (found by its bus device). */
const inInitial = () => linksIn(INITIAL).find((l) => l.parentdev === host.parentdev);

test('mkphys -N: the NIC is the client\'s (reconfigured, on the wire); a second request is refused; back in the initial namespace without its addresses or up state, then restored by netgrant-reap -o', async () => {
  assert.ok(host.parentdev, 'a bus device');
  const k = await background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c', 'echo ready; exec sleep 300']);
  const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
  try {
    const r = run(['mkphys', '-c', c, '-P', 'ph0', '-N', '5', '-i', 'lan0', 'sh', '-c', 'echo $NETIF'], { env: { PEERUID: String(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), 'lan0');
    const client = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(k.proc.pid), 'sh', '-c',
      'ip link set lan0 mtu 1400 address 02:00:00:41:00:99 name zz9 && ip addr add 10.41.0.2/24 dev zz9 && ip link set zz9 up && ping -c 1 -W 5 10.41.0.1 >/dev/null && echo reached']);
    assert.is(client.stdout.trim(), 'reached', client.stderr);
    const again = run(['mkphys', '-c', c, '-P', 'ph0', 'true']);
    assert.is(failsWith(again, 'mkphys', 1, /-P ph0: leased \(to uid 65534\) until its namespace ends/), null, again.stderr);
  } finally {
    closeSync(ns);
    k.proc.kill('SIGKILL');
  }
  assert.ok(await until(() => inInitial() !== undefined, 10000), 'the kernel gave it back to the initial namespace');
  const back = inInitial()!;
  // What the kernel keeps and drops: the client's name, MTU and MAC come back; its addresses and up state do not.
  assert.equal([back.ifname, back.mtu, back.address], ['zz9', 1400, '02:00:00:41:00:99']);
  assert.not.ok(back.flags.includes('UP'));
  assert.equal(back.addr_info ?? [], []);
  const reap = run([...INITIAL, 'netgrant-reap', '-o', '-v']);
  assert.is(reap.status, 0, reap.stderr);
  assert.match(reap.stderr, /restored 1 leased NIC/);
  const restored = inInitial()!;
  assert.equal([restored.ifname, restored.mtu, restored.address, restored.flags.includes('UP')], ['ph0', host.mtu, host.address, true]);
  assert.equal(readdirSync('/run/netgrant/phys'), [], 'the lease is over');
});

test('mkphys into a new namespace: eth0 there, on the wire; back and restored when the launch ends', async () => {
  takeNic(macP, 'ph0');
  sh('ip link set ph0 up');
  const r = run(['mkphys', '-c', c, '-P', 'ph0', 'sh', '-c', 'ip addr add 10.41.0.3/24 dev eth0 && ping -c 1 -W 5 10.41.0.1 >/dev/null && ip -j link show']);
  assert.is(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as IpLink[]).map((l) => l.ifname).sort(), ['eth0', 'lo']);
  assert.ok(await until(() => inInitial() !== undefined, 10000), 'back in the initial namespace');
  assert.is(run([...INITIAL, 'netgrant-reap', '-o']).status, 0);
  assert.equal([inInitial()!.ifname, inInitial()!.address], ['ph0', host.address]);
  assert.equal(readdirSync('/run/netgrant/phys'), []);
});

test.after(() => {
  sh('ip netns del pq');
  cleanup();
});
test.run();

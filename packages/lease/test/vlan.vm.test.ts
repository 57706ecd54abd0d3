// 802.1Q sub-interfaces (-V, @netgrant/lease vlan/) on Debian's stock
// kernel, which has 8021q (the VM lane, docs/testing-vm.md). The wire is
// real: two virtio NICs of the guest on a QEMU hub of their own
// (GUEST_NICS.vlan); the launches go on NIC A, the peers sit on VLANs of
// NIC B in namespaces of their own.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the subject is the kernel's
// 8021q under the lease layer's code, shared by the three creators; the
// launchers' exec path is run natively in both modes by mkmacvlan's files,
// and the refusals of -V natively by every creator's own file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, sh, failsWith, until, holdChain, tempDir } from '../../../tools/test/lib/harness.js';
import { confMaker, hold, type Held } from '../../../tools/test/lib/launcher.js';
import { takeNic } from '../../../tools/test/lib/vm-nics.js';
import { chmodSync } from 'node:fs';
import { GUEST_NICS } from '../../../tools/guest/nics.mjs';

interface IpLink { ifname: string; ifindex: number; address: string; ifalias?: string; link?: string; linkinfo?: { info_kind: string; info_data?: { id?: number } } }
const links = (): IpLink[] => JSON.parse(run(['ip', '-d', '-j', 'link', 'show']).stdout || '[]') as IpLink[];
const vlans = () => links().filter((l) => l.linkinfo?.info_kind === 'vlan');
const rxPackets = (ns: string, dev: string) => (JSON.parse(run(['ip', '-n', ns, '-s', '-j', 'link', 'show', dev]).stdout) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;

const [macA, macB] = GUEST_NICS.vlan;
const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
takeNic(macA, 'vt0');
takeNic(macB, 'vt1');
// Peers on NIC B: the same address on VID 10 and on VID 20, each in a namespace of its own.
sh('ip link set vt0 up && ip link set vt1 up && ip netns add p10 && ip netns add p20');
for (const vid of [10, 20]) {
  sh(`ip link add link vt1 name vt1.${vid} type vlan id ${vid} && ip link set vt1.${vid} netns p${vid} && ` +
    `ip netns exec p${vid} sh -c 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1; ip addr add 10.40.0.1/24 dev vt1.${vid}; ip link set vt1.${vid} up'`);
}
const p10mac = (JSON.parse(run(['ip', '-n', 'p10', '-j', 'link', 'show', 'vt1.10']).stdout) as IpLink[])[0]!.address;

test('mkmacvlan -V 10: on VLAN 10 of the parent (one sub-interface, recorded, shared by two launches and a macvtap), it reaches VID 10\'s peer and nothing arrives on VID 20; mkipvlan -V 11 on one of its own; a VID outside the config is refused; each sub-interface goes with its last user', async () => {
  const c = conf('10.40.0.0/24 parent vt0 gateway 10.40.0.1\nvlan 10-11\n');
  const held: Held[] = [];
  let tap: Held['proc'] | undefined;
  try {
    held.push(await hold(['mkmacvlan', '-c', c, '-V', '10']));
    const r = run(['mkmacvlan', '-c', c, '-V', '10', 'sh', '-c', 'echo $NETPARENT; ping -c 1 -W 5 10.40.0.1 >/dev/null && ip -j neigh show 10.40.0.1']);
    assert.is(r.status, 0, r.stderr);
    const [parent, neigh] = r.stdout.trim().split('\n');
    assert.is(parent, 'vt0.10');
    assert.is((JSON.parse(neigh!) as { lladdr: string }[])[0]!.lladdr, p10mac, 'answered by the peer on VID 10');
    assert.is(rxPackets('p20', 'vt1.20'), 0, 'nothing reached VID 20');
    // mkmacvtap shares it (-l and -V: the administrator's command line).
    tap = (await holdChain(['mkmacvtap', '-l', 'vt0', '-V', '10'], 'echo ok; exec sleep 120')).proc;
    const v = vlans();
    assert.is(v.length, 1, `one sub-interface for VID 10: ${JSON.stringify(v)}`);
    assert.equal([v[0]!.ifname, v[0]!.linkinfo?.info_data?.id], ['vt0.10', 10]);
    const vt0 = links().find((l) => l.ifname === 'vt0')!;
    assert.match(v[0]!.ifalias ?? '', new RegExp(`^netgrant1 vlan parent=[0-9]+\\.${vt0.ifindex} vid=10$`));
    assert.ok(links().some((l) => l.linkinfo?.info_kind === 'macvtap' && l.link === 'vt0.10'), 'the macvtap is on it');
    // mkipvlan on another VID: a sub-interface of its own, unused once it exits.
    const ipvlan = run(['mkipvlan', '-c', c, '-V', '11', 'sh', '-c', 'echo $NETPARENT']);
    assert.is(ipvlan.stdout.trim(), 'vt0.11', ipvlan.stderr);
    const outside = run(['mkmacvlan', '-c', c, '-V', '20', 'true']);
    assert.is(failsWith(outside, 'mkmacvlan', 1, /-V 20: VLAN 20 on vt0 is not allowed by the configuration/), null, outside.stderr);
    // The launches end; the macvtap (held) still uses it.
    for (const h of held.splice(0)) h.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    assert.is(run(['netgrant-reap', '-o']).status, 0);
    assert.equal(vlans().map((l) => l.ifname), ['vt0.10'], 'vt0.11 unused and deleted, vt0.10 kept for the macvtap');
  } finally {
    for (const h of held) h.proc.kill('SIGKILL');
    tap?.kill('SIGKILL');
  }
  // Its last user gone (the macvtap's lease ends once no process holds its fds, after a grace), the sweep deletes it.
  assert.ok(await until(() => run(['netgrant-reap', '-o']).status === 0 && vlans().length === 0, 15000), JSON.stringify(vlans()));
  assert.ok(links().every((l) => l.linkinfo?.info_kind !== 'macvtap'), 'and the macvtap went');
});

test.after(() => {
  sh('ip netns del p10; ip netns del p20');
  cleanup();
});
test.run();

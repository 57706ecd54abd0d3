// netgrant-cni rootful, kind tap (for Kata-like runtimes): ADD makes a
// persistent tap in the container's namespace under CNI_IFNAME, with
// mktap's record and the attachment's key, that a VM monitor there attaches
// to by name (TUNSETIFF); CHECK; DEL by the key (again, without
// CNI_NETNS); GC by the still-valid attachments. ADD leaves nothing when a
// step fails after the tap exists: an MTU the kernel refuses, TUNSETPERSIST
// failing, the plugin killed on it (strace's fault injection). Bad keys.
//
// @netgrant-test-modes: in-process
// netgrant-cni ends every chain (a runtime execs it, it execs nothing), so
// both modes run the same code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attach, cni, container, failed, links, stop, type Container, type Json } from '../../../tools/test/lib/cni.js';

// GC looks in every namespace a process is in, other test files' too: a network name of this run's own.
const NAME = `ngtap${process.pid}`;
const net = (extra: Json = {}): Json => ({ cniVersion: '1.0.0', name: NAME, type: 'netgrant-cni', kind: 'tap', ...extra });
/** Attach to the tap by name from inside, as a VM monitor does (TUNSETIFF, IFF_TAP | IFF_NO_PI). */
const attachFromInside = (c: Container, name: string) =>
  c.inside(`python3 -c 'import fcntl,os,struct; fd=os.open("/dev/net/tun",os.O_RDWR); fcntl.ioctl(fd,0x400454ca,struct.pack("16sH",b"${name}",0x1002)); print("attached")'`);

test('ADD, CHECK, DEL, GC: a persistent tap named CNI_IFNAME in the container, its record keyed by the attachment, attachable by name from inside; the mtu; DEL again and without CNI_NETNS; GC ends what is not valid', async () => {
  const a = await container();
  const b = await container();
  try {
    const add = cni(attach('ADD', 't1', a.netns, 'tap0'), net({ mtu: 1400 }));
    assert.is(add.status, 0, add.stderr + add.stdout);
    const res = add.out!;
    assert.equal([res.interfaces.length, res.interfaces[0].name, res.interfaces[0].sandbox, res.ips, res.routes], [1, 'tap0', a.netns, [], []]);
    const seen = a.inside('ip -d -o link show tap0').stdout;
    assert.match(seen, new RegExp(`link/ether ${res.interfaces[0].mac} `));
    assert.match(seen, / mtu 1400 /);
    assert.match(seen, /tun type tap .*persist on user root/);
    assert.match(seen, new RegExp(`alias netgrant1 persist by=mktap uid=0 owner=0 group=- mac=${res.interfaces[0].mac} cni=${NAME}/t1/tap0`));
    assert.is(attachFromInside(a, 'tap0').stdout.trim(), 'attached');
    failed(cni(attach('ADD', 't1', a.netns, 'tap0'), net()), 100, new RegExp(`attachment ${NAME}/t1/tap0: .*it has an interface already`));
    failed(cni(attach('ADD', 't9', a.netns, 'tap0'), net()), 100, /tap0|busy|exists/i);

    assert.is(cni(attach('CHECK', 't1', a.netns, 'tap0'), net()).status, 0);
    failed(cni(attach('CHECK', 't1', b.netns, 'tap0'), net()), 3, /no such attachment/);
    a.inside('ip link set tap0 down');
    failed(cni(attach('CHECK', 't1', a.netns, 'tap0'), net()), 100, /tap0 is down/);

    assert.is(cni(attach('DEL', 't1', a.netns, 'tap0'), net()).status, 0);
    assert.is(links(a), 'lo');
    assert.is(cni(attach('DEL', 't1', a.netns, 'tap0'), net()).status, 0, 'DEL again');
    assert.is(cni({ ...attach('DEL', 't1', ''), CNI_NETNS: '' }, net()).status, 0, 'DEL without CNI_NETNS');
    assert.is(cni(attach('DEL', 't1', '/proc/999999999/ns/net', 'tap0'), net()).status, 0, 'DEL after the namespace is gone');
    failed(cni(attach('DEL', 't1', '/tmp', 'tap0'), net()), 4, /CNI_NETNS: not a network namespace/);

    // GC: t2 (in a) is not valid, t3 (in b) is.
    for (const [id, c] of [['t2', a], ['t3', b]] as const) assert.is(cni(attach('ADD', id, c.netns, 'tap0'), net()).status, 0);
    const gc = cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, net({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 't3', ifname: 'tap0' }] }));
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    assert.is(links(a), 'lo');
    assert.is(links(b), 'lo tap0');
  } finally {
    await stop(a, b);
  }
});

test('ADD leaves nothing when a step fails after the tap exists (an mtu over the tap\'s maximum, TUNSETPERSIST failing, the plugin killed on it); bad keys; nothing made', async () => {
  const a = await container();
  try {
    failed(cni(attach('ADD', 'f1', a.netns, 'tap0'), net({ mtu: 65535 })), 100, /change link .*EINVAL|Invalid argument/);
    assert.is(links(a), 'lo');
    // strace -P /dev/net/tun: the third ioctl on the tun fd is TUNSETPERSIST (TUNSETIFF, TUNSETOWNER before it).
    const faulty = (inject: string) => cni(attach('ADD', 'f2', a.netns, 'tap0'), net(), ['strace', '-qq', '-o', '/dev/null', '-P', '/dev/net/tun', '-e', 'trace=ioctl', '-e', `inject=ioctl:${inject}:when=3`, 'netgrant-cni']);
    failed(faulty('error=EPERM'), 100, /set tun\/tap persist.*EPERM|Operation not permitted/);
    assert.is(links(a), 'lo');
    const killed = faulty('signal=KILL');
    assert.is.not(killed.status, 0);
    assert.is(links(a), 'lo', 'the tap went with the killed plugin\'s fd');
    for (const [k, v] of [['owner', 1000], ['group', 1000], ['bridge', 'br0'], ['ipam', { type: 'host-local' }]] as const) failed(cni(attach('ADD', 'f3', a.netns, 'tap0'), net({ [k]: v })), 2, new RegExp(`^${k}|ipam: delegated IPAM is for kinds macvlan and ipvlan`));
    failed(cni(attach('ADD', 'f3', a.netns, 'tap0'), net({ mtu: 67 })), 7, /mtu: not a number from 68 to 65535/);
    failed(cni(attach('ADD', 'f3', a.netns, 'tap0'), net({ multiQueue: 'yes' })), 7, /multiQueue: not true or false/);
    assert.is(links(a), 'lo');
  } finally {
    await stop(a);
  }
});

test.run();

// TUN/TAP ioctls and the interface-name validator. Everything runs in the
// runner's private network namespace; `ip` checks what the kernel made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE, IFF_PERSIST, IFF_NOFILTER, IFF_DETACH_QUEUE, IFNAMSIZ, TUN_PATH,
  openTunDevice, tunSetIff, tunGetIff, tunGetFeatures, tunSetPersist, tunSetOwner, tunSetGroup, tunSetVnetHdrSz,
  tunGetVnetHdrSz, tunSetQueue, tunFlags, createTun, validIfName, checkIfName, ifNameProblem,
  close, isCloexec, listOpenFds, UsageError,
} from '@netgrant/core';
import { NOBODY, sh, caught } from '../../../tools/test/lib/harness.js';

/** TUNGETIFF flags without the kernel's status bits (IFF_NOFILTER = 0x1000, IFF_DETACH_QUEUE). */
const CONFIG_BITS = IFF_TUN | IFF_TAP | IFF_VNET_HDR | IFF_MULTI_QUEUE | IFF_PERSIST;

/** `ip -d link show NAME` output, or null when the device does not exist. */
function link(name: string): string | null {
  const r = sh(`ip -d link show dev '${name}'`);
  return r.status === 0 ? r.stdout : null;
}

// ------------------------------------------------------------- names

test('validIfName: the kernel dev_valid_name rules', () => {
  for (const ok of ['a', 'eth0', 'tap%d', 'x'.repeat(15), 'a.b', '...', 'br-lan_1', '\u00e9t\u00e9', '-', 'a\x1cb', Buffer.from([0x41, 0x85])]) {
    assert.ok(validIfName(ok), `accepts ${JSON.stringify(ok)}`);
    assert.is(ifNameProblem(ok), null);
  }
  const bad: [string | Buffer, string][] = [
    ['', 'empty'],
    ['x'.repeat(16), 'longer than 15 bytes'],
    ['\u00e9'.repeat(8), 'longer than 15 bytes'], // 16 bytes in UTF-8
    ['.', 'not allowed'],
    ['..', 'not allowed'],
    ['a/b', "contains '/'"],
    ['eth0:1', "contains ':'"],
    ['a b', 'contains whitespace'],
    ['a\tb', 'contains whitespace'],
    ['a\nb', 'contains whitespace'],
    ['a\vb', 'contains whitespace'],
    ['a\fb', 'contains whitespace'],
    ['a\rb', 'contains whitespace'],
    ['\u00e0', 'contains whitespace'], // UTF-8 C3 A0: the kernel's isspace(0xa0)
    [Buffer.from([0x61, 0xa0]), 'contains whitespace'],
    ['a\0b', 'contains a NUL byte'],
  ];
  for (const [name, why] of bad) {
    assert.not.ok(validIfName(name), `refuses ${JSON.stringify(name)}`);
    assert.is(ifNameProblem(name), why, JSON.stringify(name));
  }
  assert.is(IFNAMSIZ, 16);
});

test('checkIfName returns the name or throws a UsageError naming it', () => {
  assert.is(checkIfName('tap0', '-n'), 'tap0');
  assert.throws(() => checkIfName('a/b', '-n'), (e: unknown) => e instanceof UsageError && e.message === '-n: invalid interface name "a/b": contains \'/\'');
  assert.throws(() => checkIfName('', 'interface'), (e: unknown) => e instanceof UsageError && e.message === 'interface: invalid interface name "": empty');
});

test('the kernel agrees with the validator on the edge cases', () => {
  for (const [name, ok] of [['x'.repeat(15), true], ['ng\u00e9', true], ['a\x1cb', true], ['ng\u00e0', false]] as const) {
    const fd = openTunDevice();
    try {
      // Valid names reach the kernel and succeed; invalid ones stop at our check.
      const e = caught(() => tunSetIff(fd, name, IFF_TAP | IFF_NO_PI));
      assert.is(e === null, ok, `${JSON.stringify(name)}: ${e?.message}`);
      if (!ok) assert.is(e!.name, 'UsageError');
    } finally {
      close(fd);
    }
  }
  // The kernel's own verdict on byte 0xA0, asked without our validator (Python's ioctl).
  const r = sh(`python3 -c '
import fcntl, struct, os
fd = os.open("/dev/net/tun", os.O_RDWR)
try:
    fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH22x", b"ng\\xc3\\xa0", 0x1002)); print("ok")
except OSError as e: print(e.errno)
'`);
  assert.is(r.stdout.trim(), '22', 'kernel refuses byte 0xA0 with EINVAL');
});

// ------------------------------------------------------------- devices

test('open /dev/net/tun close-on-exec; TUNGETFEATURES', () => {
  const fd = openTunDevice();
  try {
    assert.is(TUN_PATH, '/dev/net/tun');
    assert.ok(isCloexec(fd));
    const f = tunGetFeatures(fd);
    for (const bit of [IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE]) assert.ok(f & bit, `feature 0x${bit.toString(16)}`);
    // Not attached yet: TUNGETIFF fails.
    const e = caught(() => tunGetIff(fd));
    assert.is(e!.name, 'SysError');
    assert.is(e!.errno, 77, 'EBADFD');
  } finally {
    close(fd);
  }
});

test('tap with a kernel-chosen name; disappears when its fd closes', () => {
  const fd = openTunDevice();
  let name = '';
  try {
    name = tunSetIff(fd, '', IFF_TAP | IFF_NO_PI);
    assert.match(name, /^tap\d+$/);
    const l = link(name);
    assert.ok(l, 'device exists');
    assert.match(l!, 'tun type tap pi off vnet_hdr off');
    assert.match(l!, 'persist off');
    assert.equal(tunGetIff(fd), { name, flags: IFF_TAP | IFF_NOFILTER });
  } finally {
    close(fd);
  }
  assert.is(link(name), null, 'gone after close');
});

test('tap with our name, a pattern, and a tun', () => {
  const a = createTun({ name: 'ngtap0' });
  const b = createTun({ name: 'ngpat%d' });
  const c = createTun({ type: 'tun', name: 'ngtun0', packetInfo: true });
  try {
    assert.is(a.name, 'ngtap0');
    assert.is(a.fds.length, 1);
    assert.is(a.flags, IFF_TAP | IFF_NO_PI);
    assert.ok(isCloexec(a.fds[0]!));
    assert.is(b.name, 'ngpat0');
    assert.is(c.name, 'ngtun0');
    // TUNGETIFF's 0x1000 is IFF_NOFILTER, not IFF_NO_PI: ip shows pi on.
    const got = tunGetIff(c.fds[0]!);
    assert.equal(got, { name: 'ngtun0', flags: IFF_TUN | IFF_NOFILTER });
    assert.is(got.flags & CONFIG_BITS, IFF_TUN);
    assert.match(link('ngtun0')!, 'tun type tun pi on');
    assert.match(link('ngtap0')!, 'link/ether');
  } finally {
    for (const d of [a, b, c]) for (const fd of d.fds) close(fd);
  }
  for (const n of ['ngtap0', 'ngpat0', 'ngtun0']) assert.is(link(n), null, `${n} gone`);
});

test('multiqueue: two fds, same name; detach and re-attach a queue', () => {
  const d = createTun({ name: 'ngmq0', queues: 2, vnetHdr: true });
  try {
    assert.is(d.fds.length, 2);
    assert.is(d.flags, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE);
    for (const fd of d.fds) assert.equal(tunGetIff(fd), { name: 'ngmq0', flags: d.flags });
    assert.match(link('ngmq0')!, 'tun type tap pi off vnet_hdr on multi_queue numqueues 2');
    tunSetQueue(d.fds[1]!, false);
    assert.match(link('ngmq0')!, 'numqueues 1');
    assert.ok(tunGetIff(d.fds[1]!).flags & IFF_DETACH_QUEUE, 'detached queue reported');
    tunSetQueue(d.fds[1]!, true);
    assert.match(link('ngmq0')!, 'numqueues 2');
    assert.not.ok(tunGetIff(d.fds[1]!).flags & IFF_DETACH_QUEUE);
    // Attaching a single-queue open to a multiqueue device fails.
    const fd = openTunDevice();
    const e = caught(() => tunSetIff(fd, 'ngmq0', IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
    close(fd);
    assert.is(e!.name, 'SysError');
    assert.is(e!.code, 'EINVAL');
    assert.match(e!.message, 'create tun/tap device ngmq0');
    // tunSetQueue on a single-queue device: EINVAL.
    const s = createTun({ name: 'ngsq0' });
    const e2 = caught(() => tunSetQueue(s.fds[0]!, false));
    close(s.fds[0]!);
    assert.is(e2!.code, 'EINVAL');
  } finally {
    for (const fd of d.fds) close(fd);
  }
  assert.is(link('ngmq0'), null);
});

test('vnet header size: set, get, EINVAL below 10', () => {
  const d = createTun({ name: 'ngvh0', vnetHdr: true });
  const fd = d.fds[0]!;
  try {
    assert.is(tunGetVnetHdrSz(fd), 10);
    tunSetVnetHdrSz(fd, 12);
    assert.is(tunGetVnetHdrSz(fd), 12);
    const e = caught(() => tunSetVnetHdrSz(fd, 4));
    assert.is(e!.code, 'EINVAL');
    assert.is(tunGetVnetHdrSz(fd), 12);
    assert.match(link('ngvh0')!, 'vnet_hdr on');
  } finally {
    close(fd);
  }
});

test('owner, group, persist; persist then non-persist removal', () => {
  const d = createTun({ name: 'ngper0' });
  let fd = d.fds[0]!;
  try {
    tunSetOwner(fd, NOBODY);
    tunSetGroup(fd, NOBODY);
    tunSetPersist(fd, true);
    const l = link('ngper0')!;
    assert.match(l, 'persist on');
    assert.match(l, 'user nobody group nogroup');
  } finally {
    close(fd);
  }
  assert.ok(link('ngper0'), 'persistent device survives its fd');
  // Root re-attaches, clears owner/group, removes persistence.
  fd = openTunDevice();
  try {
    assert.is(tunSetIff(fd, 'ngper0', IFF_TAP | IFF_NO_PI), 'ngper0');
    assert.is(tunGetIff(fd).flags & CONFIG_BITS, IFF_TAP | IFF_PERSIST);
    // The kernel cannot unset an owner: -1 is refused before the ioctl.
    assert.is(caught(() => tunSetOwner(fd, -1))!.name, 'UsageError');
    assert.is(caught(() => tunSetGroup(fd, 1.5))!.name, 'UsageError');
    tunSetOwner(fd, 0);
    tunSetGroup(fd, 0);
    assert.match(link('ngper0')!, 'user root group root');
    tunSetPersist(fd, false);
    assert.match(link('ngper0')!, 'persist off');
  } finally {
    close(fd);
  }
  assert.is(link('ngper0'), null, 'gone after the last fd of a non-persistent device');
});

test('failure paths: bad names, bad flags, wrong type, no fd leak', () => {
  const before = listOpenFds();
  for (const name of ['bad/name', 'x'.repeat(16), '.', 'a b', 'eth0:0']) {
    const e = caught(() => createTun({ name }));
    assert.is(e!.name, 'UsageError', name);
    assert.match(e!.message, 'invalid interface name');
  }
  assert.is(caught(() => createTun({ queues: 0 }))!.name, 'UsageError');
  assert.is(caught(() => createTun({ type: 'tip' as 'tap' }))!.name, 'UsageError');
  const fd = openTunDevice();
  // Neither IFF_TUN nor IFF_TAP: EINVAL from the kernel.
  const e = caught(() => tunSetIff(fd, 'ngbad0', IFF_NO_PI));
  assert.is(e!.name, 'SysError');
  assert.is(e!.code, 'EINVAL');
  close(fd);
  // Attaching a tun flag set to an existing tap: EINVAL; createTun closes what it opened.
  const t = createTun({ name: 'ngty0' });
  const e2 = caught(() => createTun({ type: 'tun', name: 'ngty0' }));
  assert.is(e2!.code, 'EINVAL');
  const e3 = caught(() => createTun({ name: 'ngty0', queues: 2 }));
  assert.is(e3!.code, 'EINVAL', 'single-queue device cannot take IFF_MULTI_QUEUE');
  close(t.fds[0]!);
  // ioctls on a non-tun fd.
  const e4 = caught(() => tunGetFeatures(0x7fff));
  assert.is(e4!.code, 'EBADF');
  assert.equal(listOpenFds(), before, 'no fd leaked');
  assert.is(tunFlags({}), IFF_TAP | IFF_NO_PI);
  assert.is(tunFlags({ type: 'tun', packetInfo: true, multiQueue: true }), IFF_TUN | IFF_MULTI_QUEUE);
});

test.run();

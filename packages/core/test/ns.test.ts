// Namespaces: nsfs checks, opening namespace files (trusted and untrusted
// paths), NS_GET_USERNS / NS_GET_OWNER_UID, identity, and unshare/setns in
// children (a namespace change cannot be undone in this process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readlinkSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import {
  CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP, CLONE_NEWTIME,
  unshare, unshareNet, setns, checkNamespace, openNamespace, openNamespaceUntrusted, currentNetns, isNamespace, nsType,
  nsTypeName, userNsOf, userNsOwnerUid, nsOwnerUid, nsId, sameNamespace, exec, close, isCloexec, listOpenFds,
  InputError, SysError, open, O_PATH,
} from '@netgrant/core';
import { NOBODY, sh, tempDir, caught } from '../../../tools/test/lib/harness.js';

function out(obj: unknown): never {
  writeSync(1, JSON.stringify(obj) + '\n');
  process.exit(0);
}

const CHILD = process.env.NETGRANT_CHILD;
if (CHILD) {
  runChild(CHILD);
} else {
  defineTests();
  test.run();
}

function runChild(name: string): void {
  switch (name) {
    case 'unshare': {
      const before = currentNetns();
      const beforeLink = readlinkSync('/proc/thread-self/ns/net');
      unshareNet();
      const after = currentNetns();
      const afterLink = readlinkSync('/proc/thread-self/ns/net');
      const main = openNamespace('/proc/self/ns/net', CLONE_NEWNET);
      const tids = readdirSync('/proc/self/task').filter((t) => t !== String(process.pid));
      const others = tids.map((t) => readlinkSync(`/proc/self/task/${t}/ns/net`));
      out({
        beforeLink, afterLink, same: sameNamespace(before, after), mainIsNew: sameNamespace(after, main),
        others, owner: nsOwnerUid(after), links: spawnSync('ip', ['-o', 'link', 'show']).stdout.toString().length,
      });
      break;
    }
    case 'unshare-then-exec':
      unshare(CLONE_NEWNET);
      exec(['/bin/sh', '-c', 'readlink /proc/self/ns/net; ip -o link show | wc -l']);
      break;
    case 'unshare-user':
      out({ err: caught(() => unshare(CLONE_NEWUSER)) });
      break;
    case 'setns': {
      const fd = openNamespaceUntrusted(process.env.TARGET!);
      const before = readlinkSync('/proc/thread-self/ns/net');
      setns(fd);
      const cur = currentNetns();
      if (!sameNamespace(cur, fd)) throw new Error('not in target');
      writeSync(2, `moved from ${before}\n`);
      exec(['/bin/sh', '-c', 'readlink /proc/self/ns/net; ip -o link show | cut -d: -f2']);
      break;
    }
    case 'setns-any': {
      // nstype 0: any namespace type; the type check is the kernel's.
      const fd = openNamespace(process.env.TARGET!);
      setns(fd, 0);
      const mnt = openNamespace('/proc/self/ns/mnt');
      const mntErr = caught(() => setns(mnt, 0)); // multi-threaded Node: EINVAL from the kernel
      out({ link: readlinkSync('/proc/thread-self/ns/net'), mntErr });
      break;
    }
    default:
      writeSync(2, `unknown child case ${name}\n`);
      process.exit(99);
  }
}

function child(name: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [process.argv[1]!], {
    env: { ...process.env, NETGRANT_CHILD: name, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
  let json: any = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not JSON */
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start a long-lived process (argv ends in `sleep 30`) and wait until it runs sleep. */
async function startSleeper(argv: string[]): Promise<ChildProcess & { pid: number }> {
  const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  const pid = p.pid!;
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep')) return p as ChildProcess & { pid: number };
    } catch {
      /* not yet */
    }
    await sleep(10);
  }
  p.kill('SIGKILL');
  throw new Error(`${argv.join(' ')} did not start`);
}

function noLeak<T>(fn: () => T): T {
  const before = listOpenFds();
  const r = fn();
  assert.equal(listOpenFds(), before, 'no fd leaked');
  return r;
}

function defineTests(): void {
  test('namespace type names', () => {
    assert.is(nsTypeName(CLONE_NEWNET), 'net');
    assert.is(nsTypeName(CLONE_NEWNS), 'mnt');
    assert.is(nsTypeName(CLONE_NEWUSER), 'user');
    assert.is(nsTypeName(CLONE_NEWPID), 'pid');
    assert.is(nsTypeName(CLONE_NEWUTS), 'uts');
    assert.is(nsTypeName(CLONE_NEWIPC), 'ipc');
    assert.is(nsTypeName(CLONE_NEWCGROUP), 'cgroup');
    assert.is(nsTypeName(CLONE_NEWTIME), 'time');
    assert.is(nsTypeName(0x1), 'type 0x1');
  });

  test('currentNetns: a close-on-exec net namespace fd, identity matches stat', () => {
    const fd = currentNetns();
    try {
      assert.ok(isCloexec(fd));
      assert.ok(isNamespace(fd));
      assert.is(nsType(fd), CLONE_NEWNET);
      const st = statSync('/proc/thread-self/ns/net', { bigint: true });
      assert.equal(nsId(fd), { dev: st.dev, ino: st.ino });
      assert.is(`net:[${st.ino}]`, readlinkSync('/proc/thread-self/ns/net'));
      const self = openNamespace('/proc/self/ns/net', CLONE_NEWNET);
      assert.ok(sameNamespace(fd, self), 'main thread = thread-self');
      const mnt = openNamespace('/proc/self/ns/mnt');
      assert.not.ok(sameNamespace(fd, mnt));
      assert.is(nsType(mnt), CLONE_NEWNS);
      close(self);
      close(mnt);
    } finally {
      close(fd);
    }
  });

  test('isNamespace / nsType on things that are not namespaces', () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(`${dir}/f`, 'x');
      const f = openSync(`${dir}/f`, 'r');
      const dn = openSync('/dev/null', 'r');
      assert.is(isNamespace(f), false);
      assert.is(isNamespace(dn), false);
      const e = caught(() => nsType(f));
      assert.is(e!.name, 'SysError');
      assert.is(e!.code, 'ENOTTY');
      assert.is(caught(() => isNamespace(9999))!.code, 'EBADF');
      close(f);
      close(dn);
    } finally {
      cleanup();
    }
  });

  test('checkNamespace and setns refuse non-netns fds with an InputError before setns', () => {
    const { dir, cleanup } = tempDir();
    const link = readlinkSync('/proc/thread-self/ns/net');
    try {
      writeFileSync(`${dir}/f`, 'x');
      const f = openSync(`${dir}/f`, 'r');
      const mnt = openNamespace('/proc/self/ns/mnt');
      const net = currentNetns();
      const user = userNsOf(net);
      let e = caught(() => setns(f));
      assert.is(e!.name, 'InputError');
      assert.is(e!.message, `fd ${f} is not a namespace`);
      e = caught(() => setns(mnt, CLONE_NEWNET));
      assert.is(e!.name, 'InputError');
      assert.is(e!.message, `fd ${mnt} is a mnt namespace, not a net namespace`);
      e = caught(() => setns(user));
      assert.is(e!.message, `fd ${user} is a user namespace, not a net namespace`);
      assert.throws(() => checkNamespace(mnt, CLONE_NEWNET, '-d 5'), (x: unknown) => x instanceof InputError && x.message === '-d 5 is a mnt namespace, not a net namespace');
      checkNamespace(mnt, 0);
      checkNamespace(net, CLONE_NEWNET);
      checkNamespace(mnt, CLONE_NEWNS);
      // An O_PATH fd of the right namespace: bad input (100), not a failed ioctl (EBADF, 111).
      const pathFd = open('/proc/thread-self/ns/net', O_PATH);
      e = caught(() => setns(pathFd));
      assert.is(e!.name, 'InputError');
      assert.is(e!.message, `fd ${pathFd} is an O_PATH fd of a namespace: open it O_RDONLY`);
      assert.throws(() => checkNamespace(pathFd, 0, '-N'), (x: unknown) => x instanceof InputError && /^-N is an O_PATH fd/.test(x.message));
      assert.is(readlinkSync('/proc/thread-self/ns/net'), link, 'still in the same netns');
      for (const fd of [f, mnt, net, user, pathFd]) close(fd);
    } finally {
      cleanup();
    }
  });

  test('openNamespace: trusted path, optional type check, errors close the fd', () => {
    noLeak(() => {
      const fd = openNamespace('/proc/thread-self/ns/net', CLONE_NEWNET);
      assert.ok(isCloexec(fd));
      close(fd);
      const e = caught(() => openNamespace('/proc/self/ns/mnt', CLONE_NEWNET));
      assert.is(e!.name, 'InputError');
      assert.is(e!.message, '/proc/self/ns/mnt is a mnt namespace, not a net namespace');
      const e2 = caught(() => openNamespace('/nonexistent/ns'));
      assert.is(e2!.name, 'SysError');
      assert.is(e2!.code, 'ENOENT');
    });
  });

  test('openNamespaceUntrusted: only nsfs files of the right type, never opens anything else', async () => {
    const { dir, cleanup } = tempDir();
    const sleeper = await startSleeper(['unshare', '--net', 'sleep', '30']);
    try {
      writeFileSync(`${dir}/f`, 'x');
      sh(`mkfifo ${dir}/fifo`);
      noLeak(() => {
        for (const p of [`${dir}/f`, `${dir}/fifo`, dir, '/dev/null', '/proc/self/status']) {
          const e = caught(() => openNamespaceUntrusted(p));
          assert.is(e!.name, 'InputError', p);
          assert.is(e!.message, `${p} is not a namespace`);
        }
        const e = caught(() => openNamespaceUntrusted('/proc/self/ns/mnt'));
        assert.is(e!.message, '/proc/self/ns/mnt is a mnt namespace, not a net namespace');
        const e2 = caught(() => openNamespaceUntrusted(`${dir}/missing`));
        assert.is(e2!.name, 'SysError');
        assert.is(e2!.code, 'ENOENT');
        const fd = openNamespaceUntrusted(`/proc/${sleeper.pid}/ns/net`);
        assert.ok(isCloexec(fd));
        assert.is(nsType(fd), CLONE_NEWNET);
        assert.is(`net:[${nsId(fd).ino}]`, readlinkSync(`/proc/${sleeper.pid}/ns/net`));
        const mine = currentNetns();
        assert.not.ok(sameNamespace(fd, mine), 'another namespace');
        close(fd);
        close(mine);
        const mntOk = openNamespaceUntrusted('/proc/self/ns/mnt', CLONE_NEWNS);
        close(mntOk);
      });
    } finally {
      sleeper.kill('SIGKILL');
      cleanup();
    }
  });

  test('openNamespaceUntrusted: a bind-mounted /run/netns name', () => {
    const r = sh('ip netns add ngtest-ns');
    assert.is(r.status, 0, r.stderr);
    try {
      const fd = openNamespaceUntrusted('/run/netns/ngtest-ns');
      assert.is(nsType(fd), CLONE_NEWNET);
      assert.is(nsOwnerUid(fd), 0);
      close(fd);
    } finally {
      sh('ip netns del ngtest-ns');
    }
  });

  test('userNsOf and owner uid of the initial user namespace', () => {
    noLeak(() => {
      const net = currentNetns();
      const user = userNsOf(net);
      assert.ok(isCloexec(user), 'NS_GET_USERNS fd is close-on-exec');
      assert.is(nsType(user), CLONE_NEWUSER);
      assert.is(userNsOwnerUid(user), 0);
      assert.is(nsOwnerUid(net), 0);
      const self = openNamespace('/proc/self/ns/user', CLONE_NEWUSER);
      assert.ok(sameNamespace(user, self));
      const e = caught(() => userNsOwnerUid(net));
      assert.is(e!.name, 'SysError');
      assert.is(e!.code, 'EINVAL');
      const dn = openSync('/dev/null', 'r');
      assert.is(caught(() => userNsOf(dn))!.code, 'ENOTTY');
      for (const fd of [net, user, self, dn]) close(fd);
    });
  });

  test('a netns created by uid 65534 in its own user namespace reports owner 65534', async () => {
    const p = await startSleeper(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--net', 'sleep', '30']);
    try {
      noLeak(() => {
        const net = openNamespaceUntrusted(`/proc/${p.pid}/ns/net`);
        assert.is(nsOwnerUid(net), NOBODY);
        const user = openNamespaceUntrusted(`/proc/${p.pid}/ns/user`, CLONE_NEWUSER);
        assert.is(userNsOwnerUid(user), NOBODY);
        const owner = userNsOf(net);
        assert.ok(sameNamespace(owner, user), 'NS_GET_USERNS names the creating userns');
        const init = openNamespace('/proc/self/ns/user');
        assert.not.ok(sameNamespace(owner, init));
        for (const fd of [net, user, owner, init]) close(fd);
      });
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('unshare(CLONE_NEWNET) moves the main thread only; /proc/thread-self/ns/net differs', () => {
    const mine = readlinkSync('/proc/thread-self/ns/net');
    const r = child('unshare');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.beforeLink, mine);
    assert.is.not(j.afterLink, mine);
    assert.is(j.same, false);
    assert.is(j.mainIsNew, true);
    assert.ok(j.others.length > 0);
    for (const o of j.others) assert.is(o, mine, 'other Node threads stay in the old netns');
    assert.is(j.owner, 0);
  });

  test('unshare then exec: the whole process is in a new netns with only lo', () => {
    const r = child('unshare-then-exec');
    assert.is(r.status, 0, r.stderr);
    const [link, count] = r.stdout.trim().split('\n');
    assert.match(link!, /^net:\[\d+\]$/);
    assert.is.not(link, readlinkSync('/proc/thread-self/ns/net'));
    assert.is(count!.trim(), '1');
  });

  test('unshare(CLONE_NEWUSER) from multi-threaded Node fails with EINVAL', () => {
    const r = child('unshare-user');
    assert.is(r.status, 0, r.stderr);
    assert.is(r.json.err.name, 'SysError');
    assert.is(r.json.err.code, 'EINVAL');
    assert.match(r.json.err.message, 'unshare user namespace');
  });

  test('setns into another process netns, then exec', async () => {
    const p = await startSleeper(['unshare', '--net', 'sh', '-c', 'ip link add ngsetns0 type veth peer name ngsetns1 && exec sleep 30']);
    try {
      const target = readlinkSync(`/proc/${p.pid}/ns/net`);
      const r = child('setns', { TARGET: `/proc/${p.pid}/ns/net` });
      assert.is(r.status, 0, r.stderr);
      const lines = r.stdout.split('\n').map((l) => l.trim());
      assert.is(lines[0], target);
      assert.ok(lines.includes('ngsetns0@ngsetns1'), r.stdout);
      assert.match(r.stderr, `moved from ${readlinkSync('/proc/thread-self/ns/net')}`);
      // A non-namespace path is refused before any setns.
      const bad = child('setns', { TARGET: '/proc/self/status' });
      assert.is.not(bad.status, 0);
      assert.match(bad.stderr, 'InputError');
      assert.match(bad.stderr, '/proc/self/status is not a namespace');
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('setns with nstype 0 accepts any type; the kernel decides', async () => {
    const p = await startSleeper(['unshare', '--net', 'sleep', '30']);
    try {
      const r = child('setns-any', { TARGET: `/proc/${p.pid}/ns/net` });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.json.link, readlinkSync(`/proc/${p.pid}/ns/net`));
      assert.is(r.json.mntErr.name, 'SysError');
      assert.is(r.json.mntErr.code, 'EINVAL');
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('InputError and SysError are distinct kinds', () => {
    assert.ok(new InputError('x') instanceof Error);
    assert.not.ok(new InputError('x') instanceof SysError);
  });
}

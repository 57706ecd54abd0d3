import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { run, sh, tempDir, failsWith, NOBODY } from '../../../tools/test/lib/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NSID = 'readlink /proc/self/ns/net';
const OWN = readlinkSync('/proc/self/ns/net');
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** A child holding a network namespace of its own (unshare --net sleep 30), once it has it. */
async function holder(): Promise<{ proc: ChildProcess; ns: string }> {
  const proc = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try {
      const ns = readlinkSync(`/proc/${proc.pid}/ns/net`);
      if (ns !== OWN) return { proc, ns };
    } catch {
      /* not yet */
    }
    await sleep(10);
  }
  proc.kill('SIGKILL');
  throw new Error('unshare --net did not get a namespace');
}

test('--new: a fresh namespace with only lo, down unless --lo', () => {
  const r = run(['netns-enter', '--new', 'sh', '-c', `${NSID}; ip -o link show | wc -l; ip -o link show lo; cat /proc/self/net/dev | tail -n +3 | cut -d: -f1`]);
  assert.is(r.status, 0, r.stderr);
  const [id, count, lo, dev] = r.stdout.trim().split('\n');
  assert.match(id!, /^net:\[\d+\]$/);
  assert.is.not(id, OWN);
  assert.is(count, '1');
  assert.match(lo!, /^1: lo: <LOOPBACK>.* state DOWN/);
  assert.is(dev!.trim(), 'lo');
  const up = run(['netns-enter', '--new', '--lo', 'sh', '-c', `${NSID}; ip -o link show lo`]);
  assert.is(up.status, 0, up.stderr);
  const [upId, upLo] = up.stdout.trim().split('\n');
  assert.is.not(upId, OWN);
  assert.match(upLo!, /<LOOPBACK,UP,LOWER_UP>/);
  const ping = run(['netns-enter', '--new', '--lo', 'ping', '-c', '1', '-W', '2', '127.0.0.1']);
  assert.is(ping.status, 0, `loopback works: ${ping.stdout}${ping.stderr}`);
});

test('-t PID and -p /proc/PID/ns/net enter that namespace', async () => {
  const h = await holder();
  try {
    const t = run(['netns-enter', '-t', String(h.proc.pid!), 'sh', '-c', NSID]);
    assert.is(t.status, 0, t.stderr);
    assert.is(t.stdout.trim(), h.ns);
    const p = run(['netns-enter', '-p', `/proc/${h.proc.pid}/ns/net`, 'sh', '-c', NSID]);
    assert.is(p.stdout.trim(), h.ns, p.stderr);
    // --lo in an existing namespace: lo comes up there, for good.
    assert.is(run(['netns-enter', '-t', String(h.proc.pid!), '--lo', 'true']).status, 0);
    assert.match(run(['nsenter', `--net=/proc/${h.proc.pid}/ns/net`, 'ip', '-o', 'link', 'show', 'lo']).stdout, /<LOOPBACK,UP,LOWER_UP>/);
  } finally {
    h.proc.kill('SIGKILL');
  }
});

test('-d FD enters the namespace open at FD and closes FD', async () => {
  const h = await holder();
  const fd = openSync(`/proc/${h.proc.pid}/ns/net`, 'r');
  try {
    const show = `${NSID}; if [ -e /proc/$$/fd/5 ]; then echo fd5-open; else echo fd5-closed; fi`;
    const r = run(['netns-enter', '-d', '5', 'sh', '-c', show], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', fd] });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, `${h.ns}\nfd5-closed\n`);
    // Other inherited fds still pass through.
    const keep = run(['netns-enter', '-d', '5', 'sh', '-c', 'readlink /proc/$$/fd/6'], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', fd, fd] });
    assert.is(keep.stdout.trim(), h.ns);
    // To keep the fd, name it as a path.
    const asPath = run(['netns-enter', '-p', '/proc/self/fd/5', 'sh', '-c', show], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', fd] });
    assert.is(asPath.stdout, `${h.ns}\nfd5-open\n`, asPath.stderr);
  } finally {
    closeSync(fd);
    h.proc.kill('SIGKILL');
  }
});

test('-n NAME enters /run/netns/NAME (the test\'s own tmpfs)', () => {
  try {
    assert.is(sh('ip netns add ng-t1').status, 0);
    const named = run(['ip', 'netns', 'exec', 'ng-t1', 'sh', '-c', NSID]).stdout.trim();
    assert.match(named, /^net:\[\d+\]$/);
    assert.is.not(named, OWN);
    const r = run(['netns-enter', '-n', 'ng-t1', '--lo', 'sh', '-c', `${NSID}; ip -o link show lo`]);
    assert.is(r.status, 0, r.stderr);
    const [id, lo] = r.stdout.trim().split('\n');
    assert.is(id, named);
    assert.match(lo!, /<LOOPBACK,UP,LOWER_UP>/);
    assert.is(run(['netns-enter', '--', '-n', 'ng-t1']).status, 100, 'options end at --');
  } finally {
    sh('ip netns del ng-t1');
  }
});

test('netns-enter then cap-drop: the program runs unprivileged in the new namespace', () => {
  const r = run(['netns-enter', '--new', '--lo', 'cap-drop', '-u', String(NOBODY), '--', 'sh', '-c', `id -u; ${NSID}; ip -o link show | wc -l; grep CapEff /proc/self/status`]);
  assert.is(r.status, 0, r.stderr);
  const [uid, id, count, eff] = r.stdout.trim().split('\n');
  assert.is(uid, String(NOBODY));
  assert.is.not(id, OWN);
  assert.is(count, '1');
  assert.match(eff!, /0000000000000000$/);
});

test('refused before setns: not a netns, a FIFO or device (never blocks), a file, bad names and numbers, no or two targets', () => {
  const { dir, cleanup } = tempDir();
  const mntFd = openSync('/proc/self/ns/mnt', 'r');
  const fileFd = openSync('/etc/passwd', 'r');
  try {
    sh(`mkfifo ${dir}/fifo`);
    const cases: [string[], Record<number, number>, number, RegExp][] = [
      [['-p', '/proc/self/ns/mnt'], {}, 100, /-p \/proc\/self\/ns\/mnt|\/proc\/self\/ns\/mnt is a mnt namespace, not a net namespace/],
      [['-p', '/etc/passwd'], {}, 100, /\/etc\/passwd is not a namespace/],
      [['-p', `${dir}/fifo`], {}, 100, /fifo is not a namespace/],
      [['-p', '/dev/null'], {}, 100, /\/dev\/null is not a namespace/],
      [['-p', dir], {}, 100, /is not a namespace/],
      [['-p', ''], {}, 100, /-p: empty path/],
      [['-p', `${dir}/missing`], {}, 111, /missing: No such file or directory \(ENOENT\)/],
      [['-d', '5'], { 5: fileFd }, 100, /-d: fd 5 is not a namespace/],
      [['-d', '5'], { 5: mntFd }, 100, /-d: fd 5 is a mnt namespace, not a net namespace/],
      [['-d', '5'], {}, 100, /-d: fd 5 is not open/],
      [['-d', 'x'], {}, 100, /-d: not a number/],
      [['-n', '../x'], {}, 100, /-n: invalid namespace name "\.\.\/x"/],
      [['-n', 'a/b'], {}, 100, /-n: invalid namespace name/],
      [['-n', '..'], {}, 100, /-n: invalid namespace name/],
      [['-n', '.'], {}, 100, /-n: invalid namespace name/],
      [['-n', ''], {}, 100, /-n: invalid namespace name/],
      [['-n', 'x'.repeat(65)], {}, 100, /-n: invalid namespace name/],
      [['-n', 'absent'], {}, 111, /\/run\/netns\/absent: No such file or directory \(ENOENT\)/],
      [['-t', '0'], {}, 100, /-t: out of range/],
      [['-t', 'self'], {}, 100, /-t: not a number/],
      [['-t', '4194303'], {}, 111, /-t 4194303: No such process \(ESRCH\)/],
      [[], {}, 100, /which namespace\? give -p, -d, -t, -n or --new/],
      [['--lo'], {}, 100, /which namespace\?/],
      [['--new', '-t', '1'], {}, 100, /give one namespace, not 2/],
      [['-p', '/proc/1/ns/net', '-n', 'x'], {}, 100, /give one namespace, not 2/],
      [['--net'], {}, 100, /unknown option --net/],
    ];
    for (const [args, fds, code, re] of cases) {
      const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore'];
      for (const [n, f] of Object.entries(fds)) stdio[Number(n)] = f;
      const r = run(['netns-enter', ...args, 'sh', '-c', 'echo EXECUTED'], { stdio, timeout: 5000 });
      assert.is(failsWith(r, 'netns-enter', code, re), null, `${args.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout, '');
    }
  } finally {
    closeSync(mntFd);
    closeSync(fileFd);
    cleanup();
  }
});

test('without privilege: EPERM/EACCES → 111, nothing exec\'d', () => {
  const cases: [string[], RegExp][] = [
    [['--new'], /unshare net namespace: Operation not permitted \(EPERM\)/],
    [['-t', '1'], /EACCES|EPERM/],
    [['-p', '/proc/1/ns/net'], /EACCES|EPERM/],
  ];
  for (const [args, re] of cases) {
    const r = run([...asNobody, 'netns-enter', ...args, 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'netns-enter', 111, re), null, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
  }
});

test.run();

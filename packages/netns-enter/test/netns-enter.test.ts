import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { openSync, readlinkSync } from 'node:fs';
import { run, sh, tempDir, failsWith } from '../../../tools/test/lib/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NSID = 'readlink /proc/self/ns/net';

test('--new: a fresh namespace with only lo, down unless --lo', () => {
  const r = run(['netns-enter', '--new', 'sh', '-c', `${NSID}; ip -o link show | wc -l; ip -o link show lo`]);
  assert.is(r.status, 0, r.stderr);
  const [id, count, lo] = r.stdout.trim().split('\n');
  assert.is.not(id, readlinkSync('/proc/self/ns/net'));
  assert.is(count, '1');
  assert.match(lo!, /state DOWN/);
  const up = run(['netns-enter', '--new', '--lo', 'ip', '-o', 'link', 'show', 'lo']);
  assert.match(up.stdout, /<LOOPBACK,UP,LOWER_UP>/);
});

test('-t PID, -p PATH, -d FD and -n NAME enter that namespace', async () => {
  const holder = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
  try {
    await sleep(200);
    const want = readlinkSync(`/proc/${holder.pid}/ns/net`);
    assert.is(run(['netns-enter', '-t', String(holder.pid!), 'sh', '-c', NSID]).stdout.trim(), want);
    assert.is(run(['netns-enter', '-p', `/proc/${holder.pid}/ns/net`, 'sh', '-c', NSID]).stdout.trim(), want);
    const fd = openSync(`/proc/${holder.pid}/ns/net`, 'r');
    const r = run(['netns-enter', '-d', '5', 'sh', '-c', NSID], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', fd] });
    assert.is(r.stdout.trim(), want);
    // /run/netns is the test's own tmpfs (private mount namespace).
    assert.is(sh('ip netns add ng-t1').status, 0);
    const named = run(['ip', 'netns', 'exec', 'ng-t1', 'sh', '-c', NSID]).stdout.trim();
    assert.match(named, /^net:\[\d+\]$/);
    assert.is(run(['netns-enter', '-n', 'ng-t1', 'sh', '-c', NSID]).stdout.trim(), named);
    sh('ip netns del ng-t1');
  } finally {
    holder.kill('SIGKILL');
  }
});

test('refused before setns: not a netns, a FIFO (never blocks), a file, bad names, no or two targets', () => {
  const { dir, cleanup } = tempDir();
  try {
    sh(`mkfifo ${dir}/fifo`);
    const cases: [string[], Record<number, number>, number, RegExp][] = [
      [['-p', '/proc/self/ns/mnt'], {}, 100, /not a net namespace|mnt namespace/],
      [['-p', '/etc/passwd'], {}, 100, /not a namespace/],
      [['-p', `${dir}/fifo`], {}, 100, /not a namespace/],
      [['-p', `${dir}/missing`], {}, 111, /ENOENT/],
      [['-d', '5'], { 5: openSync('/etc/passwd', 'r') }, 100, /-d/],
      [['-d', '5'], {}, 100, /-d: fd 5 is not open/],
      [['-n', '../x'], {}, 100, /-n: invalid namespace name/],
      [['-n', 'absent'], {}, 111, /ENOENT/],
      [['-t', '0'], {}, 100, /-t: out of range/],
      [[], {}, 100, /which namespace\?/],
      [['--new', '-t', '1'], {}, 100, /give one namespace, not 2/],
    ];
    for (const [args, fds, code, re] of cases) {
      const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore'];
      for (const [n, f] of Object.entries(fds)) stdio[Number(n)] = f;
      const r = run(['netns-enter', ...args, 'sh', '-c', 'echo EXECUTED'], { stdio, timeout: 5000 });
      assert.is(failsWith(r, 'netns-enter', code, re), null, `${args.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout, '');
    }
  } finally {
    cleanup();
  }
});

test.run();

// Exec hygiene: a program that is not Node, exec'd through the runtime,
// must see fds 0-2 open and blocking, SIGPIPE/SIGXFSZ at default, an empty
// signal mask, byte-exact non-UTF-8 argv and env, and exactly the fds
// intended. The exec'd program is dash waiting on `read`; the test reads its
// state from /proc/PID (status, fd, fdinfo, cmdline, environ). The child
// mode must load nothing that touches process.stdout before core.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import koffi from 'koffi';
import { runProgram, optString, parseFd, close, open, socketpair, exec, O_RDONLY } from '@netgrant/core';

if (process.env.EXPLICIT_ENV_CHILD) {
  // exec with an explicit environment (execvpe): exactly these variables, byte-exact.
  exec(['env'], { env: [Buffer.from('ONLY=x\xffy', 'latin1'), 'PATH=/usr/bin:/bin'] });
} else if (process.env.HYGIENE_CHILD) {
  // Make the state Node leaves behind as bad as it gets: stdout touched (pipe
  // goes O_NONBLOCK), SIGUSR1 and SIGTERM blocked on the main thread.
  console.log('child says hi');
  const sigprocmask = koffi.load('libc.so.6').func('int sigprocmask(int how, const void *set, void *oldset)');
  const set = Buffer.alloc(128);
  set.writeBigUInt64LE((1n << 9n) | (1n << 14n)); // SIGUSR1 (10), SIGTERM (15): bit n-1
  sigprocmask(0 /* SIG_BLOCK */, set, null);
  void runProgram({
    name: 'hygiene',
    usage: '-k FD prog...',
    options: [{ name: 'keep', short: 'k', value: true }],
    run(chain, opts) {
      chain.fds.keep(parseFd(optString(opts, 'keep')!, '-k'));
      if (process.env.REUSE_FD) {
        // Close inherited fd 8 and let one of our own fds take its number:
        // it must not be handed on. A socketpair of ours must not be either.
        close(8);
        const fd = open('/dev/zero', O_RDONLY);
        if (fd !== 8) throw new Error(`expected fd 8, got ${fd}`);
        socketpair();
      }
    },
  });
} else {
  // uvu touches process.stdout when loaded, so the child mode above must not load it.
  const { test } = require('uvu') as typeof import('uvu');
  const assert: typeof import('uvu/assert') = require('uvu/assert');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('exec through the runtime leaves a clean process', async () => {
    const dn7 = openSync('/dev/null', 'r');
    const dn8 = openSync('/dev/null', 'r');
    const dn9 = openSync('/dev/null', 'r');
    // bash builds non-UTF-8 argv and env bytes; node gets them byte-exact.
    const script = `exec env $'ODDVAR=x\\xfey' HYGIENE_CHILD=1 REUSE_FD=1 "$0" "$1" -k 7 /bin/sh -c 'read x' probe $'a\\xffb' ''`;
    const child = spawn('bash', ['-c', script, process.execPath, process.argv[1]!], {
      stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', dn7, dn8, dn9],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const pid = child.pid!;
    // Wait until the exec'd shell is blocked in its `read x`, read(0, …)
    // (x86-64 syscall 0 in /proc/PID/syscall). Neither the exe link nor the
    // argument area says that execve is over: begin_new_exec switches both
    // before it closes the close-on-exec fds (seen: Node's fd 3, gone a
    // moment later, under load).
    const inRead = () => {
      try {
        return readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith('0 0x0 ');
      } catch {
        return true; // gone: the assertions below say so
      }
    };
    for (let i = 0; i < 400 && !inRead(); i++) await sleep(25);
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // gone: the assertion says so
    }
    try {
      assert.is(exe, '/usr/bin/dash', `exec'd program running (stderr: ${err})`);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (k: string) => status.match(new RegExp(`^${k}:\\s+(\\S+)`, 'm'))![1];
      assert.is(field('SigBlk'), '0000000000000000', 'empty signal mask');
      assert.is(field('SigIgn'), '0000000000000000', 'SIGPIPE and SIGXFSZ not ignored');
      assert.is(field('Threads'), '1');
      const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
      // 7: kept by the link; 9: inherited and untouched, handed on; 8: inherited,
      // closed by the link and its number reused by one of ours: not handed on.
      const what = fds.map((fd) => {
        try {
          return `${fd} ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
        } catch {
          return `${fd} ?`;
        }
      });
      assert.equal(fds, [0, 1, 2, 7, 9], `exactly stdio, the kept fd and the untouched inherited fd (${what.join(', ')})`);
      for (const fd of [0, 1, 2]) {
        const flags = parseInt(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/flags:\s+(\d+)/)![1]!, 8);
        assert.is(flags & 0o4000, 0, `fd ${fd} blocking`);
      }
      const argv = readFileSync(`/proc/${pid}/cmdline`);
      assert.ok(argv.equals(Buffer.from('/bin/sh\0-c\0read x\0probe\0a\xffb\0\0', 'latin1')), `argv byte-exact: ${argv.toString('hex')}`);
      const env = readFileSync(`/proc/${pid}/environ`);
      assert.ok(env.includes(Buffer.from('\0ODDVAR=x\xfey\0', 'latin1')) || env.subarray(0, 11).equals(Buffer.from('ODDVAR=x\xfey\0', 'latin1')), 'env byte-exact');
      assert.match(out, 'child says hi');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('exec with an explicit environment passes exactly it', () => {
    const r = require('node:child_process').spawnSync(process.execPath, [process.argv[1]!], { env: { EXPLICIT_ENV_CHILD: '1', OTHER: 'y' } });
    assert.is(r.status, 0, String(r.stderr));
    assert.ok((r.stdout as Buffer).equals(Buffer.from('ONLY=x\xffy\nPATH=/usr/bin:/bin\n', 'latin1')), (r.stdout as Buffer).toString('hex'));
  });

  test('exec failures: 127 not found, 126 not executable, 0 for an empty rest', async () => {
    const runChild = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, [process.argv[1]!, '-k', '1', ...args], { env: { HYGIENE_CHILD: '1', PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        c.stderr!.on('data', (d) => (err += d));
        c.on('close', (code) => resolve({ code, err }));
      });
    const nf = await runChild(['/nonexistent/prog']);
    assert.is(nf.code, 127);
    assert.match(nf.err, /^hygiene: fatal: unable to exec \/nonexistent\/prog: No such file or directory \(ENOENT\)\n$/);
    const nx = await runChild(['/etc/passwd']);
    assert.is(nx.code, 126);
    assert.match(nx.err, /EACCES/);
    const path = await runChild(['no-such-program-anywhere']);
    assert.is(path.code, 127);
    const empty = await runChild([]);
    assert.is(empty.code, 0);
    assert.is(empty.err, '');
    const usage = await runChild(['-x']);
    assert.is(usage.code, 100);
    assert.match(usage.err, /^hygiene: fatal: unknown option -x \(usage: hygiene -k FD prog\.\.\.\)\n$/);
    const bad = await runChild(['-k', '1x']);
    assert.is(bad.code, 100);
    assert.not.match(bad.err, /at .*\.cjs/, 'no stack trace');
  });

  test.run();
}

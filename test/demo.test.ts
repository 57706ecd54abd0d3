// The README's first command must keep working from any clone, and must
// leave nothing behind: run the demo for real (tools/demo/run.mjs) from a
// copy of the checkout in a 0700 directory, make a step fail and a step
// hang through its documented knobs, and interrupt it mid-run with SIGINT
// (to its process group, as Ctrl-C does), SIGTERM and SIGKILL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, chmodSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { run, ROOT, NODE, NOBODY, tempDir, until } from '../tools/test/lib/harness.js';

// A "clone" under a 0700 home, as /root is on Debian: the working tree
// without node_modules, .git or build leftovers, plus the built toolkit.
const home = tempDir('netgrant-demo-home-');
chmodSync(home.dir, 0o700);
const clone = join(home.dir, 'netgrant');
const skip = new Set(['node_modules', '.git', '.build', '.nx']);
cpSync(ROOT, clone, { recursive: true, filter: (src) => !relative(ROOT, src).split('/').some((p) => skip.has(p)) });
const demo = join(clone, 'tools', 'demo', 'run.mjs');

/** The demo's environment: the caller's plus the knobs (PATH as npm would have it). */
const envWith = (knobs: Record<string, string> = {}) => ({ PATH: `${join(clone, 'node_modules', '.bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, ...knobs });

/** Where the demo said its copy of the toolkit is. */
const dirOf = (out: string) => /copy readable by uid nobody: (\/tmp\/netgrant-demo-\w+)/.exec(out)?.[1];

/** pid and everything under it, now (from /proc). */
function descendants(pid: number): number[] {
  let kids: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      kids = kids.concat(readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    // gone meanwhile
  }
  return [pid, ...kids.flatMap(descendants)];
}

/** Whether pid is a live process (a zombie waiting for its reaper is not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Processes anywhere whose environment names the demo's directory (every program it starts has it on PATH). */
function holdersOf(dir: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (alive(Number(p)) && readFileSync(`/proc/${p}/environ`, 'latin1').includes(dir)) found.push(`${p} ${readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' ')}`);
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

/** Start the demo in a process group of its own; resolves once its output matches `at`. */
function startDemo(knobs: Record<string, string>, at: RegExp) {
  const proc = spawn(NODE, [demo], { env: envWith(knobs), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const r = { out: '', err: '', status: null as number | null, signal: null as string | null };
  proc.stdout!.on('data', (d) => (r.out += d));
  proc.stderr!.on('data', (d) => (r.err += d));
  const ended = new Promise<typeof r>((res) => proc.on('close', (status, signal) => res(Object.assign(r, { status, signal }))));
  return { proc, r, ended, reached: until(() => at.test(r.out) || proc.exitCode !== null, 30000) };
}

test('the clone is in a 0700 directory: uid nobody cannot reach its node_modules/.bin or its bundle', () => {
  const r = run(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'test', '-r', join(clone, 'packages', 'netgrant', 'dist', 'netgrant.cjs')]);
  assert.is.not(r.status, 0, 'uid nobody could read the clone: the test would prove nothing');
});

test('npm run demo from that clone: nobody gets a tap, traffic flows, the lease ends, a stranger is refused, nothing is left', () => {
  const r = run([NODE, demo], { timeout: 120000, env: envWith() });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /uid nobody can run it/);
  assert.match(r.stdout, /running as uid 65534: fd 3 is \/dev\/net\/tun, the tap tap\d+/);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
  assert.match(r.stdout, /tun\/tap devices left: 0/);
  assert.match(r.stdout, /== demo ok/);
  const dir = dirOf(r.stdout);
  assert.ok(dir, r.stdout);
  assert.not.ok(existsSync(dir!), `${dir} is left`);
  assert.equal(holdersOf(dir!), []);
});

test('a failing step (the client chain names a program that does not exist): one line saying what failed and what to do, exit 1, nothing left', () => {
  const t0 = Date.now();
  const r = run([NODE, demo], { timeout: 60000, env: envWith({ NETGRANT_DEMO_FAIL: 'client' }) });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.ok(Date.now() - t0 < 20000, `it took ${Date.now() - t0} ms to give up`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('demo:'));
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^demo: failed: client: uid nobody got no tap: s6-ipcclient: fatal: unable to exec netgrant-demo-no-such-program: .*; .*npm ci/);
  assert.not.match(r.stdout, /demo ok/);
  const dir = dirOf(r.stdout)!;
  assert.not.ok(existsSync(dir), `${dir} is left`);
  assert.equal(holdersOf(dir), []);
});

test('a step that hangs ends at its timeout (NETGRANT_DEMO_TIMEOUT_S), with one line and exit 1', () => {
  const t0 = Date.now();
  const r = run([NODE, demo], { timeout: 60000, env: envWith({ NETGRANT_DEMO_HANG: 'server', NETGRANT_DEMO_TIMEOUT_S: '2' }) });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.ok(Date.now() - t0 < 15000, `it took ${Date.now() - t0} ms`);
  assert.match(r.stderr, /^demo: failed: server: s6-ipcserver was not listening after 2 s; /m);
  const dir = dirOf(r.stdout)!;
  assert.not.ok(existsSync(dir));
  assert.equal(holdersOf(dir), []);
});

test('an unknown step in a knob is refused (exit 100) before anything starts', () => {
  const r = run([NODE, demo], { env: envWith({ NETGRANT_DEMO_FAIL: 'nosuchstep' }) });
  assert.is(r.status, 100, r.stderr);
  assert.match(r.stderr, /^demo: NETGRANT_DEMO_FAIL=nosuchstep: not a step/);
});

for (const [sig, how, status] of [['SIGINT', 'to its process group, as Ctrl-C does', 130], ['SIGTERM', 'to its pid', 143], ['SIGKILL', 'to its pid', null]] as const) {
  test(`${sig} ${how} mid-run (service and tap holder running): every process it started is gone, and its directory${sig === 'SIGKILL' ? "'s contents" : ''}`, async () => {
    // The ping step hangs: the service and the client holding the tap are up.
    const d = startDemo({ NETGRANT_DEMO_HANG: 'ping', NETGRANT_DEMO_TIMEOUT_S: '60' }, /== Traffic/);
    assert.ok(await d.reached, d.r.out + d.r.err);
    assert.is(d.proc.exitCode, null, d.r.out + d.r.err);
    const pids = descendants(d.proc.pid!);
    const dir = dirOf(d.r.out)!;
    const cmdlines = pids.map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' '); } catch { return ''; } });
    assert.ok(cmdlines.some((c) => /\bs6-ipcserverd /.test(c)), `no service among ${cmdlines.join(' | ')}`);
    assert.ok(cmdlines.some((c) => c.includes('tap-responder.py')), `no tap holder among ${cmdlines.join(' | ')}`);
    assert.not.ok(existsSync(join(dir, 'tap.sock')), 'the socket is visible outside the demo\'s mount namespace');
    const t0 = Date.now();
    process.kill(sig === 'SIGINT' ? -d.proc.pid! : d.proc.pid!, sig);
    const r = await d.ended;
    if (status !== null) {
      assert.is(r.status, status, r.out + r.err);
      assert.ok(Date.now() - t0 < 10000, `it took ${Date.now() - t0} ms to stop`);
      assert.match(r.err, new RegExp(`^demo: interrupted \\(${sig}\\): stopping what the demo started$`, 'm'), `no interrupted line in: ${r.err}`);
    }
    assert.ok(await until(() => !pids.some(alive), 10000), `left running: ${pids.filter(alive).map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' '); } catch { return p; } }).join(' | ')}`);
    assert.equal(holdersOf(dir), []);
    if (sig === 'SIGKILL') {
      // Nothing ran to remove it: the tmpfs went with the namespace, the empty mount point stays.
      assert.equal(readdirSync(dir), []);
      rmSync(dir, { recursive: true, force: true });
    } else {
      assert.not.ok(existsSync(dir), `${dir} is left`);
    }
  });
}

test.after(home.cleanup);
test.run();

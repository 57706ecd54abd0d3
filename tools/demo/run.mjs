#!/usr/bin/env node
// The README's first command (`npm run demo`): in a throwaway network, mount
// and PID namespace, start the tap service under s6-ipcserver, let an
// unprivileged uid (nobody) obtain a tap through it, show what the kernel
// made, ping through it, and show the lease ending and a refused caller.
//
// It works from any clone, wherever it is and whoever can read it: the
// toolkit runs from a copy the demo makes (DIR below, mode 0755, a tmpfs
// private to the demo's mount namespace), so uid nobody never needs to
// reach the clone (a clone under /root, mode 0700, is fine).
//
// Every step has a timeout. A failing step ends the demo at once with one
// line on stderr, `demo: failed: STEP: what happened; what to do`, and exit
// status 1. Whatever the demo started is gone when it ends, on success,
// failure, SIGINT (Ctrl-C) or SIGTERM: every process runs in the demo's own
// PID namespace, whose first process (the inner demo below) stops them by
// pid and whose end takes any straggler with it (the kernel kills every
// process of a PID namespace when its first process exits). If the demo
// itself is killed outright (SIGKILL), its parent-death signal takes the
// namespace down the same way; only the empty DIR is then left in /tmp.
//
// Knobs (for tests):
//   NETGRANT_DEMO_FAIL=STEP       make STEP fail: its program is replaced by
//                                 one that does not exist (for `client`, the
//                                 client chain's fd-recv, the way a clone
//                                 nobody could read used to fail)
//   NETGRANT_DEMO_HANG=STEP       make STEP hang (sleep) until its timeout
//   NETGRANT_DEMO_TIMEOUT_S=N     every step's timeout, in seconds
// STEP is one of: toolkit bridge server client kernel ping lease refusal stop.
//
// Exit status: 0 ok; 1 a step failed; 100 not root or not built; 111 the
// Debian packages it needs could not be installed; 130/143 interrupted.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, existsSync, mkdirSync, cpSync, symlinkSync, copyFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = join(dirname(self), '..', '..');
const SYS_PATH = '/usr/lib/execline/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STEPS = ['toolkit', 'bridge', 'server', 'client', 'kernel', 'ping', 'lease', 'refusal', 'stop'];
const FAIL = process.env.NETGRANT_DEMO_FAIL ?? '';
const HANG = process.env.NETGRANT_DEMO_HANG ?? '';
const TIMEOUT_S = Number(process.env.NETGRANT_DEMO_TIMEOUT_S) || 0;
const MISSING = 'netgrant-demo-no-such-program';
// The inner demo starts every program in a process group of its own: a
// Ctrl-C reaches the demo only, which stops them (SIGTERM) group by group.
const INNER = Boolean(process.env.NETGRANT_DEMO_DIR);

/** One line on stderr, then exit. */
function die(code, line) {
  process.stderr.write(`demo: ${line}\n`);
  process.exit(code);
}

for (const [k, v] of [['NETGRANT_DEMO_FAIL', FAIL], ['NETGRANT_DEMO_HANG', HANG]]) {
  if (v && !STEPS.includes(v)) die(100, `${k}=${v}: not a step (${STEPS.join(' ')})`);
}

// ---------------------------------------------------------------- processes

/** Every child still running: pid -> { child, group } (group: it leads its own process group). */
const running = new Map();

/**
 * Start argv; resolves { status, signal, out, err, timedOut } when it ends or
 * after timeoutS (then killed with SIGKILL, its group too if it leads one).
 * onLine(line, stream) sees its output line by line as it comes.
 */
function start(argv, { env, timeoutS, group = INNER, onLine, stdin = 'ignore' } = {}) {
  let child;
  const done = new Promise((resolve) => {
    const r = { status: null, signal: null, out: '', err: '', timedOut: false };
    try {
      child = spawn(argv[0], argv.slice(1), { env, stdio: [stdin, 'pipe', 'pipe'], detached: group });
    } catch (e) {
      resolve({ ...r, err: String(e.message) });
      return;
    }
    child.on('error', (e) => (r.err += `${argv[0]}: ${e.code === 'ENOENT' ? 'not found' : e.message}\n`));
    if (child.pid) running.set(child.pid, { child, group });
    for (const [stream, key] of [[child.stdout, 'out'], [child.stderr, 'err']]) {
      let partial = '';
      stream.on('data', (d) => {
        r[key] += d;
        if (!onLine) return;
        const lines = (partial + d).split('\n');
        partial = lines.pop();
        for (const l of lines) onLine(l, key);
      });
    }
    const timer = timeoutS ? setTimeout(() => ((r.timedOut = true), kill(child.pid, 'SIGKILL')), timeoutS * 1000) : null;
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      running.delete(child.pid);
      resolve({ ...r, status, signal });
    });
  });
  return { child, done };
}

/** Signal one child the demo started (its whole group if it leads one). */
function kill(pid, sig) {
  const c = running.get(pid);
  if (!c) return;
  try {
    process.kill(c.group ? -pid : pid, sig);
  } catch {
    // already gone
  }
}

/** Stop every child: SIGTERM, then SIGKILL for whatever is left after a second. */
async function stopAll() {
  const left = [...running.values()];
  for (const { child } of left) kill(child.pid, 'SIGTERM');
  const gone = Promise.all(left.map(({ child }) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('close', r)))));
  const t = setTimeout(() => { for (const { child } of left) kill(child.pid, 'SIGKILL'); }, 1000);
  await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
  clearTimeout(t);
}

const timeoutOf = (s) => TIMEOUT_S || s;

// ---------------------------------------------------------------- outer: host side

if (!INNER) {
  if (process.getuid() !== 0) die(100, 'must run as root (it starts a root service and switches to uid nobody)');
  if (!existsSync(join(root, 'packages', 'netgrant', 'dist', 'netgrant.cjs'))) die(100, 'the toolkit is not built: run `npm ci` (or `npm run build`) first');

  const need = { 's6-ipcserver': 's6', ip: 'iproute2', setpriv: 'util-linux', unshare: 'util-linux', python3: 'python3', ping: 'iputils-ping', mount: 'mount' };
  const which = async (cmd) => (await start(['sh', '-c', `command -v ${cmd}`], { env: { PATH: SYS_PATH }, timeoutS: 10 }).done).status === 0;
  const missing = [];
  for (const [cmd, pkg] of Object.entries(need)) if (!(await which(cmd)) && !missing.includes(pkg)) missing.push(pkg);
  if (missing.length) {
    console.log(`demo: installing ${missing.join(' ')} from Debian`);
    const r = await start(['sh', '-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`], {
      env: process.env, timeoutS: 600, onLine: (l) => console.log(`   ${l}`),
    }).done;
    if (r.status !== 0) die(111, `failed: installing ${missing.join(' ')}: apt-get ${r.timedOut ? 'timed out after 600 s' : `exited ${r.status ?? r.signal}`}; install them by hand (apt-get install ${missing.join(' ')}) and run the demo again`);
  }

  // The toolkit's copy lives here (a tmpfs mounted by the inner demo, in its own mount namespace).
  const dir = mkdtempSync('/tmp/netgrant-demo-');
  chmodSync(dir, 0o755);
  // setpriv --pdeathsig: if this process dies in any way, unshare gets
  // SIGKILL, and --kill-child passes it to the inner demo, PID 1 of the new
  // PID namespace: the kernel then kills all that is left in it.
  const inner = start(['setpriv', '--pdeathsig', 'KILL', '--', 'unshare', '--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--', process.execPath, self], {
    env: { ...process.env, NETGRANT_DEMO_DIR: dir },
    onLine: (l, key) => (key === 'out' ? process.stdout : process.stderr).write(`${l}\n`),
  });
  let interrupted = null;
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = sig;
    // The inner demo is unshare's child; it stops what it started and exits.
    // It gets the same signal: after a Ctrl-C it may see this one before the
    // terminal's own (seen under load), and it says which it was.
    for (const pid of childrenOf(inner.child.pid)) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone
      }
    }
    // If it has not ended within 5 s, kill unshare: --kill-child does the rest.
    setTimeout(() => kill(inner.child.pid, 'SIGKILL'), 5000).unref();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  // The sum of every step's timeout, and some: the demo never outlives it.
  const overall = setTimeout(() => {
    process.stderr.write('demo: failed: the demo did not finish within 5 minutes; stopping it\n');
    kill(inner.child.pid, 'SIGKILL');
  }, 300000);
  const r = await inner.done;
  clearTimeout(overall);
  rmSync(dir, { recursive: true, force: true });
  if (interrupted) process.exit(interrupted === 'SIGINT' ? 130 : 143);
  process.exit(r.status ?? 1);
}

/** The pids of pid's children (from /proc). */
function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- inner: PID 1 of the demo's namespaces

const dir = process.env.NETGRANT_DEMO_DIR;
const bin = join(dir, 'bin');
const PATH = `${bin}:${SYS_PATH}`;
const sock = join(dir, 'tap.sock');
const say = (s) => console.log(`\n== ${s}`);
const indent = (s) => s.split('\n').filter(Boolean).map((l) => `   ${l}`).join('\n');
const lastLine = (s) => s.trim().split('\n').filter(Boolean).pop() ?? '';

let ending = false;
/** End the demo: stop what it started, then exit (PID 1's exit ends the namespace). */
async function end(code, line) {
  // Once ending, the steps still awaiting something never go on.
  if (ending) return new Promise(() => {});
  ending = true;
  if (line) process.stderr.write(`demo: ${line}\n`);
  await stopAll();
  process.exit(code);
}
/** A step failed: one line saying what and what to do. */
const fail = (step, what, todo) => end(1, `failed: ${step}: ${what}; ${todo}`);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => end(sig === 'SIGINT' ? 130 : 143, `interrupted (${sig}): stopping what the demo started`));
}

/** argv for STEP, as the knobs have it. */
const argvOf = (step, argv) => (HANG === step ? ['sleep', '3600'] : FAIL === step ? [MISSING, ...argv.slice(1)] : argv);
/** What a finished run looked like, in a few words. */
const why = (r, s) => (r.timedOut ? `timed out after ${s} s` : `${lastLine(r.err) || lastLine(r.out) || 'no output'} (exit ${r.status ?? r.signal})`);
/** Run STEP's argv to its end within its timeout; the result, or the demo ends with todo. */
async function step(name, argv, { timeoutS, ok = (r) => r.status === 0, todo, ...opts }) {
  const s = timeoutOf(timeoutS);
  const r = await start(argvOf(name, argv), { env: { PATH }, timeoutS: s, ...opts }).done;
  if (!ok(r)) await fail(name, why(r, s), todo);
  return r;
}

// This namespace's own tmpfs holds the toolkit's copy: readable by everyone, gone with the namespace.
{
  const r = await start(['mount', '-t', 'tmpfs', '-o', 'mode=0755,size=512m', 'netgrant-demo', dir], { env: { PATH }, timeoutS: 10 }).done;
  if (r.status !== 0) await fail('toolkit', `cannot mount a tmpfs on ${dir}: ${why(r, 10)}`, 'run the demo as root on Linux with mount namespaces');
  mkdirSync(bin, { mode: 0o755 });
  for (const d of ['bin', 'dist']) cpSync(join(root, 'packages', 'netgrant', d), join(dir, d), { recursive: true });
  copyFileSync(join(root, 'tools', 'demo', 'tap-responder.py'), join(dir, 'tap-responder.py'));
  chmodSync(join(dir, 'tap-responder.py'), 0o755);
}
// The programs' `#!/usr/bin/env node` finds this Node first; a copy of it if uid nobody cannot run it where it is.
{
  const r = await start(['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', '0'], { env: { PATH }, timeoutS: timeoutOf(20) }).done;
  if (r.status === 0) symlinkSync(process.execPath, join(bin, 'node'));
  else {
    console.log(`demo: uid nobody cannot run ${process.execPath}; the demo uses a copy of it`);
    copyFileSync(process.execPath, join(bin, 'node'));
    chmodSync(join(bin, 'node'), 0o755);
  }
}
const asNobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];

say(`The toolkit runs from a copy readable by uid nobody: ${dir}`);
// fd-recv with no fd to read loads the whole toolkit and refuses with exit 100.
await step('toolkit', [...asNobody, 'fd-recv', '-s', '9'], {
  timeoutS: 20,
  ok: (r) => r.status === 100 && r.err.startsWith('fd-recv: fatal:'),
  todo: `uid nobody must be able to run the copy in ${dir}: check that / and /tmp are searchable by others`,
});
console.log('   uid nobody can run it');

await step('bridge', ['sh', '-c', 'ip link set lo up && ip link add br-demo type bridge && ip addr add 10.77.0.1/24 dev br-demo && ip link set br-demo up'], {
  timeoutS: 10,
  todo: 'the kernel must allow a bridge in a new network namespace (modprobe bridge)',
});
say('In a throwaway network namespace: bridge br-demo, 10.77.0.1/24. A root tap service:');
const chain = ['peer-check', '-u', 'nobody', 'mktap', '-b', 'br-demo', '--owner-from-peer', '--max-per-peer', '2', 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME,TAPMAC'];
console.log(`   s6-ipcserver ${sock} \\\n     ${chain.join(' ')}`);
let server;
{
  // s6-ipcserver -1 writes a line to stdout once it listens. Its own process group: stopped as one.
  let ready;
  const isReady = new Promise((r) => (ready = r));
  server = start(argvOf('server', ['s6-ipcserver', '-1', sock, ...chain]), { env: { PATH }, onLine: (l, key) => key === 'out' && ready() });
  const s = timeoutOf(10);
  const outcome = await Promise.race([isReady.then(() => 'ready'), server.done, new Promise((r) => setTimeout(() => r('timeout'), s * 1000))]);
  if (outcome !== 'ready') {
    await fail('server', outcome === 'timeout' ? `s6-ipcserver was not listening after ${s} s` : `s6-ipcserver ended: ${why(outcome, s)}`, 'check that Debian\'s s6 is installed (apt-get install s6)');
  }
}

say('uid nobody asks for a tap: s6-ipcclient SOCK fd-recv -s 6 -d 3 -e TAPNAME,TAPMAC prog');
const clientArgv = [...asNobody, 's6-ipcclient', sock, FAIL === 'client' ? MISSING : 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME,TAPMAC', 'sh', '-c',
  `echo "   running as uid $(id -u): fd 3 is $(readlink /proc/$$/fd/3), the tap $TAPNAME ($TAPMAC)"; exec python3 ${join(dir, 'tap-responder.py')} 10.77.0.2 3`];
let holding;
const hasTap = new Promise((r) => (holding = r));
const client = start(HANG === 'client' ? ['sleep', '3600'] : clientArgv, {
  env: { PATH },
  onLine: (l, key) => {
    (key === 'out' ? process.stdout : process.stderr).write(`${l}\n`);
    if (/running as uid/.test(l)) holding();
  },
});
{
  const s = timeoutOf(20);
  const outcome = await Promise.race([hasTap.then(() => 'tap'), client.done, new Promise((r) => setTimeout(() => r('timeout'), s * 1000))]);
  if (outcome !== 'tap') {
    await fail('client', `uid nobody got no tap: ${outcome === 'timeout' ? `nothing after ${s} s` : why(outcome, s)}`,
      'the service or the client chain could not run: see the message above, and check that the toolkit is built (npm ci)');
  }
}

say('What the kernel says about it:');
{
  const r = await step('kernel', ['ip', '-d', 'link', 'show', 'type', 'tun'], { timeoutS: 10, todo: 'iproute2\'s ip must be able to list the namespace\'s links' });
  console.log(indent(r.out.split('\n').filter((l) => /tap|tun type|master/.test(l)).join('\n')));
}

say('Traffic: the bridge pings the tap holder (10.77.0.2)');
{
  const r = await step('ping', ['ping', '-c', '3', '-W', '2', '-w', '10', '10.77.0.2'], { timeoutS: 15, todo: 'the tap holder did not answer: see its message above' });
  console.log(indent(r.out.split('\n').filter((l) => /bytes from|packet loss/.test(l)).join('\n')));
}

say('The holder exited: the lease is over, the kernel removed the tap');
{
  const s = timeoutOf(30);
  const r = await Promise.race([client.done, new Promise((r) => setTimeout(() => r(null), s * 1000))]);
  if (!r) await fail('lease', `the tap holder was still running after ${s} s`, 'see its messages above');
  if (r.status !== 0) await fail('lease', `the tap holder failed (exit ${r.status ?? r.signal})`, 'see its messages above');
  // The kernel deletes a non-persistent tap when its last fd closes; allow it a moment.
  const left = await step('lease', ['sh', '-c', 'for i in $(seq 50); do [ "$(ip -o link show type tun | wc -l)" -eq 0 ] && break; sleep 0.1; done; ip -o link show type tun | wc -l'], {
    timeoutS: 10,
    ok: (r) => r.status === 0 && r.out.trim() === '0',
    todo: 'a tap outlived its holder: see `ip link show type tun` (it should never happen; please report it)',
  });
  console.log(`   tun/tap devices left: ${left.out.trim()}`);
}

say('uid 4242 is not in the allow list: the service refuses, the client gets nothing');
{
  const r = await step('refusal', ['setpriv', '--reuid=4242', '--regid=4242', '--clear-groups', 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', 'true'], {
    timeoutS: 20,
    ok: (r) => !r.timedOut && r.status !== 0 && r.status !== null && !/not found|unable to exec/.test(r.err),
    todo: 'the service must refuse uid 4242 (peer-check -u nobody)',
  });
  if (r.err.trim()) console.log(indent(r.err));
  console.log(`   client exit status ${r.status}`);
}

// Stop the service: its process group, SIGTERM; the step fails if it is still there after its timeout.
{
  if (running.has(server.child.pid)) {
    const s = timeoutOf(10);
    const gone = new Promise((r) => server.child.once('close', r));
    kill(server.child.pid, FAIL === 'stop' || HANG === 'stop' ? 'SIGSTOP' : 'SIGTERM');
    const outcome = await Promise.race([gone.then(() => 'gone'), new Promise((r) => setTimeout(() => r('timeout'), s * 1000))]);
    if (outcome !== 'gone') await fail('stop', `s6-ipcserver was still running ${s} s after SIGTERM`, 'the demo killed it; nothing is left');
  }
}
say('demo ok');
await end(0);

#!/usr/bin/env node
// The test runner: bundles every *.test.ts with esbuild, runs each file as
// its own process inside a fresh network and mount namespace (so nothing a
// test does reaches the host's network namespace or /run/netns), parses
// uvu's per-file summary and ends with the line `N passed, N failed`.
//
//   node tools/test/run.mjs [--jobs N] [--filter SUBSTR] [--summary FILE] [--node PATH] [path...]
//
// *.vm.test.ts files run in the kernel VM lane (tools/guest/vm-lane.mjs,
// docs/testing-vm.md), all in one guest boot, beside the native files.
//
// --node (or NETGRANT_NODE) runs the test files and, through PATH, every
// toolkit program under another Node binary (the Node version matrix).
import { build } from 'esbuild';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { bundleOptions, copyNative } from '../build/build.mjs';
import { fetchKernel } from '../guest/kernel.mjs';
import { runInGuest } from '../guest/vm-lane.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Tests count the fds their programs see: fds this runner inherited from
// whoever started it must not reach them.
const koffi = createRequire(import.meta.url)('koffi');
koffi.load('libc.so.6').func('int close_range(unsigned int, unsigned int, int)')(3, 0xffffffff, 4 /* CLOSE_RANGE_CLOEXEC */);
const args = process.argv.slice(2);
let jobs = 2;
let filter = '';
let summaryFile = '';
let nodeBin = process.env.NETGRANT_NODE || process.execPath;
// Chaining modes: every file runs with in-process chaining and again with
// NETGRANT_EXEC_ONLY=1 (every link a real exec); results must be identical.
let modes = ['in-process', 'exec-only'];
// NETGRANT_TEST_MODE (or --mode) runs one of them only.
if (process.env.NETGRANT_TEST_MODE) modes = [process.env.NETGRANT_TEST_MODE];
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--jobs') jobs = Number(args[++i]);
  else if (args[i] === '--filter') filter = args[++i];
  else if (args[i] === '--summary') summaryFile = args[++i];
  else if (args[i] === '--mode') modes = [args[++i]];
  else if (args[i] === '--node') nodeBin = args[++i];
  else roots.push(args[i]);
}

function findTests(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

if (!modes.every((m) => m === 'in-process' || m === 'exec-only')) {
  console.log(`unknown chaining mode ${modes.join(', ')}: in-process or exec-only`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const searchRoots = roots.length ? roots.map((r) => join(process.cwd(), r)) : [join(root, 'packages'), join(root, 'test'), join(root, 'tools')];
// NETGRANT_TEST_SKIP: files (paths from the root, comma-separated) left out
// of this run, named in its first line (CI's maintenance Node lines leave
// out the bench's smoke test: docs/testing.md).
const skipFiles = (process.env.NETGRANT_TEST_SKIP ?? '').split(',').filter(Boolean);
const files = searchRoots.flatMap((r) => (statSync(r).isFile() ? [r] : findTests(r, []))).filter((f) => f.includes(filter) && !skipFiles.includes(relative(root, f))).sort();
if (skipFiles.length) console.log(`[runner] NETGRANT_TEST_SKIP: left out ${skipFiles.join(', ')}`);
if (files.length === 0) {
  console.log('no test files found');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// Guest tests boot Debian's kernel; each test file runs in a fresh network
// namespace with no route out, so the kernel is fetched (once, cached) here,
// in the runner's own namespace.
try {
  fetchKernel();
} catch (e) {
  console.log(`[runner] cannot fetch the guest kernel (guest tests will fail): ${String(e.message).split('\n').slice(0, 3).join(' ')}`);
}

// A directory of its own, so that runs at the same time do not clobber each other.
const outdir = join(root, '.build', `test-${process.pid}`);
rmSync(outdir, { recursive: true, force: true });
process.on('exit', () => rmSync(outdir, { recursive: true, force: true }));
await build({
  ...bundleOptions(),
  entryPoints: files,
  outdir,
  outbase: root,
  outExtension: { '.js': '.cjs' },
  // Test-only libraries are loaded from node_modules.
  external: [...bundleOptions().external, 'uvu', 'uvu/*', 'fast-check'],
});
copyNative(outdir);
// Every bundle dir needs koffi.node beside it: link one copy into each.
for (const f of files) {
  const dir = join(outdir, dirname(relative(root, f)));
  if (dir !== outdir) copyNative(dir);
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const PER_FILE_TIMEOUT_MS = Number(process.env.NETGRANT_TEST_TIMEOUT_MS ?? 600000);
// A file in the VM lane runs under TCG, where everything takes 10-20 times
// as long as natively (docs/testing-vm.md): its own limit.
const VM_JOB_TIMEOUT_MS = Number(process.env.NETGRANT_VM_JOB_TIMEOUT_MS ?? 1800000);
const nodeVersion = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout?.trim() || `? (${nodeBin})`;
// A fresh netns and a private mount ns with its own /run/netns and
// /run/netgrant (the lease lock and registry: test files run side by side).
const NS_SCRIPT = 'mount --make-rprivate / && mkdir -p /run/netns /run/netgrant && mount -t tmpfs -o mode=0755 netgrant-test /run/netns && mount -t tmpfs -o mode=0755 netgrant-test /run/netgrant && ip link set lo up && exec "$@"';
const bundleOf = (file) => join(outdir, relative(root, file)).replace(/\.ts$/, '.cjs');
const envOf = (mode) => ({ NO_COLOR: '1', NETGRANT_ROOT: root, NETGRANT_NODE: nodeBin, ...(mode === 'exec-only' ? { NETGRANT_EXEC_ONLY: '1' } : {}) });
const labelOf = (file, mode) => relative(root, file) + (modes.length > 1 ? ` [${mode}]` : '');

/** Counts from a test file's output (uvu's per-file summary) and exit status. */
function summarize(out, code) {
  const text = strip(out);
  const num = (label) => {
    const m = text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'));
    return m ? Number(m[1]) : null;
  };
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') ?? 0;
  if (total === null || passed === null) return { text, pass: 0, failed: 1, skipped }; // crashed or printed no summary
  const failed = total - passed - skipped;
  return { text, pass: passed, failed: code !== 0 && failed === 0 ? 1 : failed, skipped };
}

/** Every live pid on the machine with its parent pid and network namespace. */
function processes() {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      out.push({ pid: Number(e), ppid: Number(ppid), net: readlinkSync(`/proc/${e}/ns/net`) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * SIGKILL what a test file left: every process in its network namespace
 * (`net`), and every descendant of `pid` (while it still has them). Returns
 * how many it killed, with their command lines.
 */
function killLeftovers(net, pid) {
  const procs = processes();
  const doomed = new Set(procs.filter((p) => net && p.net === net && p.pid !== process.pid).map((p) => p.pid));
  for (let grew = pid !== undefined; grew; ) {
    grew = false;
    for (const p of procs) if ((p.ppid === pid || doomed.has(p.ppid)) && !doomed.has(p.pid)) (doomed.add(p.pid), (grew = true));
  }
  const killed = [];
  for (const p of doomed) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' ').trim().slice(0, 120);
      process.kill(p, 'SIGKILL');
      // The file's own process (killed at a timeout) is not one it left.
      if (p !== pid) killed.push(`${p} ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

const ownNet = readlinkSync('/proc/self/ns/net');

function runOne(file, mode) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('unshare', ['--net', '--mount', '--', 'sh', '-c', NS_SCRIPT, 'sh', nodeBin, bundleOf(file)], {
      cwd: root,
      // NETGRANT_TEST_HOST_NETNS: the runner's own network namespace, for
      // the one test that must reach the npm registry from its file's
      // namespace (install.test); /proc/1 may be out of reach in a container.
      env: { ...process.env, ...envOf(mode), NETGRANT_TEST_HOST_NETNS: `/proc/${process.pid}/ns/net` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // The file's network namespace (once unshare has made it): whatever is
    // still in it when the file ends is the file's and is killed.
    let net = null;
    const learn = setInterval(() => {
      try {
        const n = readlinkSync(`/proc/${child.pid}/ns/net`);
        if (n !== ownNet) (net = n), clearInterval(learn);
      } catch {
        clearInterval(learn);
      }
    }, 50);
    let left = [];
    const timer = setTimeout(() => {
      out += `\n[runner] timed out after ${PER_FILE_TIMEOUT_MS} ms, killed\n`;
      left = killLeftovers(net, child.pid);
      child.kill('SIGKILL');
    }, PER_FILE_TIMEOUT_MS);
    let closed = false;
    const finish = (code) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearInterval(learn);
      const r = { file: labelOf(file, mode), ...summarize(out, code), ms: Date.now() - started };
      if (left.length) r.text += `\n[runner] killed ${left.length} process(es) the file left behind:\n${left.map((l) => `  ${l}`).join('\n')}\n`;
      r.leftovers = left.length;
      resolve(r);
    };
    child.on('exit', (code) => {
      left = [...left, ...killLeftovers(net)];
      // A leftover holding the output pipes no longer does; but do not wait for ever.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code);
      }, 5000).unref();
      child.on('close', () => finish(code));
    });
  });
}

/** The kernel VM lane: every *.vm.test.ts file, in every mode, in one guest boot; each result reported as its job ends. */
async function runVmLane(pairs, report) {
  const jobs = pairs.map(([f, m]) => ({ bundle: bundleOf(f), env: envOf(m) }));
  const resultOf = ([f, m], r) => ({ file: `${labelOf(f, m)} (VM lane)`, ...summarize(r.text, r.code), ms: r.seconds === undefined ? null : r.seconds * 1000 });
  const told = new Set();
  try {
    await runInGuest({
      jobs, script: NS_SCRIPT, nodeBin, workDir: outdir, jobTimeoutMs: VM_JOB_TIMEOUT_MS,
      onJob: (i, r) => (told.add(i), report(resultOf(pairs[i], r))),
    });
  } catch (e) {
    for (const [i, p] of pairs.entries()) if (!told.has(i)) report(resultOf(p, { text: `[vm-lane] ${e.stack ?? e}`, code: null }));
  }
}

const results = [];
const isVm = (f) => f.endsWith('.vm.test.ts');
// A file may run in fewer chaining modes than the run's: a header line
// `// @netgrant-test-modes: in-process` (the reason belongs beside it).
const modesOf = (f) => {
  const m = /^\/\/ @netgrant-test-modes: *([a-z, -]+)$/m.exec(readFileSync(f, 'utf8').slice(0, 4000));
  return m ? modes.filter((mode) => m[1].split(/[ ,]+/).includes(mode)) : modes;
};
// A file marked `// @netgrant-test-slow` in its header starts before the
// others (the longest jobs first: the run's tail is shorter).
const isSlow = (f) => /^\/\/ @netgrant-test-slow\b/m.test(readFileSync(f, 'utf8').slice(0, 4000));
const pairsOf = (fs) => [...fs.filter(isSlow), ...fs.filter((f) => !isSlow(f))].flatMap((f) => modesOf(f).map((m) => [f, m]));
// NETGRANT_VM_LANE=0 leaves the lane out (CI's extra Node versions: the
// lane tests the kernel, and runs under one Node line).
const vmOff = process.env.NETGRANT_VM_LANE === '0';
if (vmOff && files.some(isVm)) console.log(`[runner] NETGRANT_VM_LANE=0: the kernel VM lane is left out (${files.filter(isVm).map((f) => relative(root, f)).join(', ')})`);
const vmPairs = vmOff ? [] : pairsOf(files.filter(isVm));
const nativePairs = pairsOf(files.filter((f) => !isVm(f)));
const total = vmPairs.length + nativePairs.length;
let passedSoFar = 0;
let failedSoFar = 0;
/** One line per test file (and mode) as it finishes, with the running count; its output too if it failed. */
function report(r) {
  results.push(r);
  passedSoFar += r.pass;
  failedSoFar += r.failed;
  const time = r.ms === null ? '' : `, ${(r.ms / 1000).toFixed(1)} s`;
  const left = r.leftovers ? `; killed ${r.leftovers} leftover process(es)` : '';
  console.log(`[${results.length}/${total}] ${r.failed ? 'FAIL' : 'ok'} ${r.file} (${r.pass} passed, ${r.failed} failed${time}${left}) — ${passedSoFar} passed, ${failedSoFar} failed so far`);
  if (r.failed || r.leftovers || process.env.NETGRANT_TEST_VERBOSE) {
    console.log(r.text.split('\n').map((l) => `     | ${l}`).join('\n'));
  }
}
console.log(`[runner] ${total} test runs (${files.length - (vmOff ? files.filter(isVm).length : 0)} files${modes.length > 1 ? ` × ${modes.join(', ')}` : `, ${modes[0]}`}${vmPairs.length ? `; ${vmPairs.length} in the kernel VM lane, beside the native ones` : ''}), ${jobs} at a time, under Node ${nodeVersion}`);
// The guest is the longest job: it starts first and runs beside the native
// files (it takes one of the `jobs` slots while it runs).
const jobsList = [...(vmPairs.length ? [() => runVmLane(vmPairs, report)] : []), ...nativePairs.map(([f, m]) => async () => report(await runOne(f, m)))];
let next = 0;
async function worker() {
  while (next < jobsList.length) await jobsList[next++]();
}
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
const passed = results.reduce((a, r) => a + r.pass, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
const skipped = results.reduce((a, r) => a + r.skipped, 0);
const line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
if (summaryFile) writeFileSync(summaryFile, line + '\n');
mkdirSync(join(root, '.build'), { recursive: true });
writeFileSync(join(root, '.build', 'test-summary.txt'), line + '\n');
console.log(line);
process.exit(failed ? 1 : 0);

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
import { spawn } from 'node:child_process';
import { readdirSync, statSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
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
const files = searchRoots.flatMap((r) => (statSync(r).isFile() ? [r] : findTests(r, []))).filter((f) => f.includes(filter)).sort();
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
// A fresh netns and a private mount ns with its own /run/netns.
const NS_SCRIPT = 'mount --make-rprivate / && mkdir -p /run/netns && mount -t tmpfs -o mode=0755 netgrant-test /run/netns && ip link set lo up && exec "$@"';
const bundleOf = (file) => join(outdir, relative(root, file)).replace(/\.ts$/, '.cjs');
const envOf = (mode) => ({ NO_COLOR: '1', NETGRANT_ROOT: root, NETGRANT_NODE: nodeBin, ...(mode === 'exec-only' ? { NETGRANT_EXEC_ONLY: '1' } : {}) });
const labelOf = (file, mode) => relative(root, file) + (modes.length > 1 ? `  [${mode}]` : '');

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

function runOne(file, mode) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('unshare', ['--net', '--mount', '--', 'sh', '-c', NS_SCRIPT, 'sh', nodeBin, bundleOf(file)], {
      cwd: root,
      env: { ...process.env, ...envOf(mode) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[runner] timed out after ${PER_FILE_TIMEOUT_MS} ms, killed\n`;
      child.kill('SIGKILL');
    }, PER_FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve([{ file: labelOf(file, mode), ...summarize(out, code), ms: Date.now() - started }]);
    });
  });
}

/** The kernel VM lane: every *.vm.test.ts file, in every mode, in one guest boot. */
async function runVmLane(pairs) {
  const started = Date.now();
  const jobs = pairs.map(([f, m]) => ({ bundle: bundleOf(f), env: envOf(m) }));
  let out;
  try {
    out = await runInGuest({ jobs, script: NS_SCRIPT, nodeBin, workDir: outdir, jobTimeoutMs: PER_FILE_TIMEOUT_MS });
  } catch (e) {
    out = pairs.map(() => ({ text: `[vm-lane] ${e.stack ?? e}`, code: null }));
  }
  const ms = (Date.now() - started) / pairs.length;
  return pairs.map(([f, m], i) => ({ file: `${labelOf(f, m)}  (VM lane)`, ...summarize(out[i].text, out[i].code), ms }));
}

const results = [];
const isVm = (f) => f.endsWith('.vm.test.ts');
const pairsOf = (fs) => fs.flatMap((f) => modes.map((m) => [f, m]));
// NETGRANT_VM_LANE=0 leaves the lane out (CI's extra Node versions: the
// lane tests the kernel, and runs under the machine's Node).
const vmOff = process.env.NETGRANT_VM_LANE === '0';
if (vmOff && files.some(isVm)) console.log(`[runner] NETGRANT_VM_LANE=0: the kernel VM lane is left out (${files.filter(isVm).map((f) => relative(root, f)).join(', ')})`);
const vmPairs = vmOff ? [] : pairsOf(files.filter(isVm));
// The guest is the longest job: it starts first and runs beside the native files.
const jobsList = [...(vmPairs.length ? [() => runVmLane(vmPairs)] : []), ...pairsOf(files.filter((f) => !isVm(f))).map(([f, m]) => () => runOne(f, m))];
let next = 0;
async function worker() {
  while (next < jobsList.length) {
    for (const r of await jobsList[next++]()) {
      results.push(r);
      const status = r.failed ? 'FAIL' : 'ok  ';
      console.log(`${status} ${r.file}  (${r.pass} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)`);
      if (r.failed || process.env.NETGRANT_TEST_VERBOSE) {
        console.log(r.text.split('\n').map((l) => `     | ${l}`).join('\n'));
      }
    }
  }
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

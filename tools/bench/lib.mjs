// What every part of the benchmark shares: paths, running commands,
// starting and stopping the services it measures, statistics.
import { spawn, spawnSync } from 'node:child_process';
import { listening } from '../test/lib/listening.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const benchDir = join(root, 'tools', 'bench');
export const bin = join(root, 'node_modules', '.bin');
export const PATH = `${bin}:${dirname(process.execPath)}:/usr/lib/execline/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
/** PATH with the single executable's links first (npm run build-sea; docs/single-executable.md). */
export const SEA_PATH = `${join(root, 'packages', 'netgrant', 'dist', 'sea', 'bin')}:${PATH}`;
export const CA = '/etc/ssl/certs/ca-certificates.crt';
export const PYTHON = '/usr/bin/python3';
/**
 * The environment every measured program gets (nothing inherited by
 * accident, except the test runner's chaining mode for the smoke test).
 */
export const ENV = { PATH, LANG: 'C.UTF-8', ...(process.env.NETGRANT_EXEC_ONLY ? { NETGRANT_EXEC_ONLY: process.env.NETGRANT_EXEC_ONLY } : {}) };

/** Knobs for quick runs: BENCH_RUNS (hyperfine runs), BENCH_LEASES (leases per latency row). */
export const knobs = {
  runs: Number(process.env.BENCH_RUNS ?? 30),
  leases: Number(process.env.BENCH_LEASES ?? 500),
  throughputLeases: Number(process.env.BENCH_THROUGHPUT_LEASES ?? 10000),
  iperfSeconds: Number(process.env.BENCH_IPERF_SECONDS ?? 3),
  /** iperf3 runs per datapath cell; the median run is reported (one run of a few seconds varies by 10-15% here). */
  iperfRepeats: Number(process.env.BENCH_IPERF_REPEATS ?? 3),
};

/** Run argv to completion; throw with its stderr unless it exits 0. */
export function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20, ...opts, env: { ...ENV, ...(opts.env ?? {}) } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

export const sh = (script, opts) => run(['/bin/sh', '-c', script], opts);

/** Run argv to completion without blocking the event loop (servers we started keep being read); its stdout as JSON. */
export function runJson(argv, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...ENV, ...(opts.env ?? {}) } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`${argv.join(' ')}: exit ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A background process in its own process group (opts.onStdout: called
 * with each chunk of its stdout, otherwise ignored). stop() kills that group
 * (SIGTERM, SIGKILL after 2 s; SIGKILL at once with `now`), and only while
 * its leader has not been reaped, so a reused pid is never signalled.
 */
export function background(argv, opts = {}) {
  const { onStdout, ...spawnOpts } = opts;
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', onStdout ? 'pipe' : 'ignore', 'pipe'], detached: true, ...spawnOpts, env: { ...ENV, ...(opts.env ?? {}) } });
  if (onStdout) proc.stdout.on('data', onStdout);
  let err = '';
  proc.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  let exited = false;
  let reaped = false;
  let how = '';
  proc.on('exit', () => (reaped = true));
  const gone = new Promise((resolve) => proc.on('close', (code, signal) => ((exited = true), (how = `exited ${code ?? signal}`), resolve())));
  const kill = (sig) => {
    try {
      if (!reaped) process.kill(-proc.pid, sig);
    } catch {
      /* gone */
    }
  };
  return {
    pid: proc.pid,
    exited: () => exited,
    /** What it wrote on stderr, and how it ended if it did. */
    stderr: () => `${err}${how ? ` [${how}]` : ''}`,
    async stop(now = false) {
      if (exited) return;
      kill(now ? 'SIGKILL' : 'SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(t);
    },
  };
}

/** Start a server that listens on `path` (see background; opts.onStdout); resolves once it listens. */
export async function startService(argv, path, env = {}, opts = {}) {
  const service = background(argv, { ...opts, env });
  for (let i = 0; i < 400; i++) {
    if (service.exited()) throw new Error(`${argv[0]} exited early: ${service.stderr()}`);
    if (listening(path)) return service;
    await sleep(25);
  }
  await service.stop();
  throw new Error(`${argv[0]}: socket ${path} did not appear: ${service.stderr()}`);
}

/** The p-th percentile (0-100) of numbers, nearest rank. */
export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

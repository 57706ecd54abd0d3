// Shared helpers for test files: run real processes, find the built
// programs, make temp dirs. Test files are bundled by tools/test/run.mjs and
// run as root inside their own network and mount namespace.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { writeSync } from 'node:fs';
import { socketpair, close } from '@netgrant/core';
import { join, dirname } from 'node:path';

export const ROOT = process.env.NETGRANT_ROOT ?? process.cwd();
export const BIN = join(ROOT, 'node_modules', '.bin');
/** The Node binary under test (the runner's --node): its directory comes right after the toolkit on PATH. */
export const NODE = process.env.NETGRANT_NODE ?? process.execPath;
/** PATH with the toolkit first, then the Node under test. */
export const PATH = `${BIN}:${dirname(NODE)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/execline/bin`;

/**
 * The base environment of every program a test starts: the toolkit on PATH,
 * and the runner's chaining mode (NETGRANT_EXEC_ONLY=1: every link a real exec).
 */
export const BASE_ENV: Record<string, string> = process.env.NETGRANT_EXEC_ONLY ? { PATH, NETGRANT_EXEC_ONLY: process.env.NETGRANT_EXEC_ONLY } : { PATH };

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuf: Buffer;
}

/** Run argv to completion; env defaults to a clean env with the toolkit on PATH. */
export function run(argv: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    timeout: 60000,
    ...opts,
    env: { ...BASE_ENV, ...(opts.env ?? {}) },
    encoding: 'buffer',
  });
  if (r.error) throw r.error;
  const stdoutBuf = r.stdout as unknown as Buffer;
  return {
    status: r.status,
    signal: r.signal,
    stdout: stdoutBuf.toString(),
    stderr: (r.stderr as unknown as Buffer).toString(),
    stdoutBuf,
  };
}

/** Run a shell command line with sh -c. */
export function sh(script: string, opts: SpawnSyncOptions = {}): Result {
  return run(['/bin/sh', '-c', script], opts);
}

/** A fresh temp directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'netgrant-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Debian's Python (any uid can run it, unlike a per-user pyenv). */
export const PYTHON = '/usr/bin/python3';

/** The uid/gid tests use for an unprivileged caller. */
export const NOBODY = 65534;

/**
 * Run argv with the given fds placed at the given numbers in the child
 * (e.g. {3: sock, 4: pipe}); stdin ignored, stdout/stderr captured.
 */
export function runWithFds(argv: string[], fds: Record<number, number>, opts: SpawnSyncOptions = {}): Result {
  const max = Math.max(2, ...Object.keys(fds).map(Number));
  const stdio: (number | 'ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
  for (let n = 3; n <= max; n++) stdio.push('ignore');
  for (const [n, fd] of Object.entries(fds)) stdio[Number(n)] = fd;
  return run(argv, { ...opts, stdio });
}

/** The failure contract: exit `code`, exactly one stderr line `prog: fatal: ...` matching re. */
export function failsWith(r: Result, prog: string, code: number, re: RegExp): string | null {
  if (r.status !== code) return `exit ${r.status} (signal ${r.signal}), expected ${code}; stderr: ${r.stderr}`;
  const lines = r.stderr.split('\n');
  if (lines.length !== 2 || lines[1] !== '') return `expected one stderr line, got: ${JSON.stringify(r.stderr)}`;
  if (!lines[0]!.startsWith(`${prog}: fatal: `)) return `bad message format: ${lines[0]}`;
  if (!re.test(lines[0]!)) return `message ${JSON.stringify(lines[0])} does not match ${re}`;
  return null;
}

/** A readable fd (one end of a socketpair) that yields text then EOF: a stand-in resource. */
export function pipeWith(text: string): number {
  const [r, w] = socketpair();
  writeSync(w, text);
  close(w);
  return r;
}

/** Shell snippet printing the fd numbers open in the shell itself (it opens no fd to look). */
export const SHOW_FDS = 'for n in $(seq 0 20); do [ -e /proc/$$/fd/$n ] && printf "%s " $n; done; echo';

/** Assert that a promise rejects with an error whose message matches re. */
export async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!re.test((e as Error).message)) throw new Error(`rejected with ${JSON.stringify((e as Error).message)}, expected ${re}`);
    return;
  }
  throw new Error(`expected a rejection matching ${re}`);
}

/** Run fn; the error it throws as {name, code, errno, message}, or null if it returns. */
export function caught(fn: () => unknown): { name: string; code?: string; errno?: number; message: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    const err = e as Error & { code?: string; errno?: number };
    return { name: err.name, code: err.code, errno: err.errno, message: err.message };
  }
}

/** Poll check every 20 ms until it returns true or ms pass; resolves with its last answer. */
export async function until(check: () => boolean, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 20))) {
    if (check()) return true;
    if (Date.now() >= end) return false;
  }
}

/**
 * Start argv in the background followed by `sh -c SCRIPT`, where SCRIPT
 * prints one line and then holds what the chain gave it (exec sleep);
 * resolves with the process and that line, rejects with stderr if the
 * chain ends first.
 */
export function holdChain(argv: string[], script: string, env: Record<string, string> = {}): Promise<{ proc: ChildProcess; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(argv[0]!, [...argv.slice(1), 'sh', '-c', script], { env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.endsWith('\n')) resolve({ proc, out: out.trim() });
    });
    proc.stderr!.on('data', (d) => (err += d));
    proc.on('close', (code) => reject(new Error(`exited ${code}: ${err.trim()}`)));
  });
}

// Shared helpers for test files: run real processes, find the built
// programs, make temp dirs. Test files are bundled by tools/test/run.mjs and
// run as root inside their own network and mount namespace.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = process.env.NETGRANT_ROOT ?? process.cwd();
export const BIN = join(ROOT, 'node_modules', '.bin');
/** PATH with the toolkit first. */
export const PATH = `${BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/execline/bin`;

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuf: Buffer;
}

/** Run argv to completion; env defaults to a clean env with the toolkit on PATH. */
export function run(argv: string[], opts: SpawnSyncOptions & { input?: string | Buffer } = {}): Result {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { PATH, ...(opts.env ?? {}) },
    timeout: 60000,
    ...opts,
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
export function sh(script: string, opts: SpawnSyncOptions & { input?: string | Buffer } = {}): Result {
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

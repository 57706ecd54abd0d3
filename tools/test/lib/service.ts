// Start a super-server (s6-ipcserver, unixserver, systemd-socket-activate,
// s6-sudod's chain...) in its own process group for a test, wait until its
// socket accepts connections, and stop every process it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { listening } from './listening.mjs';
import { BASE_ENV } from './harness.js';

export interface Server {
  readonly path: string;
  readonly proc: ChildProcess;
  /** What the server printed so far (stdout + stderr). */
  output(): string;
  /** Wait (up to ms, less if the server ends) until the output matches re; returns whether it did. */
  waitForOutput(re: RegExp, ms?: number): Promise<boolean>;
  /** SIGTERM the whole process group, SIGKILL after 2 s; resolves when it is gone. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spawn argv (which must create a listening socket at path) and wait up to 10 s for it. */
export async function startServer(argv: string[], path: string, env: Record<string, string> = {}): Promise<Server> {
  const proc = spawn(argv[0]!, argv.slice(1), { env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  let exited = false;
  const gone = new Promise<void>((resolve) => proc.on('close', () => ((exited = true), resolve())));
  const server: Server = {
    path,
    proc,
    output: () => out,
    async waitForOutput(re, ms = 3000) {
      for (let waited = 0; !re.test(out); waited += 20) {
        // A server that has ended (its output read to the end) will print nothing more.
        if (waited >= ms || exited) return re.test(out);
        await sleep(20);
      }
      return true;
    },
    async stop() {
      if (exited) return;
      try {
        process.kill(-proc.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 2000);
      await gone;
      clearTimeout(t);
    },
  };
  for (let i = 0; i < 400; i++) {
    if (exited) throw new Error(`server exited early: ${out}`);
    if (listening(path)) return server;
    await sleep(25);
  }
  await server.stop();
  throw new Error(`server socket ${path} did not appear: ${out}`);
}

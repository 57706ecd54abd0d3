// netgrant-cni run as a container runtime runs it (CNI_* variables, the
// network configuration on stdin, the result or the error JSON on stdout),
// and "containers": processes in network namespaces of their own.
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { run, sh } from './harness.js';
import { gone } from './launcher-attacks.js';

export type Json = Record<string, any>;

export interface Cni {
  status: number | null;
  out: Json | null;
  stdout: string;
  stderr: string;
}

/** Run the plugin (or argv: another plugin) as a runtime does. */
export function cni(env: Record<string, string>, stdin: string | Json, argv = ['netgrant-cni']): Cni {
  const r = run(argv, { env, input: Buffer.from(typeof stdin === 'string' ? stdin : JSON.stringify(stdin)) });
  let out: Json | null = null;
  try {
    out = r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : null;
  } catch {
    /* asserted by the caller */
  }
  return { status: r.status, out, stdout: r.stdout, stderr: r.stderr };
}

export interface Container {
  proc: ChildProcess;
  netns: string;
  inside: (cmd: string) => ReturnType<typeof sh>;
}

/** A "container": a process in a network namespace of its own; CNI_NETNS is its /proc/PID/ns/net. */
export async function container(): Promise<Container> {
  const proc = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
  const netns = `/proc/${proc.pid}/ns/net`;
  for (let i = 0; i < 200 && sh(`[ "$(readlink ${netns})" != "$(readlink /proc/self/ns/net)" ]`).status !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  return { proc, netns, inside: (cmd) => run(['nsenter', '-n', '-t', String(proc.pid), 'sh', '-c', cmd]) };
}

/** The container's links, by name, sorted, one line. */
export const links = (c: Container) => c.inside('ip -o link show | cut -d: -f2 | cut -d@ -f1 | tr -d " " | sort | tr "\\n" " "').stdout.trim();

/** Kill the containers (their namespaces go), and wait for them. */
export async function stop(...cs: Container[]): Promise<void> {
  for (const c of cs) c.proc.kill('SIGKILL');
  for (const c of cs) await gone(c.proc);
}

/** The attachment's variables for cmd. */
export const attach = (cmd: string, id: string, netns: string, ifname = 'eth0') => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: ifname, CNI_PATH: '/usr/lib/cni' });

/** The failure: exit status non-zero, the error JSON on stdout with code, one fatal line on stderr. */
export function failed(r: Cni, code: number, re: RegExp): void {
  assert.is.not(r.status, 0, r.stdout);
  assert.ok(r.out, `error JSON on stdout: ${r.stdout}`);
  assert.is(r.out!.code, code, r.stdout);
  assert.match(`${r.out!.msg}: ${r.out!.details ?? ''}`, re);
  assert.match(r.stderr, /^netgrant-cni: fatal: .*\n$/);
}

/** A result's shape: its keys, and each interface's, ip's and route's (an empty dns left out). */
export function shape(r: Json): Json {
  const keys = (o: Json) => Object.keys(o).sort();
  return {
    top: keys(r).filter((k) => k !== 'dns' || Object.keys(r.dns).length > 0),
    interfaces: r.interfaces.map(keys),
    ips: r.ips.map(keys),
    routes: r.routes.map(keys),
  };
}

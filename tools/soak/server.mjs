// The tap service under soak: start it (s6-ipcserver or the resident
// netgrant-serve, same chain), read its footprint from /proc, stop it.
// Everything it starts is in its own process group, and only that group is
// ever signalled.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The chain every connection runs: the tap service of docs/recipes.md. */
export function chain(bridge, uid, maxPerPeer) {
  return ['peer-check', '-u', String(uid), 'mktap', '-b', bridge, '--owner-from-peer', '--max-per-peer', String(maxPerPeer), 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME'];
}

/**
 * The server commands. netgrant-serve runs under `node --trace-gc`: V8 then
 * logs the live JS heap after every full (mark-compact) GC on stdout, the
 * one leak signal RSS cannot give (V8 sizes its heap up and down by
 * megabytes while nothing leaks).
 */
/** The lease reaper beside s6-ipcserver (the resident server reaps itself): the documented deployment. */
export function startReaper(env) {
  const proc = spawn('netgrant-reap', ['-i', '1000'], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let log = '';
  proc.stderr.on('data', (d) => (log += d));
  running.add(proc.pid);
  const exited = new Promise((resolve) => proc.on('close', () => (running.delete(proc.pid), resolve())));
  return {
    log: () => log,
    async stop() {
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      await exited;
    },
  };
}

export const SERVERS = {
  s6: ({ sock, argv, concurrency }) => ['s6-ipcserver', '-1', '-c', String(concurrency * 2), sock, ...argv],
  // Every client is one uid: its per-uid limit (-C) is the server's (-c).
  resident: ({ sock, argv, concurrency, node, bin }) => [node, '--trace-gc', join(bin, 'netgrant-serve'), '-1', '-c', String(concurrency * 2), '-C', String(concurrency * 2), sock, ...argv],
};

/** The live JS heap (MB) after each full (mark-compact) GC in `node --trace-gc` output, in order. */
export const fullGcHeaps = (text) => [...text.matchAll(/Mark-Compact[^\n]*? -> ([\d.]+) \(/g)].map((m) => Number(m[1]));

const running = new Set();

/** SIGKILL the process group of every server still running (the soak is being stopped). */
export function killServers() {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Start `kind` (options: sock, argv, concurrency, env, node, bin) and
 * resolve once it wrote its readiness newline (an empty line on stdout).
 */
export async function startServer(kind, opts) {
  const cmd = SERVERS[kind](opts);
  const proc = spawn(cmd[0], cmd.slice(1), { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  let out = '';
  proc.stderr.on('data', (d) => (log += d));
  running.add(proc.pid);
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => (running.delete(proc.pid), resolve({ code, signal }))));
  const ready = await Promise.race([
    new Promise((resolve) => proc.stdout.on('data', (d) => (out += d, /(^|\n)\n/.test(out) && resolve(true)))),
    exited.then(() => false),
    new Promise((resolve) => setTimeout(() => resolve(false), 20000)),
  ]);
  const server = {
    kind,
    pid: proc.pid,
    command: cmd,
    log: () => log,
    /** The live JS heap (MB) after each full GC so far (--trace-gc), in order. */
    fullGcHeapMb: () => fullGcHeaps(out),
    alive: () => proc.exitCode === null && proc.signalCode === null,
    /** SIGTERM the group (SIGKILL after 3 s); resolves to how the server itself ended. */
    async stop() {
      const signal = (sig) => {
        try {
          process.kill(-proc.pid, sig);
        } catch {
          /* already gone */
        }
      };
      signal('SIGTERM');
      const t = setTimeout(() => signal('SIGKILL'), 3000);
      const end = await exited;
      clearTimeout(t);
      return end;
    },
  };
  if (!ready) {
    await server.stop();
    throw new Error(`${kind} did not start: ${log.trim()}`);
  }
  return server;
}

/** Open fds, resident set (kB) and live children of pid, from /proc. */
export function footprint(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]);
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return { fds: readdirSync(`/proc/${pid}/fd`).length, rssKb, children: children ? children.split(/\s+/).length : 0 };
}

/** tun/tap devices in this network namespace (sysfs is this namespace's). */
export function countTaps() {
  return readdirSync('/sys/class/net').filter((n) => {
    try {
      return statSync(`/sys/class/net/${n}/tun_flags`).isFile();
    } catch {
      return false;
    }
  }).length;
}

/** flock(2)s held on the lease lock (mktap's quota lock, /run/netgrant/lease.lock), from /proc/locks. */
export function leaseLocks() {
  let id;
  try {
    const st = statSync('/run/netgrant/lease.lock');
    // /proc/locks names a file MAJ:MIN:INO, the device numbers in hex.
    const major = (st.dev >> 8) & 0xfff;
    const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
    id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  } catch {
    return 0; // not made yet: nobody holds it
  }
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => {
    const f = l.replace('->', '').trim().split(/\s+/);
    return f.length > 5 && f[5] === id;
  }).length;
}

/** How many processes are in process group pgid (a server leads its own). */
export function groupMembers(pgid) {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) n++;
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

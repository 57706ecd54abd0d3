// What the DHCP responder's tests share (dhcpd.test.ts: DHCPv4,
// dhcpd6.test.ts: DHCPv6): netgrant-dhcpd as uid 65534 with every
// capability set empty, its CPU time, and guest namespaces behind the tap
// pump (guest-ns.ts), all ended and removed by cleanup().
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { run, sh, until, BASE_ENV, NOBODY } from './harness.js';
import { guestNs, buildPump, type GuestNs } from './guest-ns.js';

/** utime + stime of a process, in clock ticks (1/100 s). */
export const cpuTicks = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};

/**
 * Kill (by pid) the processes named comm in namespace ns and wait until
 * they are gone: a DHCP client that forks a daemon once bound (ISC
 * dhclient) writes its pid file after the parent has returned, and the
 * daemon outlives the namespace's deletion (and keeps it).
 */
export async function killInNs(ns: string, comm: string): Promise<boolean> {
  const found = () => run(['ip', 'netns', 'pids', ns]).stdout.split('\n').filter((p) => {
    try {
      return p !== '' && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm;
    } catch {
      return false; // gone already
    }
  });
  for (const p of found()) process.kill(Number(p), 'SIGKILL');
  return until(() => found().length === 0, 5000);
}

export interface DhcpKit {
  /** The responder with these arguments (-1 added), logging to log; resolves once it listens. */
  startDhcpd(args: string[], log: string): Promise<ChildProcess>;
  /** A guest namespace ns (eth0, MAC mac) on a tap mktap makes with args; setup runs in it first. */
  guest(ns: string, mac: string, args: string[], setup?: string): Promise<GuestNs>;
  /** A namespace of the test's own, deleted by cleanup(). */
  ownNs(ns: string): void;
  /** Kill what was started, wait for the taps to go, delete the namespaces. */
  cleanup(): Promise<void>;
}

export function dhcpKit(dir: string): DhcpKit {
  const pump = buildPump(dir);
  const procs: ChildProcess[] = [];
  const namespaces: string[] = [];
  return {
    startDhcpd(args, log) {
      return new Promise((resolve, reject) => {
        const proc = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', 'netgrant-dhcpd', '-1', ...args], { env: BASE_ENV, stdio: ['ignore', 'pipe', openSync(log, 'w')] });
        let listening = false;
        proc.stdout!.once('data', () => {
          listening = true;
          resolve(proc);
        });
        // (Killed by cleanup() once listening: the log may be gone with the test's directory by then.)
        proc.on('close', (code) => listening || reject(new Error(`netgrant-dhcpd exited ${code}: ${readFileSync(log, 'utf8')}`)));
        procs.push(proc);
      });
    },
    async guest(ns, mac, args, setup = 'ip link set lo up && ip link set eth0 up') {
      namespaces.push(ns);
      const g = await guestNs(pump, ns, mac, args);
      procs.push(g.proc);
      const r = g.sh(setup);
      if (r.status !== 0) throw new Error(`guest ${ns} setup: ${r.stderr}`);
      return g;
    },
    ownNs(ns) {
      sh(`ip netns add ${ns}`);
      namespaces.push(ns);
    },
    async cleanup() {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await until(() => run(['ip', '-o', 'link', 'show', 'type', 'tun']).stdout.trim() === '', 5000);
      for (const n of namespaces) sh(`ip netns del ${n}`);
    },
  };
}

// The fault-injection target (tools/test/lib/faults.ts) for mkphys, in the
// kernel VM lane (a real NIC, GUEST_NICS.faults): `mkphys -c CONF -P fph0 sh`
// moves the NIC from the test's namespace into a new one; when that ends,
// the kernel gives it back to the guest's initial namespace, where
// netgrant-reap -o (a reaper there) restores what the host had set. Checked
// after each run: no lock left on the lease lock; the NIC is found again,
// here or in the initial namespace, within 10 s (never lost in a namespace
// that does not end); here, it is as the host had it and (after a fault)
// has no entry in /run/netgrant/phys (a NIC never moved is not leased);
// back in the initial namespace, it has its entry (else no one would
// restore it), and the reaper there restores it and ends the lease. Then it
// is taken back here for the next run.
import { existsSync, readdirSync } from 'node:fs';
import { LEASE_LOCK, PHYS_DIR } from '@netgrant/lease';
import { run, sh, SHOW_FDS } from './harness.js';
import { confMaker } from './launcher.js';
import { locksOnFile } from './kernel-state.js';
import { takeNic } from './vm-nics.js';
import type { Target } from './faults.js';

interface IpLink { ifname: string; address: string; mtu: number; flags: string[]; parentbus?: string; parentdev?: string }
const INITIAL = ['nsenter', '--net=/proc/1/ns/net'];

export function physTarget(mac: string, dir: string): Target {
  const take = () => {
    takeNic(mac, 'fph0');
    sh('ip link set fph0 up');
  };
  take();
  const conf = confMaker(dir)('interface fph0\n');
  const linksIn = (pre: string[]) => JSON.parse(run([...pre, 'ip', '-d', '-j', 'link', 'show']).stdout || '[]') as IpLink[];
  const host = linksIn([]).find((l) => l.ifname === 'fph0')!;
  if (!host.parentdev) throw new Error(`fph0 has no bus device: ${JSON.stringify(host)}`);
  const find = (pre: string[]) => linksIn(pre).find((l) => l.parentdev === host.parentdev);
  const asHost = (l: IpLink) => (l.ifname === 'fph0' && l.address === host.address && l.mtu === host.mtu && l.flags.includes('UP') ? null : JSON.stringify(l));
  const entries = () => (existsSync(PHYS_DIR) ? readdirSync(PHYS_DIR) : []);
  return {
    name: 'mkphys -P',
    programs: ['mkphys'],
    async run(strace) {
      const r = run([...strace, 'mkphys', '-c', conf, '-P', 'fph0', 'sh', '-c', `${SHOW_FDS}; ip -o link show eth0`], { timeout: 120000 });
      return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
    },
    checkOk(o) {
      const [fds, link] = o.stdout.split('\n');
      if (fds!.trim() !== '0 1 2') return `the program got fds ${JSON.stringify(fds)}, expected 0 1 2`;
      if (!/^\d+: eth0: .*[<,]UP[,>]/.test(link ?? '')) return `no eth0 up in the new namespace: ${link}`;
      return null;
    },
    leftovers(after) {
      const problems = locksOnFile(LEASE_LOCK).map((l) => `lock held: ${l.trim()}`);
      // Between its namespace's end and its return the NIC is in neither.
      let here: IpLink | undefined;
      let back: IpLink | undefined;
      for (let i = 0; i < 100 && !here && !back; i++) {
        if (i) sh('sleep 0.1');
        here = find([]);
        back = here ? undefined : find(INITIAL);
      }
      const held = entries();
      if (here) {
        const bad = asHost(here);
        if (bad) problems.push(`the NIC is here but not as the host had it: ${bad}`);
        if (after === 'fault' && held.length) problems.push(`never moved, but leased: ${held.join(' ')}`);
      } else if (back) {
        if (held.length === 0) problems.push(`back in the initial namespace (as ${back.ifname}) with no entry: no one restores it`);
        const reap = run([...INITIAL, 'netgrant-reap', '-o']);
        if (reap.status !== 0) problems.push(`netgrant-reap -o there: exit ${reap.status}: ${reap.stderr.trim()}`);
        const restored = find(INITIAL);
        const bad = restored ? asHost(restored) : 'gone';
        if (bad) problems.push(`not restored by the reaper: ${bad}`);
        if (entries().length) problems.push(`the reaper left the entry ${entries().join(' ')}`);
        take();
      } else {
        problems.push('the NIC is neither here nor back in the initial namespace after 10 s: lost');
      }
      return problems.length ? problems.join('; ') : null;
    },
  };
}

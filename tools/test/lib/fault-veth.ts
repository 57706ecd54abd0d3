// The fault-injection target (tools/test/lib/faults.ts) for mkveth: the
// chain `mkveth -c CONF --masquerade -p 10150:80 cap-drop -u 65534 -g 65534
// -- sh` with every system call failing in turn, then killed at each.
// Checked after each run: no host end, route or proxy entry left in the
// test's namespace (the pair goes with the new namespace), no lock held on
// the lease lock; a failed run leaves no NAT table, and a killed one at
// most a stale one, which the reaper's sweep ends.
import { run, sh, SHOW_FDS, NOBODY } from './harness.js';
import { confMaker } from './launcher.js';
import { locksOnFile } from './kernel-state.js';
import { vethLeftovers } from './veth.js';
import type { Target } from './faults.js';

const tables = () => (sh('nft list tables').stdout.match(/table inet ngv-\S+/g) ?? []).join(', ');

export function vethTarget(dir: string): Target {
  const conf = confMaker(dir)('masquerade\nports 10150-10159\n10.95.0.0/24\nfd00:95::/64\n');
  return {
    name: 'mkveth --masquerade -p cap-drop',
    programs: ['mkveth', 'cap-drop'],
    // The host end's sysctls are at paths named after the new namespace (ngv-<inode>): no run opens the recording's.
    mayMiss: (step) => step.path?.name.includes('/ngv-') ?? false,
    async run(strace) {
      const r = run([...strace, 'mkveth', '-c', conf, '--masquerade', '-p', '10150:80', 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--',
        'sh', '-c', `${SHOW_FDS}; echo "$NETADDRS"; ip -o link show eth0`], { timeout: 120000 });
      return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
    },
    checkOk(o) {
      const [fds, addrs, link] = o.stdout.split('\n');
      if (fds!.trim() !== '0 1 2') return `the program got fds ${JSON.stringify(fds)}, expected 0 1 2`;
      if (!/^10\.95\.0\.\d+\/32,fd00:95:[0-9a-f:]+\/128$/.test(addrs!)) return `no addresses: ${addrs}`;
      if (!/^\d+: eth0@/.test(link ?? '')) return `no eth0 in the launched namespace: ${link}`;
      return null;
    },
    leftovers(after, _step, _steps, o) {
      const problems: string[] = [];
      // The pair goes a moment after the namespace's last reference (later under load).
      let left = vethLeftovers();
      for (let i = 0; i < 100 && left; i++) {
        sh('sleep 0.1');
        left = vethLeftovers();
      }
      if (left) problems.push(left);
      problems.push(...locksOnFile('/run/netgrant/lease.lock').map((l) => `lock held: ${l.trim()}`));
      // mkveth failing deletes its table; once it has done its part (a later link failed, or the chain
      // ran to its end) the lease is made and its table is stale with it, as after a kill: the reaper's.
      const t = tables();
      if (after === 'fault' && o.stderr.startsWith('mkveth: fatal:') && t) problems.push(`a failed mkveth left ${t}`);
      run(['netgrant-reap', '-o']);
      const still = tables();
      if (still) problems.push(`the reaper left ${still}`);
      return problems.length ? problems.join('; ') : null;
    },
  };
}

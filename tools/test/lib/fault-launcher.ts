// The fault-injection target (tools/test/lib/faults.ts) for the launchers,
// mkmacvlan (natively) and mkipvlan (in the kernel VM lane): the chain
// `LAUNCHER -c CONF cap-drop -u 65534 -g 65534 -- sh` runs as the first
// process of a pid namespace of its own, beside a launch held open there, so
// the launcher's scan of every namespace in /proc is the same every run
// and reaches one other launch. Checked after each run: no launched
// interface on the test's parent in any namespace /proc shows, no new
// interface in the test's namespace, no lock on the configuration.
import { join } from 'node:path';
import { forEachNamespace, dumpLinks } from '@netgrant/core';
import { run, sh, SHOW_FDS, NOBODY } from './harness.js';
import { confMaker } from './launcher.js';
import { linkNames } from './leftovers.js';
import { inodeOf, locksOn } from './kernel-state.js';
import type { Target } from './faults.js';

/**
 * The pid namespace's first process: hold a launch open in the background,
 * wait until it is in its namespace, run the chain and exit with its status
 * (which ends the namespace and the held launch). It stays the parent of the
 * held launch, so strace's only child is the chain.
 */
const HOLD = 'c=$1 p=$2 r=$3; shift 3; "$p" -c "$c" sh -c \': > "$0"; exec sleep 600\' "$r" & ' +
  'i=0; while [ ! -e "$r" ]; do sleep 0.05; i=$((i+1)); [ $i -lt 400 ] || exit 99; done; rm -f "$r"; "$@"; exit $?';

export function launcherTarget(prog: 'mkmacvlan' | 'mkipvlan', dir: string): Target {
  sh('ip link add fp0 type veth peer name fp1 && ip addr add 10.40.0.1/24 dev fp0 && ip link set fp0 up && ip link set fp1 up');
  const conf = confMaker(dir)('10.40.0.0/24\n');
  const ready = join(dir, 'held');
  const baseline = linkNames().join();
  // Every launch on fp0 is tagged with this namespace's inode and fp0's index (docs/mkmacvlan.1.md).
  const tag = `parent=${inodeOf('/proc/self/ns/net')}.`;
  return {
    name: `${prog} cap-drop`,
    programs: [prog, 'cap-drop'],
    async run(strace) {
      try {
        const r = run(['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', HOLD, 'sh', conf, prog, ready,
          ...strace, prog, '-c', conf, 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--',
          'sh', '-c', `${SHOW_FDS}; echo "$NETADDRS"; ip -o link show eth0`], { timeout: 120000 });
        return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
      } catch (e) {
        // A run that hangs (or outlasts a slow emulated guest) is a failure of its own, reported with the others.
        return { status: null, signal: null, stderr: '', stdout: '', problems: [`the run did not end: ${(e as Error).message}`] };
      }
    },
    checkOk(o) {
      const [fds, addrs, link] = o.stdout.split('\n');
      if (fds!.trim() !== '0 1 2') return `the program got fds ${JSON.stringify(fds)}, expected 0 1 2`;
      if (!/^10\.40\.0\.\d+\/24$/.test(addrs!)) return `no address: ${addrs}`;
      if (!/^\d+: eth0@/.test(link ?? '')) return `no eth0 in the launched namespace: ${link}`;
      return null;
    },
    leftovers() {
      const problems: string[] = [];
      const now = linkNames().join();
      if (now !== baseline) problems.push(`interfaces here ${baseline} -> ${now}`);
      // Processes of the ended pid namespace may take a moment to go (as leftovers.ts allows 2 s).
      let launched: string[] = [];
      for (let i = 0; i < 20 && (i === 0 || launched.length); i++) {
        if (i) sh('sleep 0.1');
        launched = [];
        forEachNamespace((nl) => {
          for (const l of dumpLinks(nl)) if (l.alias?.includes(tag)) launched.push(`launched ${l.name} still exists (${l.alias})`);
        });
      }
      problems.push(...launched, ...locksOn(inodeOf(conf)).map((l) => `lock held: ${l.trim()}`));
      return problems.length ? problems.join('; ') : null;
    },
  };
}

// The fault-injection target (tools/test/lib/faults.ts) for the launchers,
// mkmacvlan (natively) and mkipvlan (in the kernel VM lane): the chain
// `LAUNCHER -c CONF cap-drop -u 65534 -g 65534 -- sh` runs as the first
// process of a pid namespace of its own, beside a launch held open there, so
// the launcher's scan of every namespace in /proc is the same every run
// and reaches one other launch. Checked after each run: no launched
// interface on the test's parent in any namespace /proc shows, no new
// interface in the test's namespace, no lock left on the lease lock; and
// the registry (/run/netgrant/launched, private to the test file): the held
// launch's entry survived the run (a fault or kill never removes the entry
// of a launch that lives: no address handed out twice), and once the
// namespaces are gone the registry reconciles to empty (no stale entry
// blocks an address for ever).
//
// With a VID (-V, the VM lane: 8021q): the held launch is on VLAN VID of
// fp0, the chain on VID+1 (the sub-interface it makes), and a netgrant
// sub-interface of VID+2 that no one uses is there before the chain (its
// sweep deletes it). Checked on top: the held launch's sub-interface was
// still there after the chain, and once the namespaces are gone the sweep
// netgrant-reap makes (reapVlans) leaves no VLAN device on fp0 (one without
// netgrant's record, made and left by a failed launch, would stay for ever).
import { join } from 'node:path';
import { readdirSync, readFileSync, existsSync, unlinkSync, rmSync } from 'node:fs';
import { dumpLinks, Netlink } from '@netgrant/core';
import { forEachNamespace, reapVlans, reconcile, vlanRecord, withLeaseLock, LAUNCHED_DIR, LEASE_LOCK } from '@netgrant/lease';
import { run, sh, SHOW_FDS, NOBODY } from './harness.js';
import { confMaker } from './launcher.js';
import { linkNames } from './leftovers.js';
import { inodeOf, locksOnFile } from './kernel-state.js';
import type { Target } from './faults.js';

/**
 * The pid namespace's first process: hold a launch open in the background,
 * wait until it is in its namespace, run the chain and exit with its status
 * (which ends the namespace and the held launch). It stays the parent of the
 * held launch, so strace's only child is the chain.
 */
const HOLD = 'c=$1 p=$2 r=$3 b=$4 a=$5 v=$6 x=$7; shift 7; "$p" -c "$c" $v sh -c \': > "$0"; exec sleep 600\' "$r" & ' +
  'i=0; while [ ! -e "$r" ]; do sleep 0.05; i=$((i+1)); [ $i -lt 400 ] || exit 99; done; rm -f "$r"; eval "$x"; ' +
  // The registry (and the VLAN devices) while the held launch lives, before and after the chain.
  'ls -A /run/netgrant/launched > "$b" 2>/dev/null; "$@"; s=$?; ls -A /run/netgrant/launched > "$a" 2>/dev/null; ' +
  'ip -o link show type vlan > "$a.vlans" 2>/dev/null; exit $s';

export function launcherTarget(prog: 'mkmacvlan' | 'mkipvlan', dir: string, opts: { vid?: number } = {}): Target {
  sh('ip link add fp0 type veth peer name fp1 && ip addr add 10.40.0.1/24 dev fp0 && ip link set fp0 up && ip link set fp1 up');
  const { vid } = opts;
  const conf = confMaker(dir)(vid === undefined ? '10.40.0.0/24\n' : `10.40.0.0/24 parent fp0 gateway 10.40.0.1\nvlan ${vid}-${vid + 1}\n`);
  const fp0 = (JSON.parse(sh('ip -j link show fp0').stdout) as { ifindex: number }[])[0]!.ifindex;
  const vlansOnFp0 = () => (JSON.parse(sh('ip -d -j link show type vlan').stdout || '[]') as { ifname: string; link?: string; ifalias?: string }[]).filter((l) => l.link === 'fp0');
  // The held launch's options, and what is done before the chain (the unused sub-interface).
  const held = vid === undefined ? '' : `-V ${vid}`;
  const before = vid === undefined ? '' :
    `ip link add link fp0 name fp0.${vid + 2} type vlan id ${vid + 2} && ip link set fp0.${vid + 2} alias '${vlanRecord(String(inodeOf('/proc/self/ns/net')), fp0, vid + 2)}'`;
  const ready = join(dir, 'held');
  const registryBefore = join(dir, 'registry-before');
  const after = join(dir, 'registry-after');
  const listed = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('.')) : []);
  const baseline = linkNames().join();
  // Every launch on fp0 is tagged with this namespace's inode and fp0's index (docs/mkmacvlan.8.md).
  const tag = `parent=${inodeOf('/proc/self/ns/net')}.`;
  return {
    name: `${prog} cap-drop`,
    programs: [prog, 'cap-drop'],
    async run(strace) {
      rmSync(`${after}.vlans`, { force: true }); // (a run that ends before the chain writes none)
      try {
        const r = run(['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', HOLD, 'sh', conf, prog, ready, registryBefore, after, held, before,
          ...strace, prog, '-c', conf, ...(vid === undefined ? [] : ['-V', String(vid + 1)]), 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--',
          'sh', '-c', `${SHOW_FDS}; echo "$NETADDRS"; ip -o link show eth0; echo "$NETPARENT"`], { timeout: 120000 });
        return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
      } catch (e) {
        // A run that hangs (or outlasts a slow emulated guest) is a failure of its own, reported with the others.
        return { status: null, signal: null, stderr: '', stdout: '', problems: [`the run did not end: ${(e as Error).message}`] };
      }
    },
    checkOk(o) {
      const [fds, addrs, link, parent] = o.stdout.split('\n');
      if (fds!.trim() !== '0 1 2') return `the program got fds ${JSON.stringify(fds)}, expected 0 1 2`;
      if (!/^10\.40\.0\.\d+\/24$/.test(addrs!)) return `no address: ${addrs}`;
      if (!/^\d+: eth0@/.test(link ?? '')) return `no eth0 in the launched namespace: ${link}`;
      if (vid !== undefined && parent !== `fp0.${vid + 1}`) return `on ${parent}, not on VLAN ${vid + 1} of fp0`;
      return null;
    },
    leftovers() {
      const problems: string[] = [];
      // Processes of the ended pid namespace may take a moment to go (as leftovers.ts allows 2 s).
      let launched: string[] = [];
      for (let i = 0; i < 20 && (i === 0 || launched.length); i++) {
        if (i) sh('sleep 0.1');
        launched = [];
        forEachNamespace((nl) => {
          for (const l of dumpLinks(nl)) if (l.alias?.includes(tag)) launched.push(`launched ${l.name} still exists (${l.alias})`);
        });
      }
      problems.push(...launched, ...locksOnFile(LEASE_LOCK).map((l) => `lock held: ${l.trim()}`));
      // The held launch's entry (and any other live one) was still there after the chain.
      const was = listed(registryBefore);
      const is = listed(after);
      if (was.length === 0) problems.push('the held launch had no registry entry');
      for (const e of was) if (!is.includes(e)) problems.push(`the entry ${e} of a live launch was removed during the run`);
      if (vid !== undefined && existsSync(`${after}.vlans`) && !readFileSync(`${after}.vlans`, 'utf8').includes(`: fp0.${vid}@fp0:`)) {
        problems.push(`the sub-interface fp0.${vid} of a live launch was gone after the run`);
      }
      // Every namespace is going: once the kernel has torn them down (their
      // devices go a moment after their last reference, later under load),
      // reconciling leaves nothing. What is still there after 10 s is stale.
      // (This also starts every run with the same registry: the number of
      // entries a launch reads decides its openat count, which the driver's
      // step numbers rely on.)
      const home = String(inodeOf('/proc/self/ns/net'));
      const nl = Netlink.open();
      try {
        for (let i = 0; i < 100; i++) {
          withLeaseLock(10000, () => reconcile(nl, home));
          if (readdirSync(LAUNCHED_DIR).length === 0) break;
          sh('sleep 0.1');
        }
        // The sweep a reaper makes deletes every unused netgrant sub-interface: any VLAN left is a leak (removed for the next run).
        if (vid !== undefined) reapVlans(nl, 10000);
      } finally {
        nl.close();
      }
      const stale = readdirSync(LAUNCHED_DIR).map((n) => `${n}: ${readFileSync(`${LAUNCHED_DIR}/${n}`, 'utf8').trim()}`);
      if (stale.length) problems.push(`registry entries left after the namespaces are gone: ${stale.join(' | ')}`);
      for (const l of vid === undefined ? [] : vlansOnFp0()) {
        problems.push(`${l.ifname} (alias ${JSON.stringify(l.ifalias ?? '')}) left on fp0 with no user`);
        sh(`ip link del ${l.ifname}`);
      }
      const now = linkNames().join();
      if (now !== baseline) problems.push(`interfaces here ${baseline} -> ${now}`);
      return problems.length ? problems.join('; ') : null;
    },
  };
}

/**
 * The -N target: `LAUNCHER -c CONF -N 5 -- sh`, fd 5 the namespace
 * /run/netns/fns-PROG (root's: PEERUID 0), which outlives every run.
 * Checked after each run: no lock held, no new interface in the test's
 * namespace; every address on the launched link in the client's namespace
 * is in a registry entry (a kill leaves the link counted, never uncounted);
 * a launcher that failed left neither link nor entry there. Then the link
 * and its entry are removed by hand for the next run.
 */
export function launcherNsTarget(prog: 'mkmacvlan' | 'mkipvlan', dir: string): Target {
  const netns = `fns-${prog}`;
  sh(`ip link add fq0 type veth peer name fq1 && ip addr add 10.41.0.1/24 dev fq0 && ip link set fq0 up && ip link set fq1 up && ip netns add ${netns}`);
  const conf = confMaker(dir)('10.41.0.0/24\n');
  const baseline = linkNames().join();
  const entries = () => readdirSync(LAUNCHED_DIR).filter((n) => /-n[0-9]+$/.test(n));
  const addrsThere = () => sh(`ip -n ${netns} -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}'`).stdout.split('\n').filter(Boolean);
  const linkThere = () => sh(`ip -n ${netns} -o link show eth0 2>/dev/null`).stdout.trim();
  return {
    name: `${prog} -N`,
    programs: [prog],
    async run(strace) {
      // In a pid namespace of its own, as launcherTarget: the scan of /proc is the same every run.
      const r = run(['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', `exec 5</run/netns/${netns}; exec "$@"`, 'sh', ...strace, prog, '-c', conf, '-N', '5',
        'sh', '-c', `${SHOW_FDS}; echo "$NETADDRS"; ip -n ${netns} -4 -o addr show dev eth0 | cut -d" " -f7`], { env: { PEERUID: '0' }, timeout: 120000 });
      return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
    },
    checkOk(o) {
      const [fds, addrs, inside] = o.stdout.split('\n');
      if (fds!.trim() !== '0 1 2 5') return `the program got fds ${JSON.stringify(fds)}, expected 0 1 2 5`;
      if (!/^10\.41\.0\.\d+\/24$/.test(addrs!)) return `no address: ${addrs}`;
      if (inside !== addrs) return `eth0 in the client's namespace has ${JSON.stringify(inside)}`;
      return null;
    },
    leftovers(after, _step, _steps, o) {
      const problems: string[] = [];
      const now = linkNames().join();
      if (now !== baseline) problems.push(`interfaces here ${baseline} -> ${now}`);
      problems.push(...locksOnFile(LEASE_LOCK).map((l) => `lock held: ${l.trim()}`));
      const link = linkThere();
      const recorded = entries().map((n) => readFileSync(`${LAUNCHED_DIR}/${n}`, 'latin1'));
      for (const a of addrsThere()) {
        if (!recorded.some((e) => e.includes(` addrs=${a}`) || e.includes(`,${a}`))) problems.push(`${a} on the client's eth0 is in no registry entry`);
      }
      // (The next program not executed, 126/127: the launch was done, its lease stays counted, as a run that succeeded.)
      if (after === 'fault' && o.stderr.startsWith(`${prog}: fatal:`) && o.status !== 126 && o.status !== 127) {
        if (link) problems.push(`a failed ${prog} left ${link.trim()} in the client's namespace`);
        if (recorded.length) problems.push(`a failed ${prog} left its entry ${recorded.join(' | ').trim()}`);
      }
      // The next run starts from nothing: the link (the namespace lives on) and its entry go by hand.
      sh(`ip -n ${netns} link del eth0 2>/dev/null; true`);
      for (const n of entries()) unlinkSync(`${LAUNCHED_DIR}/${n}`);
      return problems.length ? problems.join('; ') : null;
    },
  };
}

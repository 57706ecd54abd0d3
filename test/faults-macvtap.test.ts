// Fault injection on mkmacvtap (docs/reliability.md): its own system calls
// that make, open and configure the macvtap (the sysfs mount, the node,
// the queue opens and ioctls, the netlink requests) fail in turn (strace
// inject), then the chain is SIGKILLed at each. A macvtap outlives its
// fds, so: after a failure no macvtap is left (mkmacvtap deletes it)
// unless the failure came after the fds were placed (then it is
// complete); after a kill one may be left, whose record the reaper ends
// (a lease by mkmacvtap with a node and a birth time: no holder after the
// grace). No lock is held; the private directory is empty after a
// failure; the next program gets exactly its fds.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): mkmacvtap's own calls, the
// same in both modes; few sampled steps (the CI budget).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { run, sh, SHOW_FDS } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures, type Target } from '../tools/test/lib/faults.js';
import { locksOnFile } from '../tools/test/lib/kernel-state.js';

sh('ip link add mvf0 type veth peer name mvf1 && ip link set mvf0 up && ip link set mvf1 up');

const macvtaps = () => (JSON.parse(run(['ip', '-d', '-j', 'link', 'show', 'type', 'macvtap']).stdout || '[]') as { ifname: string; ifalias?: string }[]);
const REAPABLE = /^netgrant1 lease by=mkmacvtap uid=0 mac=\S+ node=[0-9]+\.[0-9]+ born=[0-9]+$/;
// (The sysfs file's and the node's opens are not injected: their paths carry mkmacvtap's pid, so no
// two runs make the same call; the mount before them and the unlink after them are.)
const OURS = /^call (mount|umount2|mknodat|mknod|unlinkat|unlink|rmdir|ioctl|sendto|sendmsg|openat "\/run\/netgrant\/macvtap")/;

const target: Target = {
  name: 'mkmacvtap -q 2 --pin',
  programs: ['mkmacvtap'],
  async run(strace) {
    const r = run([...strace, 'mkmacvtap', '-l', 'mvf0', '-n', 'mvftap0', '-q', '2', '--vnet-hdr', '--pin', '--guest-ip', '10.9.5.2', 'sh', '-c', `${SHOW_FDS}; ip -o -d link show "$TAPNAME" | tr -d '\\n'; echo`]);
    return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
  },
  checkOk(o) {
    const [fds, link] = o.stdout.split('\n');
    if (fds!.trim() !== '0 1 2 3 4') return `the next program got fds ${JSON.stringify(fds)}, expected 0 1 2 3 4`;
    if (!/macvtap mode bridge/.test(link ?? '') || !/alias netgrant1 lease by=mkmacvtap/.test(link ?? '')) return `the macvtap is not as asked: ${link}`;
    return null;
  },
  leftovers(after, _step, _steps, o) {
    const problems: string[] = [];
    // Complete after a success, or a failure once the fds were placed (the
    // exec's own steps): the reaper's once nobody holds them.
    const complete = o.status === 0 || /execve|exec /.test(o.stderr) || o.status === 126;
    for (const l of macvtaps()) {
      if ((after === 'kill' || complete) && REAPABLE.test(l.ifalias ?? '')) run(['ip', 'link', 'del', l.ifname]);
      else problems.push(`${l.ifname} left (${l.ifalias ?? 'no record'})`);
    }
    const inDir = (() => {
      try {
        return readdirSync('/run/netgrant/macvtap');
      } catch {
        return [];
      }
    })();
    if (after === 'fault' && inDir.length) problems.push(`left in /run/netgrant/macvtap: ${inDir.join(' ')}`);
    problems.push(...locksOnFile('/run/netgrant/lease.lock').map((l) => `lease lock held: ${l.trim()}`));
    return problems.length ? problems.join('; ') : null;
  },
};

test('faults and kills at mkmacvtap\'s own steps', async () => {
  const r = await injectEverywhere(target, 6, (s) => OURS.test(`call ${s.kind}`));
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs >= 6, 'the chain made the calls it should');
});

test.after(() => {
  sh('ip link del mvf0');
});
test.run();

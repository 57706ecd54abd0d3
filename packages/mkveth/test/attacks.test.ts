// mkveth's accounting under attack by real unprivileged processes (uid
// 65534 and others, no capabilities): records forged where a user can
// write them, launches kept alive after their process exited, and greedy
// clients at the limit. The limit and the addresses in use are decided from
// the host ends' records in the launcher's namespace alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { run, tempDir, failsWith, holdChain, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, background, gone, OTHER } from '../../../tools/test/lib/launcher-attacks.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const procs: ChildProcess[] = [];
/** The chain a service would run for uid: the launcher, then the user's program as that uid. */
const chain = (c: string, uid: number, extra: string[] = []) => ['mkveth', '-c', c, ...extra, 'cap-drop', '-u', String(uid), '-g', String(uid), '--'];
const launch = (c: string, uid: number, script = 'echo "$NETADDRS"; exec sleep 300') => holdChain(chain(c, uid), script, { PEERUID: String(uid) });

test('mkveth: forged records in a user-owned namespace (another uid, every address of the pool) have no effect; the launcher\'s namespace is out of a user\'s reach', async () => {
  const c = conf('limit 1\n10.70.0.0/29\n');
  // As nobody, in a namespace of its own: six links whose records give uid 7200 every address of the /29.
  const forge = Array.from({ length: 6 }, (_, i) => `ip link add f${i} type veth peer name g${i} && ip link set f${i} alias "netgrant1 lease by=mkveth uid=7200 addrs=10.70.0.${i + 1}/32" &&`).join(' ');
  const f = await background([...as(NOBODY), 'unshare', '-Urn', 'sh', '-c', `${forge} echo ready && exec sleep 300`]);
  procs.push(f.proc);
  assert.is(f.line, 'ready');
  const a = await launch(c, 7200);
  procs.push(a.proc);
  assert.match(a.out, /^10\.70\.0\.[1-6]\/32$/);
  const b = await launch(c, 7201);
  procs.push(b.proc);
  assert.match(b.out, /^10\.70\.0\.[1-6]\/32$/);
  assert.is.not(a.out, b.out);
  const again = run([...chain(c, 7200), 'true'], { env: { PEERUID: '7200' } });
  assert.is(failsWith(again, 'mkveth', 1, /uid 7200 already has 1 veth namespace, the limit is 1/), null, again.stderr);
  // A user can neither forge a record where they count, nor touch a host end, nor hold the lease lock.
  const h = hostEnds()[0]!.name;
  const poke = run([...as(NOBODY), 'sh', '-c', `ip link add x0 type veth peer name x1; ip link set ${h} alias "netgrant1 lease by=mkveth uid=7200 addrs=10.70.0.6/32"; ip link del ${h}; flock -n /run/netgrant/lease.lock true`], { timeout: 5000 });
  assert.is((poke.stderr.match(/Operation not permitted/g) ?? []).length, 3, poke.stderr);
  assert.match(poke.stderr, /lease\.lock.*Permission denied/);
  assert.is(hostEnds().length, 2);
  for (const p of [f.proc, a.proc, b.proc]) p.kill('SIGKILL');
  assert.is(await settled(), null);
});

// Each way to keep a launched namespace alive after its process exited, as
// the user: [name, the launched program, the keeper given the launched pid
// (it prints "kept PATH"), or null when the launch keeps itself (its child)].
const keepers: [string, string, ((pid: number) => string[]) | null][] = [
  ['an fd (exec 9</proc/PID/ns/net)', 'echo "$NETADDRS"; exec sleep 300', (pid) => [...as(NOBODY), 'sh', '-c', `exec 9</proc/${pid}/ns/net && echo "kept /proc/$$/fd/9" && exec sleep 300`]],
  ['a surviving child', 'sleep 300 </dev/null >/dev/null 2>&1 & echo "$NETADDRS $!"', null],
];
for (const [how, script, keeper] of keepers) {
  test(`mkveth: a launch kept alive by ${how} after its process exited: still counted, its address never handed out again, freed once really gone`, async () => {
    // A /30: two usable addresses.
    const c = conf('limit 1\n10.71.0.0/30\n');
    const l = await launch(c, NOBODY, script);
    const [addr, child] = l.out.split(' ');
    assert.match(addr!, /^10\.71\.0\.[12]\/32$/);
    let keep: { proc: ChildProcess; line: string } | undefined;
    let enter: string[];
    if (keeper) {
      keep = await background(keeper(l.proc.pid!));
      enter = ['nsenter', `--net=${keep.line.replace(/^kept /, '')}`];
      l.proc.kill('SIGKILL');
    } else enter = ['nsenter', `--net=/proc/${child}/ns/net`];
    await gone(l.proc);
    const release = () => (keep ? keep.proc.kill('SIGKILL') : process.kill(Number(child), 'SIGKILL'));
    try {
      // The namespace lives on with its address, and its host end with it.
      const still = run([...enter, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      assert.ok(still.stdout.includes(`inet ${addr}`), still.stdout + still.stderr);
      assert.equal(hostEnds().map((h) => h.record?.addrs), [[addr]]);
      // Counted against its user ...
      const mine = run([...chain(c, NOBODY), 'true'], { env: { PEERUID: String(NOBODY) } });
      assert.is(failsWith(mine, 'mkveth', 1, /uid 65534 already has 1 veth namespace, the limit is 1/), null, mine.stderr);
      // ... and its address is never another's: the other user gets the other one, then the pool is full.
      const other = await launch(c, OTHER);
      procs.push(other.proc);
      assert.match(other.out, /^10\.71\.0\.[12]\/32$/);
      assert.is.not(other.out, addr);
      const third = run([...chain(c, OTHER - 1), 'true'], { env: { PEERUID: String(OTHER - 1) } });
      assert.is(failsWith(third, 'mkveth', 111, /no free address/), null, third.stderr);
      other.proc.kill('SIGKILL');
      await gone(other.proc);
    } finally {
      release();
    }
    // Really gone: the pair goes with the namespace, and the address and the limit are free.
    assert.is(await settled(), null);
    const next = await launch(c, NOBODY);
    procs.push(next.proc);
    assert.match(next.out, /^10\.71\.0\.[12]\/32$/);
    next.proc.kill('SIGKILL');
    assert.is(await settled(), null);
  });
}

test('mkveth: 20 greedy clients of 5 uids at once, limit 2: each uid gets exactly 2, no address twice, the rest refused with the limit', async () => {
  const c = conf('limit 2\n10.72.0.0/27\n');
  const uids = [7301, 7302, 7303, 7304, 7305];
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => holdChain(chain(c, uids[i % 5]!, ['-t', '120000']), 'echo "$NETADDRS"; exec sleep 300', { PEERUID: String(uids[i % 5]) })));
  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  procs.push(...won.map((w) => w.proc));
  try {
    assert.is(won.length, 10, lost.join(' | '));
    for (const l of lost) assert.match(l, /already has 2 veth namespaces, the limit is 2/);
    const addrs = won.map((w) => w.out);
    assert.is(new Set(addrs).size, 10, 'no address twice');
    // The kernel agrees: ten host ends, two per uid, the same ten addresses.
    const ends = hostEnds();
    assert.equal(uids.map((u) => ends.filter((h) => h.record?.uid === u).length), [2, 2, 2, 2, 2]);
    assert.equal(ends.flatMap((h) => h.record!.addrs!).sort(), [...addrs].sort());
  } finally {
    for (const w of won) w.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test.after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  cleanup();
});

test.run();

// Leases that hold against their holder: a real lessee with no capability
// (uid 65534 or another uid, every capability set empty) does to its tap fd
// everything the kernel lets an fd holder do — TUNSETPERSIST, TUNSETOWNER,
// TUNSETGROUP, TUNSETQUEUE detach, SIOCSIFHWADDR — and the lease still ends
// when its holder is gone, the quota still counts what it holds, and the
// bridge and every other lease stay as they were. Without a reaper (mktap
// culls before counting), with netgrant-reap, and under netgrant-serve.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): what is tested is the
// kernel's state after the lessee's ioctls and the reaper's and mktap's
// handling of it; the chains themselves are mktap.test.ts's, in both modes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { withNetlink, dumpLinks } from '@netgrant/core';
import { parseRecord } from '@netgrant/lease';
import { run, sh, failsWith, until, tempDir, BASE_ENV, ROOT, NOBODY } from '../../../tools/test/lib/harness.js';
import { startServer, type Server } from '../../../tools/test/lib/service.js';

const HOSTILE = join(ROOT, 'tools', 'test', 'lib', 'hostile-tap.py');
/** A process with no capability at all, as uid (gid the same). */
const bare = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
const PEER = (uid: number) => ({ PEERUID: String(uid), PEERGID: String(uid) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tap { name: string; index: number; owner?: number; persist: boolean; mac: string; alias?: string; master?: number }
function taps(): Tap[] {
  return withNetlink((nl) =>
    dumpLinks(nl)
      .filter((l) => l.kind === 'tun')
      .map((l) => ({ name: l.name, index: l.index, owner: l.tun?.owner, persist: l.tun?.persist ?? false, mac: [...(l.mac ?? [])].map((b) => b.toString(16).padStart(2, '0')).join(':'), alias: l.alias, master: l.master })),
  );
}
const bridgeMac = (br: string) => withNetlink((nl) => [...(dumpLinks(nl).find((l) => l.name === br)!.mac ?? [])].map((b) => b.toString(16).padStart(2, '0')).join(':'));
/** Leases recorded per uid, now. */
function recordsPerUid(): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of taps()) {
    const r = parseRecord(t.alias);
    if (r) m.set(r.uid, (m.get(r.uid) ?? 0) + 1);
  }
  return m;
}

sh('ip link add br-l0 type bridge && ip link set br-l0 up');
const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

/** mktap as a root chain for uid, then the hostile lessee with its actions on fd 3. */
const hostileLease = (uid: number, actions: string[], mktapArgs: string[] = []) =>
  run(['mktap', '-b', 'br-l0', '--owner-from-peer', ...mktapArgs, ...bare(uid), HOSTILE, '3', ...actions], { env: PEER(uid) });

function startReaper(): Promise<{ proc: ChildProcess; out: () => string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('netgrant-reap', ['-1', '-v', '-i', '200'], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.once('data', () => resolve({ proc, out: () => err }));
    proc.on('close', (code) => reject(new Error(`netgrant-reap exited ${code}: ${err}`)));
  });
}
const stop = async (p: ChildProcess) => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('close', r));
  p.kill('SIGKILL');
  await gone;
};

test('every tap carries a record the lessee cannot rewrite, from before its fd is handed on', () => {
  const r = run(['mktap', '-b', 'br-l0', '--owner-from-peer', 'sh', '-c', 'ip -d -j link show "$TAPNAME"'], { env: PEER(NOBODY) });
  assert.is(r.status, 0, r.stderr);
  const l = JSON.parse(r.stdout)[0] as { ifalias?: string; address: string };
  assert.is(l.ifalias, `netgrant1 lease by=mktap uid=${NOBODY} owner=${NOBODY} group=${NOBODY} mac=${l.address}`);
  // The lessee, holding the fd, with no capability: the alias is not its to change.
  const t = run(['mktap', '-b', 'br-l0', '--owner-from-peer', ...bare(NOBODY), 'sh', '-c',
    'ip link set "$TAPNAME" alias "netgrant1 persist by=mktap uid=1" 2>&1; echo x > /sys/class/net/"$TAPNAME"/ifalias 2>&1; ip -j link show "$TAPNAME"'], { env: PEER(NOBODY) });
  assert.match(t.stdout, /Operation not permitted/);
  assert.match(t.stdout, /"ifalias":"netgrant1 lease by=mktap/);
  const p = run(['mktap', '--persist', '-o', '0', '-n', 'adm0', 'true']);
  try {
    assert.is(p.status, 0, p.stderr);
    const adm = taps().find((x) => x.name === 'adm0')!;
    assert.is(adm.alias, `netgrant1 persist by=mktap uid=0 owner=0 group=- mac=${adm.mac}`);
  } finally {
    sh('ip link del adm0');
  }
});

test('without a reaper: a persisted, re-owned, re-grouped or MAC-changed lease is culled at the next create, and the quota counts records', () => {
  // Each of these leaves a persistent tap behind its exited holder (what
  // issue 11 saw: six taps at quota 2); each next create culls the one before.
  let before: Tap | undefined;
  for (const actions of [['persist'], ['persist', 'owner=0'], ['persist', 'group=0'], ['persist', 'mac=02:00:00:00:00:01'], ['persist', 'owner=2001', 'group=2001']]) {
    const r = hostileLease(NOBODY, actions);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(actions.map((a) => `ok ${a}\n`).join('')), 'the kernel let the lessee do it');
    const left = taps();
    assert.is(left.length, 1, `only the newest is left: ${JSON.stringify(left)}`);
    assert.ok(left[0]!.persist);
    assert.is.not(left[0]!.index, before?.index, 'the one before was culled');
    before = left[0];
  }
  assert.is(bridgeMac('br-l0') === '02:00:00:00:00:01', false, "the bridge's address did not follow the lessee's MAC");
  // The quota is 2, and the next request culls first: it gets one, and every stale one is gone.
  const next = run(['mktap', '-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '2', 'sh', '-c', 'echo $TAPNAME'], { env: PEER(NOBODY) });
  assert.is(next.status, 0, next.stderr);
  assert.equal(taps(), [], 'all five culled (and the new one ended with its holder)');
});

test('quota: records count, not the owner field — re-owning a held tap does not free quota', async () => {
  // Two holders re-own their taps to root and keep holding them.
  const said: string[] = ['', ''];
  const holders = [0, 1].map((i) => {
    // Both are created before either tampers (a create culls what is already stale).
    const p = spawn('mktap', ['-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '2', ...bare(NOBODY), HOSTILE, '3', 'hold=4', 'group=0', 'hold=30'], { env: { ...BASE_ENV, ...PEER(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d) => (said[i] += d));
    return p;
  });
  try {
    assert.ok(await until(() => said.every((t) => t.includes('ok group=0')), 15000), said.join('|'));
    assert.is(taps().length, 2);
    // The re-grouped leases are stale: they are culled, so the peer is not stuck...
    const third = run(['mktap', '-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '2', 'sh', '-c', 'echo $TAPNAME'], { env: PEER(NOBODY) });
    assert.is(third.status, 0, third.stderr);
    assert.equal(taps(), [], 'the tampered leases were ended although their holders live');
  } finally {
    for (const h of holders) await stop(h);
  }
  // A holder that only holds counts until it goes.
  const a = spawn('mktap', ['-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '1', ...bare(NOBODY), HOSTILE, '3', 'hold=30'], { env: { ...BASE_ENV, ...PEER(NOBODY) }, stdio: 'ignore' });
  try {
    assert.ok(await until(() => taps().length === 1, 5000));
    const refused = run(['mktap', '-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '1', 'true'], { env: PEER(NOBODY) });
    assert.is(failsWith(refused, 'mktap', 1, /quota reached: uid 65534 holds 1 tap\/tun lease here, at most 1/), null, refused.stderr);
  } finally {
    await stop(a);
  }
});

test('netgrant-reap: deletes each kind of stale lease within a second, never a live one, a persist one or a tap netgrant did not make', async () => {
  sh('ip tuntap add mode tap name foreign0 && ip link set foreign0 up && ip link set foreign0 master br-l0');
  // Not netgrant's: an alias that is not a record, or a malformed record.
  sh('ip tuntap add mode tap name other0 && ip link set other0 alias "my vm tap" && ip tuntap add mode tap name other1 && ip link set other1 alias "netgrant1 lease by=mktap uid=x"');
  const adm = run(['mktap', '--persist', '-o', String(NOBODY), '-n', 'adm1', 'true']);
  assert.is(adm.status, 0, adm.stderr);
  const live = spawn('mktap', ['-b', 'br-l0', '-n', 'live0', '--owner-from-peer', ...bare(NOBODY), HOSTILE, '3', 'hold=30'], { env: { ...BASE_ENV, ...PEER(NOBODY) }, stdio: 'ignore' });
  const reaper = await startReaper();
  try {
    assert.ok(await until(() => taps().some((t) => t.name === 'live0'), 5000));
    const cases: [string, string[], string[]][] = [
      ['made persistent', ['persist', 'hold=3'], []],
      ['owner changed to 0', ['owner=0', 'hold=3'], []],
      ['group changed to 0', ['group=0', 'hold=3'], []],
      ['host-side MAC changed to 02:00:00:00:00:01', ['mac=02:00:00:00:00:01', 'hold=3'], []],
    ];
    for (const [why, actions, extra] of cases) {
      const started = Date.now();
      const r = hostileLease(NOBODY, actions, ['-n', 'h0', ...extra]);
      assert.is(r.status, 0, r.stderr);
      // Deleted under the holder while it still held the fd: its later actions see a dead fd or nothing.
      assert.ok(await until(() => reaper.out().includes(`deleted h0 (lease by mktap for uid ${NOBODY}): ${why}`), 3000), reaper.out());
      assert.ok(Date.now() - started < 6000);
      assert.is(taps().some((t) => t.name === 'h0'), false, why);
    }
    // A multiqueue tap whose holder detached every queue: no notification; the sweep finds it.
    const mq = run(['mktap', '-b', 'br-l0', '-n', 'mq0', '-q', '2', '--owner-from-peer', ...bare(NOBODY), 'sh', '-c', `${HOSTILE} 3 detach && ${HOSTILE} 4 detach hold=2`], { env: PEER(NOBODY) });
    assert.is(mq.status, 0, mq.stderr);
    assert.ok(await until(() => /deleted mq0 \(lease by mktap for uid 65534\): no queue attached/.test(reaper.out())), reaper.out());
    assert.is(bridgeMac('br-l0') === '02:00:00:00:00:01', false);
    const left = taps().map((t) => t.name).sort();
    assert.equal(left, ['adm1', 'foreign0', 'live0', 'other0', 'other1'], 'live, persist and foreign taps untouched');
  } finally {
    await stop(reaper.proc);
    await stop(live);
    sh('ip link del adm1; ip link del foreign0; ip link del other0; ip link del other1');
  }
});

test('netgrant-reap killed at any moment and restarted reconciles from the kernel alone', async () => {
  const first = await startReaper();
  await stop(first.proc);
  // Stale leases made while no reaper runs (all created before any turns
  // stale, so no create culls them), beside a live one.
  const lessee = (name: string, actions: string[]) => spawn('mktap', ['-b', 'br-l0', '-n', name, '--owner-from-peer', ...bare(NOBODY), HOSTILE, '3', ...actions], { env: { ...BASE_ENV, ...PEER(NOBODY) }, stdio: 'ignore' });
  const stale = [0, 1, 2].map((i) => lessee(`st${i}`, ['hold=1.5', 'persist']));
  const live = lessee('live1', ['hold=30']);
  try {
    assert.ok(await until(() => stale.every((p) => p.exitCode !== null) && taps().length === 4, 8000), JSON.stringify(taps()));
    const once = run(['netgrant-reap', '-o', '-v', 'sh', '-c', 'echo swept']);
    assert.is(once.status, 0, once.stderr);
    assert.is(once.stdout, 'swept\n', '-o sweeps once, then execs the rest');
    assert.is(once.stderr.split('\n').filter((l) => /^netgrant-reap: info: deleted st[0-2] /.test(l)).length, 3, once.stderr);
    assert.equal(taps().map((t) => t.name), ['live1']);
  } finally {
    await stop(live);
  }
});

test('greedy: 20 clients at once at quota 2 under s6-ipcserver, each persisting and re-owning every tap it gets: no uid ever holds more than 2', async () => {
  const uids = [NOBODY, 2001, 2002, 2003];
  const sock = join(dir, 'greedy.sock');
  const server: Server = await startServer(['s6-ipcserver', '-c', '40', sock, 'peer-check', ...uids.flatMap((u) => ['-u', String(u)]), 'mktap', '-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '2', 'fd-send', '-s', '1', '-d', '3'], sock);
  const reaper = await startReaper();
  let worst = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const n of recordsPerUid().values()) worst = Math.max(worst, n);
      await sleep(5);
    }
  })();
  try {
    // Each client asks 4 times, and with every tap it gets: persist, re-own to another uid, hold a moment, exit.
    const clients = Array.from({ length: 20 }, (_, i) => {
      const uid = uids[i % uids.length]!;
      const other = uids[(i + 1) % uids.length]!;
      const once = `s6-ipcclient ${sock} fd-recv -s 6 -d 3 ${HOSTILE} 3 persist owner=${other} group=${other} hold=0.3 || true`;
      return new Promise<void>((resolve) => {
        const p = spawn(bare(uid)[0]!, [...bare(uid).slice(1), 'sh', '-c', `for i in 1 2 3 4; do ${once}; done`], { env: BASE_ENV, stdio: 'ignore' });
        p.on('close', () => resolve());
      });
    });
    await Promise.all(clients);
    assert.ok(await until(() => taps().length === 0, 5000), `taps left: ${JSON.stringify(taps())}`);
  } finally {
    sampling = false;
    await sampler;
    await stop(reaper.proc);
    await server.stop();
  }
  assert.ok(worst > 0, 'the sampler saw leases');
  assert.ok(worst <= 2, `a uid held ${worst} leases`);
});

test('records in a namespace a user owns never count: netgrant-reap refuses to run there, mktap refuses a quota there', async () => {
  // The user may write any alias there: a forged record on a veth.
  const holder = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--map-root-user', '--net', 'sh', '-c',
    'ip link add v0 type veth peer name v1 && ip link set v0 alias "netgrant1 lease by=mktap uid=2001 owner=2001 group=- mac=00:00:00:00:00:02" && sleep 30'], { stdio: 'ignore' });
  try {
    await sleep(500);
    const ns = `/proc/${holder.pid}/ns/net`;
    const inside = run(['nsenter', `--net=${ns}`, 'netgrant-reap', '-o']);
    assert.is(failsWith(inside, 'netgrant-reap', 100, /owned by a user namespace of its own/), null, inside.stderr);
    const r = run(['sh', '-c', `exec 5<${ns}; exec mktap -N 5 --owner-from-peer --max-per-peer 1 true`], { env: PEER(NOBODY) });
    assert.is(failsWith(r, 'mktap', 100, /--max-per-peer: the target namespace is owned by a user namespace of its own/), null, r.stderr);
  } finally {
    holder.kill('SIGKILL');
  }
});

test('no user can hold the quota lock: flocks on everything uid 65534 can open delay no lease, under s6-ipcserver and netgrant-serve', async () => {
  // What the user can open and lock: the namespace's nsfs inode (issue 12's
  // attack on the old lock), /run/netgrant itself; not the lease lock (0600 root).
  run(['mktap', '--owner-from-peer', '--max-per-peer', '1', 'true'], { env: PEER(0) }); // the lock file exists
  const locker = spawn(bare(NOBODY)[0]!, [...bare(NOBODY).slice(1), 'sh', '-c',
    'flock -x /proc/self/ns/net -c "flock -x /run/netgrant -c \'echo held; flock -n /run/netgrant/lease.lock true 2>&1 || echo lease-lock-refused; sleep 60\'"'], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let said = '';
  locker.stdout!.on('data', (d) => (said += d));
  try {
    assert.ok(await until(() => said.includes('lease-lock-refused'), 5000), said);
    for (const kind of ['s6-ipcserver', 'netgrant-serve']) {
      const sock = join(dir, `lock-${kind}.sock`);
      const server = await startServer([kind, sock, 'peer-check', '-u', '2001', 'mktap', '-b', 'br-l0', '--owner-from-peer', '--max-per-peer', '2', 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME'], sock);
      try {
        const started = Date.now();
        const r = run([...bare(2001), 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME', 'sh', '-c', 'echo $TAPNAME']);
        const ms = Date.now() - started;
        assert.is(r.status, 0, r.stderr + server.output());
        assert.match(r.stdout, /^tap\d+\n$/);
        assert.ok(ms < 5000, `${kind}: the lease took ${ms} ms while uid 65534 held every lock it could`);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await stop(locker);
  }
});

test('netgrant-reap: bad input', () => {
  for (const [args, re] of [
    [['-i', '0'], /-i/],
    [['-i', 'x'], /-i/],
    [['true'], /takes no program/],
    [['-o', '-1', 'true'], /-o excludes -1 and -i/],
    [['-o', '-i', '100'], /-o excludes -1 and -i/],
    [['--bogus'], /bogus/],
  ] as [string[], RegExp][]) {
    const r = run(['netgrant-reap', ...args]);
    assert.is(failsWith(r, 'netgrant-reap', 100, re), null, `${args.join(' ')}: ${r.stderr}`);
  }
});

test.after(() => {
  cleanup();
  sh('ip link del br-l0');
});

test.run();

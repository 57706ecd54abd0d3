// The launchers' accounting under attack (issue 12, docs/security.md
// "Launchers: accounting no user can forge, hide from or hold"), each
// attack run by real unprivileged processes (uids 65534 and 65533): forged
// records in user-owned namespaces, launches kept alive after their process
// exited (an fd, a bind mount in another mount namespace, a surviving
// child), 20 greedy clients that hide their launches, and flock on every
// file a user can open. Shared by mkmacvlan (natively) and mkipvlan (VM lane).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dumpLinks, dumpAddresses, withNetlink, getLink } from '@netgrant/core';
import { forEachNamespace, parseRecord } from '@netgrant/lease';
import { run, sh, tempDir, failsWith, until, holdChain, BASE_ENV, NOBODY } from './harness.js';
import { confMaker, sleep } from './launcher.js';

export const OTHER = 65533;
/** A launch's run() limit: a few seconds natively, much longer under the VM lane's emulated CPUs. */
const SLOW = 300000;
export const as = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

/** A process started in the background that prints one line when ready; resolves with it. */
export function background(argv: string[]): Promise<{ proc: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(argv[0]!, argv.slice(1), { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ proc, line: out.trim() });
    });
    proc.stderr!.on('data', (d) => (err += d));
    proc.on('close', (code) => reject(new Error(`${argv.join(' ')}: exited ${code}: ${err.trim()}`)));
  });
}

export const gone = (proc: ChildProcess) => new Promise<void>((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', () => r())));

/** Every launched interface the kernel has on parent `ref` (INO.IDX), in any namespace /proc shows: uid and addresses. */
function launchedOn(ref: string): { uid: number; addrs: string[] }[] {
  const out: { uid: number; addrs: string[] }[] = [];
  forEachNamespace((nl) => {
    for (const l of dumpLinks(nl)) {
      const r = parseRecord(l.alias);
      if (r?.parent !== ref) continue;
      out.push({ uid: r.uid, addrs: dumpAddresses(nl).filter((a) => a.index === l.index && a.family === 2).map((a) => a.address) });
    }
  }, { trustedOnly: true });
  return out;
}

/** rounds: how often each greedy client asks (3 natively; fewer under the VM lane's emulated CPUs). */
export function attackSuite(prog: 'mkmacvlan' | 'mkipvlan', opts: { rounds?: number } = {}): void {
  const rounds = opts.rounds ?? 3;
  const { dir, cleanup } = tempDir();
  chmodSync(dir, 0o755);
  const conf = confMaker(dir);
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const home = String(statSync('/proc/self/ns/net').ino);
  const ref = (dev: string) => `${home}.${withNetlink((nl) => getLink(nl, dev)!.index)}`;
  // One usable address (.2) on ap0; a /24 on bp0; a /28 on cp0.
  sh('ip link add ap0 type veth peer name ap1 && ip addr add 10.36.0.1/30 dev ap0 && ip link set ap0 up && ip link set ap1 up');
  sh('ip link add bp0 type veth peer name bp1 && ip addr add 10.37.0.1/24 dev bp0 && ip link set bp0 up && ip link set bp1 up');
  sh('ip link add cp0 type veth peer name cp1 && ip addr add 10.38.0.1/28 dev cp0 && ip link set cp0 up && ip link set cp1 up');
  const procs: ChildProcess[] = [];
  const pids: number[] = [];
  const groups: number[] = [];
  /** The chain a service would run for uid: the launcher, then the user's program as that uid. */
  const chain = (c: string, uid: number, extra: string[] = []) => [prog, '-c', c, ...extra, 'cap-drop', '-u', String(uid), '-g', String(uid), '--'];

  test(`${prog}: capability-aware, not root: it never makes the lease lock or the registry itself (they would be its user's)`, () => {
    // The first launch of this test file: /run/netgrant (the file's own tmpfs) is empty.
    const c = conf('10.37.0.0/24\n');
    const caps = '+dac_override,+sys_admin,+net_admin';
    const r = run([...as(NOBODY), `--inh-caps=${caps}`, `--ambient-caps=${caps}`, prog, '-c', c, 'true']);
    assert.is(failsWith(r, prog, 111, /open \/run\/netgrant\/lease\.lock: .*ENOENT.*must be made by root first/), null, r.stderr);
    assert.is(run(['find', '/run/netgrant', '-mindepth', '1']).stdout, '', 'nothing made');
    // Once root has made them (any root launch), the same launch works.
    assert.is(run([prog, '-c', c, 'true']).status, 0);
    const again = run([...as(NOBODY), `--inh-caps=${caps}`, `--ambient-caps=${caps}`, prog, '-c', c, 'sh', '-c', 'echo $NETADDRS']);
    assert.is(again.status, 0, again.stderr);
    assert.match(run(['stat', '-c', '%u %a', '/run/netgrant/lease.lock', '/run/netgrant/launched']).stdout, /^0 600\n0 700\n$/);
  });

  test(`${prog}: forged records in a user-owned namespace (naming another uid, covering the whole subnet) have no effect`, async () => {
    const c = conf('limit 1\n10.38.0.0/28\n');
    const forged = `netgrant1 lease by=${prog} uid=7200 parent=${ref('cp0')}`;
    const addAll = Array.from({ length: 14 }, (_, i) => `ip addr add 10.38.0.${i + 1}/28 dev f0;`).join(' ');
    // As nobody: a namespace of its own, a link with the record another user's launch would have
    // (and the old tag), every address of the subnet on it; kept alive where /proc shows it.
    const f = await background([...as(NOBODY), 'unshare', '-Urn', 'sh', '-c',
      `ip link add f0 type veth peer name f1 && ip link set f0 alias "${forged}" && ip link set f1 alias "netgrant uid=7200 parent=${ref('cp0')}" && ${addAll} ip link set f0 up && echo ready && exec sleep 300`]);
    procs.push(f.proc);
    assert.is(f.line, 'ready');
    // uid 7200 has launched nothing: its limit of 1 is all its own; every address is free.
    const a = await holdChain(chain(c, 7200), 'echo "$NETADDRS"; exec sleep 300', { PEERUID: '7200' });
    procs.push(a.proc);
    assert.match(a.out, /^10\.38\.0\.([2-9]|1[0-4])\/28$/);
    const b = await holdChain(chain(c, 7201), 'echo "$NETADDRS"; exec sleep 300', { PEERUID: '7201' });
    procs.push(b.proc);
    assert.match(b.out, /^10\.38\.0\.\d+\/28$/);
    assert.is.not(a.out, b.out);
    const again = run([...chain(c, 7200), 'true'], { env: { PEERUID: '7200' }, timeout: SLOW });
    assert.is(failsWith(again, prog, 1, /uid 7200 already has 1 launched namespace, the limit is 1/), null, again.stderr);
    // Nor can a user write, read or lock the registry or the lease lock.
    const poke = run([...as(NOBODY), 'sh', '-c', 'ls /run/netgrant/launched; (: > /run/netgrant/launched/x); flock -n /run/netgrant/lease.lock true'], { timeout: 5000 });
    assert.match(poke.stderr, /cannot create \/run\/netgrant\/launched\/x: Permission denied/);
    assert.match(poke.stderr, /launched.*Permission denied/);
    assert.match(poke.stderr, /lease\.lock.*Permission denied/);
  });

  // Each way to keep a launched namespace alive after its process exited,
  // as the user: [name, the launched program, the keeper given the launched
  // pid (it prints "kept PATH", PATH a name of the namespace), or null when
  // the launch keeps itself (its child)].
  const keepers: [string, string, (pid: number) => string[] | null][] = [
    ['an fd (exec 9</proc/PID/ns/net)', 'echo "$NETADDRS"; exec sleep 300', (pid) => [...as(NOBODY), 'sh', '-c', `exec 9</proc/${pid}/ns/net && echo "kept /proc/$$/fd/9" && exec sleep 300`]],
    // (From inside its own user namespace a user cannot open another process's
    // namespace links: it opens the namespace first, then mounts its own fd.)
    ['a bind mount in another mount namespace', 'echo "$NETADDRS"; exec sleep 300', (pid) => [...as(NOBODY), 'sh', '-c', 'exec 9</proc/$1/ns/net && exec unshare -Urm sh -c "$2"', 'sh', String(pid),
      `f=$(mktemp -p ${shared}) && mount --bind /proc/self/fd/9 "$f" && exec 9<&- && echo "kept $f" && exec sleep 300`]],
    ['a surviving child', 'sleep 300 </dev/null >/dev/null 2>&1 & echo "$NETADDRS $!"', () => null],
  ];
  for (const [how, script, keeper] of keepers) {
    test(`${prog}: a launch kept alive by ${how} after its process exited: still counted, its address never handed out again, freed once really gone`, async () => {
      const c = conf('limit 1\n10.36.0.0/30\n');
      const l = await holdChain(chain(c, NOBODY), script, { PEERUID: String(NOBODY) });
      const [addr, child] = l.out.split(' ');
      assert.is(addr, '10.36.0.2/30');
      let keep: { proc: ChildProcess; line: string } | undefined;
      const argv = keeper(l.proc.pid!);
      let enter: string[];
      if (argv) {
        keep = await background(argv);
        const path = keep.line.replace(/^kept /, '');
        enter = how.includes('bind') ? ['nsenter', '-t', String(keep.proc.pid), '-m', 'nsenter', `--net=${path}`] : ['nsenter', `--net=${path}`];
        l.proc.kill('SIGKILL');
      } else enter = ['nsenter', `--net=/proc/${child}/ns/net`];
      await gone(l.proc);
      const release = () => (keep ? keep.proc.kill('SIGKILL') : process.kill(Number(child), 'SIGKILL'));
      try {
        // The namespace lives on, with the address, and only the keeper holds it.
        assert.ok(await until(() => launchedOn(ref('ap0')).length === (keep ? 0 : 1), 3000), 'no process of the launch runs in it');
        const still = run([...enter, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
        assert.match(still.stdout, /inet 10\.36\.0\.2\/30/, still.stderr);
        // Counted against its user ...
        const mine = run([...chain(c, NOBODY), 'true'], { env: { PEERUID: String(NOBODY) }, timeout: SLOW });
        assert.is(failsWith(mine, prog, 1, /uid 65534 already has 1 launched namespace, the limit is 1/), null, mine.stderr);
        // ... and its address is not another user's.
        const other = run([...chain(c, OTHER), 'sh', '-c', 'echo "$NETADDRS"'], { env: { PEERUID: String(OTHER) }, timeout: SLOW });
        assert.is(failsWith(other, prog, 111, /allocate an address in 10\.36\.0\.0\/30: .*no free address/), null, `${other.stdout} ${other.stderr}`);
      } finally {
        release();
      }
      // Really gone: the address is free again, for anyone.
      let got = '';
      assert.ok(await until(() => {
        const r = run([...chain(c, OTHER), 'sh', '-c', 'echo "$NETADDRS"'], { env: { PEERUID: String(OTHER) }, timeout: SLOW });
        got = r.stdout.trim() || r.stderr.trim();
        return r.status === 0;
      }, 60000), `freed once gone: ${got}`);
      assert.is(got, '10.36.0.2/30');
    });
  }

  test(`${prog}: registry entries removed by hand: a live launch with a process in it is found again (adopted) and still counts`, async () => {
    const c = conf('limit 1\n10.36.0.0/30\n');
    const l = await holdChain(chain(c, 7400), 'echo "$NETADDRS"; exec sleep 300', { PEERUID: '7400' });
    procs.push(l.proc);
    assert.is(l.out, '10.36.0.2/30');
    sh('rm -f /run/netgrant/launched/*');
    const mine = run([...chain(c, 7400), 'true'], { env: { PEERUID: '7400' }, timeout: SLOW });
    assert.is(failsWith(mine, prog, 1, /uid 7400 already has 1 launched namespace, the limit is 1/), null, mine.stderr);
    const other = run([...chain(c, 7401), 'true'], { env: { PEERUID: '7401' }, timeout: SLOW });
    assert.is(failsWith(other, prog, 111, /no free address/), null, other.stderr);
    assert.match(run(['sh', '-c', 'cat /run/netgrant/launched/*']).stdout, /^netgrant1 launched by=\S+ uid=7400 .* addrs=10\.36\.0\.2\/30$/m);
    l.proc.kill('SIGKILL');
    await gone(l.proc);
  });

  test(`${prog}: 20 greedy clients hiding their launches at once, limit 2: the limit holds exactly, no address twice`, async () => {
    const c = conf('limit 2\n10.37.0.0/24\n');
    const uids = [7301, 7302, 7303, 7304];
    const won = new Map<number, string[]>(uids.map((u) => [u, []]));
    const refusals: string[] = [];
    // Each client asks `rounds` times; every launch it gets it hides (a child keeps it, the process exits).
    const client = async (uid: number) => {
      for (let i = 0; i < rounds; i++) {
        const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const p = spawn(prog, ['-c', c, '-t', '120000', 'cap-drop', '-u', String(uid), '-g', String(uid), '--', 'sh', '-c', 'sleep 300 </dev/null >/dev/null 2>&1 & echo "$NETADDRS $!"'], { env: { ...BASE_ENV, PEERUID: String(uid) }, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout!.on('data', (d) => (out += d));
          p.stderr!.on('data', (d) => (err += d));
          p.on('close', (code) => resolve({ code, out, err }));
        });
        if (r.code === 0) {
          const [addr, child] = r.out.trim().split(' ');
          won.get(uid)!.push(addr!);
          pids.push(Number(child));
        } else refusals.push(`${r.code} ${r.err.trim()}`);
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => client(uids[i % uids.length]!)));
    for (const u of uids) assert.is(won.get(u)!.length, 2, `uid ${u} got ${won.get(u)!.join(' ')}`);
    const addrs = [...won.values()].flat();
    assert.is(new Set(addrs).size, addrs.length, `no address twice: ${addrs.join(' ')}`);
    assert.is(refusals.length, 20 * rounds - 8);
    for (const r of refusals) assert.match(r, new RegExp(`^1 ${prog}: fatal: uid 730\\d already has 2 launched namespaces, the limit is 2$`), r);
    // The kernel agrees: exactly 2 live interfaces per uid, no two with one address.
    const live = launchedOn(ref('bp0'));
    for (const u of uids) assert.is(live.filter((l) => l.uid === u).length, 2);
    const inKernel = live.flatMap((l) => l.addrs);
    assert.is(new Set(inKernel).size, inKernel.length);
    assert.is(inKernel.length, 8);
  });

  test(`${prog}: a user holding flock on every file it can open (configuration, nsfs inodes, /run) does not delay another user's launch`, async () => {
    const c = conf('10.37.0.0/24\n');
    // nobody's own launch: its namespace's nsfs inode is one more file it can lock.
    const own = await holdChain(chain(c, NOBODY), 'echo "$NETADDRS"; exec sleep 300', { PEERUID: String(NOBODY) });
    procs.push(own.proc);
    const launch = () => {
      const t0 = Date.now();
      const r = run([...chain(c, OTHER, ['-t', '2000']), 'sh', '-c', 'echo "$NETADDRS"'], { env: { PEERUID: String(OTHER) }, timeout: SLOW });
      return { r, ms: Date.now() - t0 };
    };
    const before = launch();
    assert.is(before.r.status, 0, before.r.stderr);
    const files = [c, '/proc/self/ns/net', `/proc/${own.proc.pid}/ns/net`, '/run/netgrant', '/run', dir];
    // Each in a process group of its own: flock's child (sleep) goes with it.
    const lockers = files.map((f) => spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'flock', '-x', '-o', f, 'sleep', '300'], { stdio: 'ignore', detached: true }));
    groups.push(...lockers.map((l) => l.pid!));
    // What it cannot even open.
    const denied = run([...as(NOBODY), 'sh', '-c', 'exec 9</run/netgrant/lease.lock'], { timeout: 5000 });
    assert.match(denied.stderr, /Permission denied/);
    assert.ok(await until(() => readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => /FLOCK\s+ADVISORY\s+WRITE/.test(l)).length >= files.length, 5000), readFileSync('/proc/locks', 'utf8'));
    await sleep(100);
    // -t 2000: any of those locks gating the launch would fail it after 2 s.
    const { r, ms } = launch();
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^10\.37\.0\.\d+\/24\n$/, `${r.stdout} ${r.stderr}`);
    console.log(`  a launch with a user's flocks on ${files.length} files: ${ms} ms (without: ${before.ms} ms)`);
  });

  test.after(() => {
    for (const p of procs) p.kill('SIGKILL');
    for (const pid of [...pids, ...groups.map((g) => -g)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    cleanup();
  });
}

// mkmacvlan -N against its client (docs/security.md, "mkmacvlan and
// mkipvlan -N"): uid 65534, root in the user and network namespace it
// sent, does everything it can to the macvlan it was given — rewrites the
// alias, changes the MAC, renames it, takes it down, moves it into a nested
// namespace of its own — and after each another uid's launch on the
// one-address pool still finds it taken; once both namespaces are gone and
// the registry's tombstone has passed, the address is handed out again.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): what this tests is the
// registry's client entries, the same whichever way the links are reached;
// the -N chain itself runs in both modes in netns.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, chmodSync, readdirSync, readFileSync } from 'node:fs';
import { run, sh, tempDir, failsWith, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker, sleep } from '../../../tools/test/lib/launcher.js';
import { as, background, gone, OTHER } from '../../../tools/test/lib/launcher-attacks.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
// The parent mq0: a /30, one address to lease (.2).
sh('ip link add mq0 type veth peer name mq1 && ip addr add 10.96.0.1/30 dev mq0 && ip link set mq0 up && ip link set mq1 up');
const client = () => background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c', 'echo ready; exec sleep 300']);
const inside = (pid: number, cmd: string) => run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(pid), 'sh', '-c', cmd]);
const withNs = (ns: number, args: string[]) => run(['mkmacvlan', ...args], { env: { PEERUID: String(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
const entries = () => readdirSync('/run/netgrant/launched').map((n) => readFileSync(`/run/netgrant/launched/${n}`, 'latin1').trim());

test('mkmacvlan -N: the client, root in its namespace, rewrites the alias, changes the MAC, renames the link, takes it down and moves it into a nested namespace of its own: its address is still never handed to another lease; the same namespace twice is refused', async () => {
  const c = conf('10.96.0.0/30\n');
  const k = await client();
  const pid = k.proc.pid!;
  let ns = openSync(`/proc/${pid}/ns/net`, 'r');
  let nested: ChildProcess | undefined;
  /** Another uid's launch (a namespace of its own): the pool's only address is taken, so it must find none. */
  const other = () => run(['mkmacvlan', '-c', c, 'sh', '-c', 'echo "$NETADDRS"'], { env: { PEERUID: String(OTHER) } });
  const full = (what: string) => {
    const o = other();
    assert.is(failsWith(o, 'mkmacvlan', 111, /allocate an address in 10\.96\.0\.0\/30: .*no free address/), null, `${what}: ${o.stdout} ${o.stderr}`);
  };
  try {
    const r = withNs(ns, ['-c', c, '-N', '5', 'sh', '-c', 'echo "$NETIF $NETADDRS"']);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), 'eth0 10.96.0.2/30');
    full('as leased');
    const twice = withNs(ns, ['-c', c, '-N', '5', 'true']);
    assert.is(failsWith(twice, 'mkmacvlan', 1, /-N: that namespace already has a launched interface/), null, twice.stderr);
    const steps: [string, string][] = [
      ['the alias rewritten', 'ip link set eth0 alias "netgrant1 lease by=mkmacvlan uid=1 parent=1.1"'],
      ['the MAC changed', 'ip link set eth0 address 02:00:00:00:96:01'],
      ['renamed', 'ip link set eth0 name x0'],
      ['down', 'ip link set x0 down'],
    ];
    for (const [what, cmd] of steps) {
      const d = inside(pid, cmd);
      assert.is(d.status, 0, `${what}: ${d.stderr}`);
      full(what);
    }
    // A nested namespace of its own: the link moved there, out of the namespace it was leased in.
    nested = (await background([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(pid), 'unshare', '-n', 'sh', '-c', 'echo ready; exec sleep 300'])).proc;
    const mv = inside(pid, `ip link set x0 netns ${nested.pid} && ip -o link show | grep -c x0`);
    assert.is(mv.stdout.trim(), '0', mv.stderr);
    full('moved into a nested namespace');
    assert.is(entries().filter((e) => e.includes('addrs=10.96.0.2/30')).length, 1);
    // Both namespaces deleted: once the tombstone has passed, the address is handed out again.
    closeSync(ns);
    ns = -1;
    nested.kill('SIGKILL');
    k.proc.kill('SIGKILL');
    await gone(k.proc);
    full('just deleted');
    let o = other();
    for (let i = 0; i < 20 && o.status !== 0; i++) {
      await sleep(2000);
      o = other();
    }
    assert.is(o.stdout.trim(), '10.96.0.2/30', o.stderr);
  } finally {
    if (ns >= 0) closeSync(ns);
    nested?.kill('SIGKILL');
    k.proc.kill('SIGKILL');
  }
});

test.after(() => {
  sh('ip link del mq0');
  cleanup();
});

test.run();

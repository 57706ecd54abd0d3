// mkveth --masquerade and -p (docs/recipes.md, "A daemon with its own
// network stack"): the seed-002 recipe end to end inside the test's own
// namespaces. The test's namespace is the host; an "upstream" namespace
// beyond it (no route to the pool) holds a server; the daemon runs as uid
// 65534 with no capability in the mkveth namespace. Afterwards nothing is
// left: no link, route, proxy entry or nftables table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith, holdChain, until, PYTHON, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, background } from '../../../tools/test/lib/launcher-attacks.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const ruleset = () => sh('nft list ruleset').stdout;
const UP = 'ngup';
// The upstream network: 198.51.100.0/24 and 2001:db8:51::/64 between the host (.1) and the upstream namespace (.2), which has no route to the pool.
sh(`ip netns add ${UP} && ip link add up0 type veth peer name up1 netns ${UP} && ip addr add 198.51.100.1/24 dev up0 && ip -6 addr add 2001:db8:51::1/64 dev up0 nodad && ip link set up0 up`);
sh(`ip -n ${UP} link set lo up && ip -n ${UP} addr add 198.51.100.2/24 dev up1 && ip -n ${UP} -6 addr add 2001:db8:51::2/64 dev up1 nodad && ip -n ${UP} link set up1 up`);
// The host forwards between its upstream and the launched namespaces (the administrator's choice: mkveth
// sets only the host end's, and IPv6 forwards only with the namespace-wide switch on).
sh('sysctl -qw net.ipv4.conf.up0.forwarding=1 net.ipv6.conf.all.forwarding=1');

const py = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, 0o644);
  return p;
};
/** A dual-stack TCP server on PORT that answers "NAME sees PEER" and closes; prints "ready". */
const server = py('server.py', `import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', port))
s.listen(16)
if len(sys.argv) > 3:
    # The daemon: first ask the upstream server, over IPv4 and IPv6, who it sees.
    def ask(fam, addr):
        c = socket.socket(fam)
        c.settimeout(3)
        try:
            c.connect((addr, 9000))
            return c.recv(200).decode().strip()
        except OSError:
            return 'unreachable'
        finally:
            c.close()
    print(ask(socket.AF_INET, sys.argv[3]) + ' | ' + ask(socket.AF_INET6, sys.argv[4]), flush=True)
else:
    print('ready', flush=True)
while True:
    c, a = s.accept()
    c.sendall(('%s sees %s\\n' % (name, a[0].removeprefix('::ffff:'))).encode())
    c.close()
`);
/** Connect to ADDR PORT, print the answer (or "unreachable"). */
const client = py('client.py', `import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print(c.recv(200).decode().strip())
except OSError:
    print('unreachable')
`);
const ask = (where: string[], addr: string, port: number) => run([...where, ...as(NOBODY), PYTHON, client, addr, String(port)]).stdout.trim();
const inUp = ['ip', 'netns', 'exec', UP];
const daemon = (c: string, opts: string[]) =>
  holdChain(['mkveth', '-c', c, ...opts, 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--', PYTHON, server, 'daemon', '10105', '198.51.100.2', '2001:db8:51::2'], '', {});

const upstream = background([...inUp, ...as(NOBODY), PYTHON, server, 'server', '9000']);

test('seed 002: a daemon (uid 65534) in its own namespace reaches an upstream server through the NAT, and a client upstream and one on the host reach it through the forwarded port; afterwards nothing is left', async () => {
  assert.is((await upstream).line, 'ready');
  const c = conf('masquerade\nports 10100-10199\n10.80.0.0/24\nfd00:80::/64\n');
  const before = ruleset();
  const d = await daemon(c, ['--masquerade', '-p', '10105:10105']);
  try {
    // Outbound: the upstream server sees the host's address (masqueraded), over both families.
    assert.is(d.out, 'server sees 198.51.100.1 | server sees 2001:db8:51::1');
    // Inbound: through the forwarded port, from upstream (both families) and from the host itself.
    assert.is(ask(inUp, '198.51.100.1', 10105), 'daemon sees 198.51.100.2');
    assert.is(ask(inUp, '2001:db8:51::1', 10105), 'daemon sees 2001:db8:51::2');
    assert.match(ask([], '198.51.100.1', 10105), /^daemon sees /);
    // The rules: one table, named after the host end, its comment the host end's record.
    const h = hostEnds()[0]!;
    assert.equal(h.record?.ports, ['tcp:10105:10105']);
    assert.match(ruleset(), new RegExp(`table inet ${h.name} \\{\\n\\tcomment "netgrant1 lease by=mkveth uid=0 addrs=10\\.80\\.0\\.\\d+/32,fd00:80:[0-9a-f:]+/128 ports=tcp:10105:10105 nft=1"`));
  } finally {
    d.proc.kill('SIGKILL');
  }
  // The pair goes with the namespace; the table with the lease, at the reaper's next sweep.
  assert.is(await settled(), null);
  const reap = run(['netgrant-reap', '-o', '-v']);
  assert.is(reap.status, 0, reap.stderr);
  assert.match(reap.stderr, /^netgrant-reap: info: deleted table inet ngv-[0-9a-f]+: its lease is gone\n$/);
  assert.is(ruleset(), before);
  assert.is(sh('ip route show; ip -6 route show').stdout.includes('10.80.0.'), false);
});

test('seed 002, control: without --masquerade the upstream server is unreachable (it has no route back), and without -p the port is closed', async () => {
  const c = conf('masquerade\nports 10100-10199\n10.80.0.0/24\nfd00:80::/64\n');
  const d = await daemon(c, []);
  try {
    assert.is(d.out, 'unreachable | unreachable');
    assert.is(ask(inUp, '198.51.100.1', 10105), 'unreachable');
    assert.is(ruleset().includes('ngv-'), false, 'no table without NAT');
  } finally {
    d.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth -p: a host port another live lease forwards is refused, also while that lease is kept alive by an fd; once it is gone any next launch culls its table, and the port is free again, with no reaper', async () => {
  const c = conf('ports 10100-10199\n10.80.0.0/24\n');
  const a = await holdChain(['mkveth', '-c', c, '-p', '10110:80', 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--'], 'echo "$NETADDRS"; exec sleep 300');
  const keep = await background([...as(NOBODY), 'sh', '-c', `exec 9</proc/${a.proc.pid}/ns/net && echo kept && exec sleep 300`]);
  a.proc.kill('SIGKILL');
  try {
    const before = ruleset();
    for (const p of ['10110:80', '10110:8080/tcp']) {
      const r = run(['mkveth', '-c', c, '-p', p, 'sh', '-c', 'echo EXECUTED']);
      assert.is(failsWith(r, 'mkveth', 111, /forward host port 10110\/tcp: .*EADDRINUSE.*another lease forwards it/), null, r.stderr);
      assert.is(r.stdout, '');
    }
    assert.is(ruleset(), before, 'a refused launch adds no table');
    // Another protocol on the same number is another port.
    assert.is(run(['mkveth', '-c', c, '-p', '10110:80/udp', 'true']).status, 0);
  } finally {
    keep.proc.kill('SIGKILL');
  }
  await settled();
  assert.is(hostEnds().length, 0);
  assert.match(ruleset(), /table inet ngv-/, 'stale tables stay until something culls them');
  // Any launch culls them before it draws an address (a stale forward would reach the address's next holder).
  const plain = run(['mkveth', '-c', c, 'true']);
  assert.is(plain.status, 0, plain.stderr);
  assert.is(ruleset().includes('ngv-'), false, ruleset());
  const b = run(['mkveth', '-c', c, '-p', '10110:80', 'true']);
  assert.is(b.status, 0, b.stderr);
  assert.is(await settled(), null);
  // Only b's own table is left, which the reaper ends.
  assert.is((ruleset().match(/table inet ngv-/g) ?? []).length, 1);
  run(['netgrant-reap', '-o']);
  assert.is(ruleset().includes('ngv-'), false);
});

test('the resident reaper (netgrant-reap) deletes a lease\'s table as soon as its host end goes', async () => {
  const c = conf('masquerade\n10.80.0.0/24\n');
  const reaper = await background(['sh', '-c', 'exec netgrant-reap -1 -i 600000']);
  try {
    const d = await holdChain(['mkveth', '-c', c, '--masquerade'], 'echo up; exec sleep 300');
    assert.match(ruleset(), /table inet ngv-/);
    d.proc.kill('SIGKILL');
    // No sweep for ten minutes: only the kernel's RTM_DELLINK can have told it.
    assert.ok(await until(() => !ruleset().includes('ngv-'), 10000), ruleset());
  } finally {
    reaper.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth --masquerade and -p: refused unless the configuration allows them, out of range, twice, or capability-aware; nothing made', () => {
  const c = conf('ports 10100-10199\n10.80.0.0/24\n');
  const before = ruleset();
  const cases: [string, string[], number, RegExp][] = [
    [c, ['--masquerade'], 1, /--masquerade: the configuration does not allow it/],
    [conf('masquerade\n10.80.0.0/24\n'), ['-p', '10105:80'], 1, /-p 10105:80: host port 10105 is not one the configuration allows \(no "ports"\)/],
    [c, ['-p', '22:22'], 1, /host port 22 is not one the configuration allows \(ports 10100-10199\)/],
    [c, ['-p', '0:80'], 100, /-p: expected HOSTPORT:PORT/],
    [c, ['-p', '10105:65536'], 100, /-p: expected HOSTPORT:PORT/],
    [c, ['-p', '10105:80/sctp'], 100, /-p: expected HOSTPORT:PORT/],
    [c, ['-p', '10105'], 100, /-p: expected HOSTPORT:PORT/],
    [c, ['-p', '10105:80', '-p', '10105:81'], 100, /host port 10105\/tcp given twice/],
    [c, Array.from({ length: 9 }, (_, i) => ['-p', `${10100 + i}:80`]).flat(), 100, /-p: at most 8/],
    [conf('ports 0-10\n10.80.0.0/24\n'), [], 100, /c\d+\.conf:1: ports takes a range LO-HI within 1-65535/],
    [conf('ports 20-10\n10.80.0.0/24\n'), [], 100, /ports takes a range/],
    [conf('masquerade yes\n10.80.0.0/24\n'), [], 100, /masquerade takes no value/],
  ];
  for (const [file, opts, code, re] of cases) {
    const r = run(['mkveth', '-c', file, ...opts, 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'mkveth', code, re), null, `${opts.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
  }
  const caps = '+dac_override,+sys_admin,+net_admin';
  const aware = run([...as(NOBODY), `--inh-caps=${caps}`, `--ambient-caps=${caps}`, 'mkveth', '-c', c, '-p', '10105:80', 'true']);
  assert.is(failsWith(aware, 'mkveth', 1, /--masquerade and -p need a launcher run as root/), null, aware.stderr);
  assert.equal(hostEnds(), []);
  assert.is(ruleset(), before);
});

test.after(async () => {
  (await upstream).proc.kill('SIGKILL');
  sh(`ip link del up0; ip netns del ${UP}`);
  cleanup();
});

test.run();

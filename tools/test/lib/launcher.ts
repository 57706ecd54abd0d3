// The launcher suite, shared by mkmacvlan (run natively) and mkipvlan (run
// in the kernel VM lane, whose kernel has ipvlan): what both programs
// promise, on parents inside the test's own network namespace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, chmodSync, chownSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith, until, holdChain, NOBODY } from './harness.js';
import { startServer } from './service.js';

export interface LauncherSuite {
  prog: 'mkipvlan' | 'mkmacvlan';
  /** The -m error for a mode the program does not have. */
  wrongMode: [string, RegExp];
  /** Whether the default mode routes via the gateway (else through the device). */
  routesViaGateway: boolean;
  /**
   * The race: that many launches at once on 10.32.0.0/PREFIX (the host holds
   * .1). Default 20 on a /28. The VM lane races 8 on a /29: 20 Node starts on
   * two emulated CPUs cost minutes, and 8 against 5 free addresses race the
   * same lock the same way.
   */
  race?: { launches: number; prefix: 28 | 29 };
  /**
   * Which tests to register (default all): 'input' fail before any link
   * exists (configuration and options: run natively for mkipvlan too);
   * 'kernel' need the program's own kind of link (the VM lane for
   * mkipvlan); 'shared' need a working launch but test code every launcher
   * shares (the capability-aware mode, the service, the lock, the limit:
   * mkmacvlan runs them natively, attacks.vm.test.ts the limit on ipvlan).
   */
  parts?: readonly ('input' | 'kernel' | 'shared')[];
}

export interface Held {
  proc: ChildProcess;
  vars: Record<string, string>;
}

const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Configuration files in a directory of the test's: conf(text, mode, uid) writes one and returns its path. */
export function confMaker(dir: string): (text: string, mode?: number, uid?: number) => string {
  let n = 0;
  return (text, mode = 0o644, uid = 0) => {
    const p = join(dir, `c${n++}.conf`);
    writeFileSync(p, text);
    chmodSync(p, mode);
    chownSync(p, uid, 0);
    return p;
  };
}

/** Launch and keep the namespace alive; resolves with the exported variables once inside. */
export async function hold(argv: string[], env: Record<string, string> = {}): Promise<Held> {
  const { proc, out } = await holdChain(argv, 'echo "NETIF=$NETIF NETADDRS=$NETADDRS"; exec sleep 120', env);
  return { proc, vars: Object.fromEntries(out.split(' ').map((kv) => kv.split('=') as [string, string])) };
}

/**
 * The refusals of a configuration file every launcher shares, each with a
 * file holding text that would otherwise be good: [name, make its path,
 * exit code, message]. Mount points made go in mounts (the caller unmounts).
 */
export function configFileRefusals(dir: string, conf: ReturnType<typeof confMaker>, text: string, mounts: string[]): [string, () => string, number, RegExp][] {
  let n = 0;
  return [
    ['group-writable', () => conf(text, 0o664), 100, /writable by group/],
    ['world-writable', () => conf(text, 0o646), 100, /writable by others/],
    ['not root-owned', () => conf(text, 0o644, NOBODY), 100, /owned by uid 65534/],
    ['a symlink', () => { const l = join(dir, `link${n++}`); symlinkSync(conf(text), l); return l; }, 100, /is a symbolic link/],
    ['on another filesystem', () => { const d = join(dir, `fs${n++}`); mkdirSync(d); sh(`mount -t tmpfs none ${d}`); mounts.push(d); writeFileSync(join(d, 'c'), text); chmodSync(join(d, 'c'), 0o644); return join(d, 'c'); }, 100, /not on the same filesystem/],
    ['a missing file', () => join(dir, 'absent.conf'), 111, /ENOENT/],
  ];
}

/** Options every launcher refuses: [args, message]. */
export const LAUNCHER_BAD_OPTIONS: [string[], RegExp][] = [
  [['-i', 'way-too-long-name0'], /-i: invalid interface name/],
  [['-i', 'a/b'], /-i: invalid interface name/],
  [['-x'], /unknown option -x/],
  [['-t', '0'], /-t: out of range/],
  [['-t', '1e3'], /-t: not a number/],
];

/** Register the shared tests; the caller adds its own and calls test.run(). */
export function launcherSuite(s: LauncherSuite): { dir: string; conf: ReturnType<typeof confMaker> } {
  const { prog } = s;
  const parts = s.parts ?? ['input', 'kernel', 'shared'];
  const part = (p: 'input' | 'kernel' | 'shared', name: string, fn: () => unknown) => {
    if (parts.includes(p)) test(name, fn as () => void);
  };
  const { dir, cleanup } = tempDir();
  const mounts: string[] = [];
  chmodSync(dir, 0o755);
  const conf = confMaker(dir);
  sh('ip link add mp0 type veth peer name mp1 && ip addr add 10.30.0.1/24 dev mp0 && ip -6 addr add fd00:30::1/64 dev mp0 nodad && ip link set mp0 up && ip link set mp1 up');
  sh('ip link add sp0 type veth peer name sp1 && ip addr add 10.31.0.1/30 dev sp0 && ip link set sp0 up && ip link set sp1 up');
  sh('ip link add qp0 type veth peer name qp1 && ip addr add 10.32.0.1/28 dev qp0 && ip link set qp0 up && ip link set qp1 up');

  part('kernel', `${prog}: a launch: fresh namespace, the interface on the parent holding the subnet, addresses, routes, lo, env`, () => {
    const c = conf('# written for the original tool\n10.30.0.0/24\nfd00:30::/64\n');
    const r = run([prog, '-c', c, 'sh', '-c', 'echo "$NETIF|$NETADDRS|$NETGATEWAYS|$NETPARENT"; ip -j -d addr show; ip -j route show; ip -6 -j route show default; readlink /proc/self/ns/net']);
    assert.is(r.status, 0, r.stderr);
    const [vars, addrJson, routeJson, route6Json, nsid] = r.stdout.trim().split('\n');
    const [ifname, addrs, gws, parent] = vars!.split('|');
    assert.is(ifname, 'eth0');
    assert.is(parent, 'mp0');
    assert.is(gws, '10.30.0.1,fd00:30::1');
    const [v4, v6] = addrs!.split(',');
    assert.match(v4!, /^10\.30\.0\.\d+\/24$/);
    assert.is.not(v4, '10.30.0.1/24');
    assert.match(v6!, /^fd00:30:[0-9a-f:]+\/64$/);
    const links = JSON.parse(addrJson!) as { ifname: string; flags: string[]; linkinfo?: { info_kind: string }; addr_info: { local: string }[] }[];
    assert.equal(links.map((l) => l.ifname).sort(), ['eth0', 'lo']);
    assert.ok(links.find((l) => l.ifname === 'lo')!.flags.includes('UP'));
    const eth0 = links.find((l) => l.ifname === 'eth0')!;
    assert.is(eth0.linkinfo?.info_kind, prog.slice(2));
    assert.ok(eth0.addr_info.some((a) => `${a.local}/24` === v4));
    const def = (JSON.parse(routeJson!) as { dst: string; gateway?: string; dev: string }[]).find((x) => x.dst === 'default');
    const def6 = (JSON.parse(route6Json!) as { gateway?: string; dev: string }[])[0];
    if (s.routesViaGateway) {
      assert.is(def?.gateway, '10.30.0.1');
      assert.is(def6?.gateway, 'fd00:30::1');
    } else {
      assert.equal([def?.gateway, def?.dev], [undefined, 'eth0'], routeJson);
      assert.equal([def6?.gateway, def6?.dev], [undefined, 'eth0'], route6Json);
    }
    assert.is.not(nsid, run(['readlink', '/proc/self/ns/net']).stdout.trim());
    assert.is(run(['ip', '-o', 'link', 'show', 'type', prog.slice(2)]).stdout, '', 'nothing in the launching namespace');
  });

  part('kernel', `${prog}: the config's parent and gateway override what the host's addresses say`, () => {
    // 10.34.0.0/29 is on no host interface: the parent is named; the
    // gateway is named, and never handed out.
    const c = conf('10.34.0.0/29 parent mp0 gateway 10.34.0.6\n');
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = run([prog, '-c', c, 'sh', '-c', 'echo "$NETADDRS|$NETGATEWAYS|$NETPARENT"; ip -j route show default']);
      assert.is(r.status, 0, r.stderr);
      const [vars, routeJson] = r.stdout.trim().split('\n');
      const [addr, gw, parent] = vars!.split('|');
      assert.match(addr!, /^10\.34\.0\.[1-5]\/29$/);
      assert.equal([gw, parent], ['10.34.0.6', 'mp0']);
      const def = (JSON.parse(routeJson!) as { gateway?: string }[])[0];
      assert.is(def?.gateway, s.routesViaGateway ? '10.34.0.6' : undefined, routeJson);
      seen.add(addr!);
    }
    assert.ok(seen.size > 1, `drawn at random: ${[...seen].join(' ')}`);
  });

  part('kernel', `${prog}: traffic between two launched namespaces on one parent; no address handed out twice`, async () => {
    const c = conf('10.30.0.0/24\n');
    const a = await hold([prog, '-c', c]);
    const b = await hold([prog, '-c', c]);
    try {
      assert.is.not(a.vars.NETADDRS, b.vars.NETADDRS);
      const bAddr = b.vars.NETADDRS!.split('/')[0]!;
      const r = run(['nsenter', `--net=/proc/${a.proc.pid}/ns/net`, 'ping', '-c', '2', '-W', '5', bAddr]);
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /2 received/);
    } finally {
      a.proc.kill('SIGKILL');
      b.proc.kill('SIGKILL');
    }
  });

  part('kernel', `${prog}: a full subnet is a clear error, never a hang`, async () => {
    // 10.31.0.0/30: .1 is the host's (and the gateway), .2 the only usable one left.
    const c = conf('10.31.0.0/30\n');
    const a = await hold([prog, '-c', c]);
    try {
      assert.is(a.vars.NETADDRS, '10.31.0.2/30');
      const r = run([prog, '-c', c, 'true'], { timeout: 60000 });
      assert.is(failsWith(r, prog, 111, /allocate an address in 10\.31\.0\.0\/30: .*no free address/), null, r.stderr);
    } finally {
      a.proc.kill('SIGKILL');
    }
  });

  const race = s.race ?? { launches: 20, prefix: 28 };
  const free = 2 ** (32 - race.prefix) - 3; // less network, broadcast and the host's own
  part('kernel', `${prog}: ${race.launches} launches at once on a /${race.prefix}: every usable address at most once, the rest a clean error`, async () => {
    const c = conf(`10.32.0.0/${race.prefix}\n`);
    // Many Node starts at once on two (in the VM lane, emulated) CPUs: each
    // waits its turn for the lock for longer than the default 10 s.
    const results = await Promise.allSettled(Array.from({ length: race.launches }, () => hold([prog, '-c', c, '-t', '120000'])));
    const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Held>[];
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    try {
      const addrs = won.map((w) => w.value.vars.NETADDRS);
      assert.is(won.length, free, `${free + 1} usable hosts in a /${race.prefix}, less the host's own; failures: ${lost.map((l) => String(l.reason)).join(' | ')}`);
      assert.is(new Set(addrs).size, addrs.length, 'no address twice');
      for (const l of lost) assert.match(String(l.reason), /no free address/, String(l.reason));
    } finally {
      for (const w of won) w.value.proc.kill('SIGKILL');
    }
  });

  part('shared', `${prog}: capability-aware: as uid 65534 with only permitted (ambient) capabilities; nothing left for the program`, () => {
    // A -c path is the caller's choice here: opened with the caller's own access (test/adversarial/privilege.test.ts).
    const c = conf('10.30.0.0/24\n', 0o644);
    // The lease lock and the registry are made by root (a root launch; tmpfiles.d on a host).
    assert.is(run([prog, '-c', c, 'true']).status, 0);
    const caps = '+dac_override,+sys_admin,+net_admin';
    const r = run([...AS_NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`,
      prog, '-c', c, 'sh', '-c', 'id -u; echo $NETADDRS; grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status']);
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.is(lines[0], String(NOBODY));
    assert.match(lines[1]!, /^10\.30\.0\.\d+\/24$/);
    assert.is(lines.length, 6);
    for (const l of lines.slice(2)) assert.match(l, /:\s+0000000000000000$/, l);
    const none = run([...AS_NOBODY, prog, '-c', c, 'true']);
    assert.is(failsWith(none, prog, 111, /need CAP_DAC_OVERRIDE in the permitted set/), null, none.stderr);
  });

  part('shared', `${prog}: service mode: s6-sudo runs the client's command in its own namespace, as itself, without capabilities`, async () => {
    const c = conf('10.30.0.0/24\n');
    const sock = join(dir, 'launch.sock');
    const srv = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 's6-sudod', prog, '-c', c, 'cap-drop', '--from-peer', '--'], sock);
    try {
      const r = run([...AS_NOBODY, 's6-sudo', sock, 'sh', '-c', 'id -u; ip -4 -o addr show eth0 | cut -d" " -f7; grep CapEff /proc/self/status; exit 7']);
      assert.is(r.status, 7, `stdout: ${r.stdout} stderr: ${r.stderr} server: ${srv.output()}`);
      const [uid, addr, capEff] = r.stdout.trim().split('\n');
      assert.is(uid, String(NOBODY));
      assert.match(addr!, /^10\.30\.0\.\d+\/24$/);
      assert.match(capEff!, /0000000000000000$/);
      // Only the administrator's chain chooses the configuration: a client's
      // "-c FILE" are the program's words.
      const smuggled = run([...AS_NOBODY, 's6-sudo', sock, '-c', conf('10.31.0.0/30\n'), 'true']);
      assert.is(smuggled.status, 127, smuggled.stderr);
      assert.is(smuggled.stderr, 'cap-drop: fatal: unable to exec -c: No such file or directory (ENOENT)\n');
    } finally {
      await srv.stop();
    }
  });

  const badConf: [string, () => string, number, RegExp][] = [
    ...configFileRefusals(dir, conf, '10.30.0.0/24\n', mounts),
    ['a malformed line', () => conf('10.30.0.0/24\n10.30.1.0/33\n'), 100, /c\d+\.conf:2: not a subnet/],
    ['host bits set', () => conf('10.30.0.5/24\n'), 100, /not a subnet/],
    ['an unknown option', () => conf('10.30.0.0/24 parnet mp0\n'), 100, /unknown option "parnet"/],
    ['a bad mode', () => conf('mode l9\n10.30.0.0/24\n'), 100, /mode must be one of/],
    ['an empty config', () => conf('# nothing\n'), 100, /no subnet listed/],
    ['a subnet no host interface holds', () => conf('10.99.0.0/24\n'), 100, /10\.99\.0\.0\/24: no host interface has an address in it/],
    ['a missing parent', () => conf('10.99.0.0/24 parent nope0 gateway 10.99.0.1\n'), 100, /parent nope0 for 10\.99\.0\.0\/24: no such interface/],
    ['a gateway outside the subnet', () => conf('10.30.0.0/24 gateway 10.31.0.1\n'), 100, /gateway 10\.31\.0\.1 is not an address in/],
    ['overlapping subnets', () => conf('10.30.0.0/24\n10.30.0.0/25\n'), 100, /overlaps an earlier subnet/],
    ['a VID out of range', () => conf('10.30.0.0/24\nvlan 10,4095\n'), 100, /c\d+\.conf:2: vlan: not a VLAN id or range of 1-4094: "4095"/],
  ];
  for (const [name, make, code, re] of badConf) {
    part('input', `${prog}: refused: config ${name}; nothing created`, () => {
      const r = run([prog, '-c', make(), 'sh', '-c', 'echo EXECUTED']);
      assert.is(failsWith(r, prog, code, re), null, r.stderr);
      assert.is(r.stdout, '');
      assert.is(run(['ip', '-o', 'link', 'show', 'type', prog.slice(2)]).stdout, '');
    });
  }

  part('input', `${prog}: bad options (a VID out of range or not allowed among them)`, () => {
    const c = conf('10.30.0.0/24\n');
    for (const [args, re] of [...LAUNCHER_BAD_OPTIONS, [['-m', s.wrongMode[0]], s.wrongMode[1]]] as const) {
      const r = run([prog, '-c', c, ...args, 'true']);
      assert.is(failsWith(r, prog, 100, re), null, r.stderr);
    }
    // -V: a VID of 1-4094 that the configuration lists, checked before anything is made.
    const v = conf('10.30.0.0/24\nvlan 10-20\n');
    const vlanCases: [string, string[], number, RegExp][] = [
      [c, ['-V', '0'], 100, /-V: VLAN id out of range \(1-4094\): 0/],
      [c, ['-V', '4095'], 100, /-V: VLAN id out of range/],
      [c, ['-V', '4096'], 100, /-V: VLAN id out of range/],
      [c, ['-V', '1x'], 100, /-V: not a VLAN id/],
      [v, ['-V', '21'], 1, /-V 21: VLAN 21 on mp0 is not allowed by the configuration/],
      [c, ['-V', '10'], 1, /-V 10: VLAN 10 on mp0 is not allowed/],
    ];
    for (const [file, args, code, re] of vlanCases) {
      const r = run([prog, '-c', file, ...args, 'true']);
      assert.is(failsWith(r, prog, code, re), null, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.is(run(['ip', '-o', 'link', 'show', 'type', 'vlan']).stdout, '', 'no VLAN made');
    const badPeer = run([prog, '-c', c, 'true'], { env: { PEERUID: 'x' } });
    assert.is(failsWith(badPeer, prog, 100, /PEERUID has an invalid value/), null, badPeer.stderr);
  });

  part('shared', `${prog}: the lease lock (root's, 0600): held by root, a launch waits at most -t, then a clear error; nothing created`, async () => {
    const c = conf('10.30.0.0/24\n');
    assert.is(run([prog, '-c', c, 'true']).status, 0, 'a first launch makes the lock');
    // A process group of its own: flock's child (sleep) goes with it.
    const holder = spawn('flock', ['-x', '-o', '/run/netgrant/lease.lock', 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      assert.ok(await until(() => /FLOCK\s+ADVISORY\s+WRITE/.test(run(['cat', '/proc/locks']).stdout), 5000), 'flock holds the lock');
      const r = run([prog, '-c', c, '-t', '300', 'sh', '-c', 'echo EXECUTED']);
      assert.is(failsWith(r, prog, 111, /lock \/run\/netgrant\/lease\.lock: .*ETIMEDOUT.*still locked after 300 ms/), null, r.stderr);
      assert.is(r.stdout, '');
      assert.is(run(['ip', '-o', 'link', 'show', 'type', prog.slice(2)]).stdout, '');
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
    }
  });

  part('shared', `${prog}: per-user limit (config "limit")`, async () => {
    const c = conf('limit 1\n10.30.0.0/24\n');
    const a = await hold([prog, '-c', c], { PEERUID: '7000' });
    try {
      const r = run([prog, '-c', c, 'true'], { env: { PEERUID: '7000' } });
      assert.is(failsWith(r, prog, 1, /uid 7000 already has 1 launched namespace, the limit is 1/), null, r.stderr);
      assert.is(run([prog, '-c', c, 'true'], { env: { PEERUID: '7001' } }).status, 0);
    } finally {
      a.proc.kill('SIGKILL');
    }
    await sleep(100);
  });

  test.after(() => {
    for (const m of mounts) sh(`umount ${m}`);
    cleanup();
  });
  return { dir, conf };
}

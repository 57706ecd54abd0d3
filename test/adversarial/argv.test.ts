// Every program's argv (and the variables a chain hands it), at random:
// each run ends with a documented exit code, a failure is exactly one
// `prog: fatal: ...` line with no stack trace, and nothing is left behind —
// no interface, no /run/netns name, no process (so no lock, fd or namespace
// held), no fd in this test process. A quarter of each program's runs are
// uid 65534 running the setcap'd single executable
// (docs/single-executable.md), with its links on PATH.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): each program parses its argv
// with the same code whether it was exec'd or called in-process; each
// program's own test file runs its chains in both modes.
import { test } from 'uvu';
import fc from 'fast-check';
import { mkdirSync, openSync, realpathSync, symlinkSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { socketpair, close, type Program } from '@netgrant/core';
import { programs } from '../../packages/netgrant/src/programs.js';
import { runWithFds, sh, tempDir, BIN, NODE, NOBODY, type Result } from '../../tools/test/lib/harness.js';
import { hinted, optionWords, params } from '../../tools/test/lib/arbitraries.js';
import { snapshot, leftovers, TAG_ENV } from '../../tools/test/lib/leftovers.js';
import { copyCapable } from '../../tools/test/lib/single-executable.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

// Fixtures the generated options may name: a parent for the launchers, a
// bridge, good and bad configuration files.
sh('ip link add ap0 type veth peer name ap1 && ip addr add 10.40.0.1/24 dev ap0 && ip link set ap0 up && ip link set ap1 up && ip link add br0 type bridge && ip link set br0 up');
function file(name: string, text: string, mode = 0o644, uid = 0): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  chownSync(p, uid, 0);
  return p;
}
const launchConf = file('launch.conf', 'limit 3\n10.40.0.0/24\n');
const acl = file('bridge.conf', 'allow br0\n');
const fifo = join(dir, 'fifo.conf');
sh(`mkfifo -m 0644 ${fifo}`);
symlinkSync(launchConf, join(dir, 'link.conf'));
const fixtures = [launchConf, acl, fifo, join(dir, 'link.conf'), file('open.conf', '10.40.0.0/24\n', 0o666), file('user.conf', '10.40.0.0/24\n', 0o644, NOBODY), join(dir, 'serve.sock'), dir];

// A PATH holding only the toolkit, node and true: a generated word that
// names a program runs one of ours or nothing (127).
// The same through the setcap'd single executable: every program a link to it.
function toolkitPath(name: string, target: (prog: string) => string): string {
  const p = join(dir, name);
  mkdirSync(p);
  for (const prog of programs.keys()) symlinkSync(target(prog), join(p, prog));
  symlinkSync(NODE, join(p, 'node'));
  symlinkSync('/bin/true', join(p, 'true'));
  return p;
}
const pathDir = toolkitPath('bin', (prog) => realpathSync(join(BIN, prog)));
const seaBin = copyCapable(join(dir, 'sea'));
const seaPathDir = toolkitPath('sea-path', (prog) => join(seaBin, prog));

const AS_NOBODY = ['/usr/bin/setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** Exit codes each program documents. */
const DOCUMENTED = [0, 1, 100, 111, 126, 127];
const HELPER_CODES = [0, 1, 126, 127]; // netgrant-bridge-helper: qemu-bridge-helper's contract

/** Why r breaks the failure contract, or null. */
function contractProblem(r: Result, allowed: number[]): string | null {
  if (r.status === null) return `killed by ${r.signal} (a hang or a crash)`;
  if (!allowed.includes(r.status)) return `undocumented exit ${r.status}`;
  if (/^\s+at \S/m.test(r.stderr) || /\b[A-Za-z]*Error\b/.test(r.stderr)) return 'a stack trace or an exception name on stderr';
  const lines = r.stderr.split('\n').slice(0, -1);
  if (r.stderr !== '' && !r.stderr.endsWith('\n')) return 'stderr does not end with a newline';
  const fatal = lines.filter((l) => /^[a-z-]+: fatal: \S/.test(l));
  const other = lines.filter((l) => !/^[a-z-]+: (fatal|warning): \S/.test(l));
  if (other.length) return `a line outside the message format: ${JSON.stringify(other[0])}`;
  if (r.status === 0 && fatal.length) return 'exit 0 with a fatal message';
  if (r.status !== 0 && (fatal.length !== 1 || lines[lines.length - 1] !== fatal[0])) return `expected one fatal line, last; got ${fatal.length}`;
  return null;
}

// Values worth trying, by option name (any program) and by variable name.
const X15 = 'x'.repeat(15);
const X16 = 'x'.repeat(16);
const HINTS: Record<string, string[]> = {
  socket: ['6', '0', '1', '3', '4'], fds: ['3', '5', '3,5', '8,9', '4', '6'], fd: ['3', '5', '7', '4', '6', '5,6'], min: ['0', '1', '2'],
  env: ['A', 'REQNAME', 'PEERUID', 'NODE_OPTIONS', 'A,B'], timeout: ['0', '100', '500'], 'max-size': ['0', '10', '65536'], byte: ['0', '255', '256'],
  user: ['0', '65534', 'nobody', 'root', '4242'], group: ['0', '65534', 'nogroup'], groups: ['', '0', '65534,0'],
  keep: ['', 'net_admin', 'all', 'cap_sys_admin,net_raw', '41'], path: ['/proc/self/ns/net', '/proc/1/ns/net', '/proc/self/ns/user', '/dev/null', fifo, dir],
  target: [String(process.pid), '1', '999999', '0'], name: ['none', 't0', X15, X16, '../x', 'tap%d'], type: ['tap', 'tun', 'tup'],
  queues: ['1', '2', '8', '256', '257', '0'], mtu: ['68', '1500', '67', '65536'], txqueuelen: ['0', '1000'], mac: ['02:00:00:00:00:01', '01:00:00:00:00:00', 'zz'],
  owner: ['0', '65534', 'nobody'], bridge: ['br0', 'nobr0', 'ap0', X16], 'netns-fd': ['4', '3', '6', '99'], 'max-per-peer': ['0', '1', '3'],
  'name-prefix': ['t', 'vm-'], config: [...fixtures, '/etc/shadow', '/nonexistent'], mode: ['l2', 'l3', 'l3s', 'bridge', 'private', 'vepa', 'passthru', '0600'],
  ifname: ['eth0', X16, 'a/b', 'lo'], br: ['br0', 'nobr0', X16], maxconn: ['1', '0', '1001'], backlog: ['1', '0'],
  interval: ['0', '10', '1000', 'x'], 'guest-mac': ['stable', 'random', '02:00:00:00:00:02', '01:00:00:00:00:00'], 'guest-ip': ['10.0.0.2', 'fd00::2', '10.0.0.0/24', 'x'],
  vlan: ['10', '0', '4094', '4095', 'x'], phys: ['lo', X16, 'a/b', 'eth0'],
};
const ENV_HINTS: Record<string, string[]> = {
  PEERUID: ['65534', '0', '4242'], PEERGID: ['65534', '0'], PROTO: ['IPC', 'UNIX', 'ipc'], IPCREMOTEEUID: ['0', '65534'], IPCREMOTEEGID: ['0'],
  REQBRIDGE: ['br0', 'nobr0', X16], ACLBRIDGE: ['br0', 'nobr0'], REQQUEUES: ['1', '2', '300'], REQMTU: ['1400', '70000'], REQNAME: ['t0', 'vm-a', X16],
  REQVNETHDR: ['0', '1', '2'],
  CNI_COMMAND: ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC', 'add', ''], CNI_CONTAINERID: ['c1', '../x', X16], CNI_NETNS: ['/proc/self/ns/net', '/dev/null', '/proc/self/fd/4', ''],
  CNI_IFNAME: ['eth0', X16, 'a/b'], CNI_PATH: ['/usr/lib/cni', ''],
};
const noNul = (s: string) => s.replace(/\0/g, '');
const envArb = fc
  .uniqueArray(fc.constantFrom(...Object.keys(ENV_HINTS)), { maxLength: 5 })
  .chain((names) => fc.tuple(...names.map((n) => hinted(ENV_HINTS[n]!))).map((values) => Object.fromEntries(names.map((n, i) => [n, noNul(values[i]!)]))));
const restArb = fc.constantFrom<string[]>([], ['true'], ['true'], ['no-such-program-x'], ['/dev/null'], [dir], ['', 'x']);

// Options that get a program past its first checks, put first (later generated ones may override them).
const BASE: Record<string, string[]> = {
  'fd-send': ['-s', '6'], 'fd-recv': ['-s', '6'], 'peer-check': ['-s', '6', '-t', '200', '-a'], 'ipc-pair': ['-d', '5'], 'netgrant-serve': ['-t', '100'],
  'mktap': ['-b', 'br0'], 'bridge-acl': ['-c', acl], 'netgrant-bridge-helper': ['--br=br0', '--fd=6'], 'cap-drop': ['-k', 'net_admin'],
  'netns-enter': ['--new'], 'mkipvlan': ['-c', launchConf], 'mkmacvlan': ['-c', launchConf], 'mkveth': ['-c', launchConf], 'netgrant-reap': ['-o'], 'netgrant-dhcpd': ['-v'], 'mkmacvtap': ['-l', 'lo'], 'netgrant-cni': [],
  'mkphys': ['-P', 'lo'],
};
/** Programs whose base options are always given: without them they run for ever (the reaper without -o sweeps until killed). */
const ALWAYS_BASE = new Set(['netgrant-reap']);
/** Its base options (three times in four), then generated ones. */
const wordsFor = (prog: Program) =>
  fc.tuple(fc.constantFrom(true, true, true, false), optionWords(usableOptions(prog), (d) => hinted(HINTS[d.name] ?? [], fixtures))).map(([base, words]) => [...(base || ALWAYS_BASE.has(prog.name) ? BASE[prog.name]! : []), ...words]);

/** A program's options as the generator may use them (mktap --persist is documented to leave a tap). */
const usableOptions = (p: Program) => p.options.filter((o) => !(p.name === 'mktap' && o.name === 'persist'));

const RUNS = Number(process.env.NETGRANT_FC_RUNS ?? 15);
/** Who runs a program: root or uid 65534 through the bundle, or uid 65534 through the setcap'd single executable. */
type Caller = 'root' | 'nobody' | 'sea';

for (const [name, prog] of programs) {
  test(`${name}: random argv and chain variables end in a documented exit, one fatal line, nothing left`, () => {
    // fds a chain may name: 3 /dev/null, 4 this namespace, 6 a socket whose peer is gone.
    const devnull = openSync('/dev/null', 'r');
    const netns = openSync('/proc/self/ns/net', 'r');
    const [gone, sock] = socketpair();
    close(gone);
    try {
      sh('true'); // Node's child-process machinery is set up before the baseline
      const before = snapshot();
      const seen: Record<string, number> = {};
      // Three runs in four by root or uid 65534 through the bundle, the rest by uid 65534 through the single executable.
      const check = (callers: fc.Arbitrary<Caller>, runs: number) => fc.assert(
        fc.property(wordsFor(prog), restArb, envArb, callers, (words, rest, env, caller) => {
          // The helper takes no program after it; ipc-pair takes a block (the server chain) first.
          // The responder, given no program, runs for ever: it always gets one, which it refuses once its options are checked.
          const after = name === 'netgrant-bridge-helper' ? [] : name === 'ipc-pair' ? [' true', '', ...rest] : name === 'netgrant-dhcpd' ? ['true', ...rest] : rest;
          // uid 65534: the failures of a caller without privilege (with the file's capabilities through the single executable).
          const sea = caller === 'sea';
          const argv = [...(caller === 'root' ? [] : AS_NOBODY), sea ? join(seaBin, name) : name, ...words.map(noNul), ...after];
          const r = runWithFds(argv, { 3: devnull, 4: netns, 6: sock }, {
            cwd: dir,
            timeout: 15000,
            env: { ...env, ...TAG_ENV, PATH: sea ? seaPathDir : pathDir, NETGRANT_BRIDGE_SOCKET: join(dir, 'no-service.sock') },
          });
          const key = `${sea ? 'sea ' : ''}${r.status}`;
          seen[key] = (seen[key] ?? 0) + 1;
          const problem = contractProblem(r, name === 'netgrant-bridge-helper' ? HELPER_CODES : DOCUMENTED) ?? leftovers(before);
          if (problem) throw new Error(`${problem}\nargv: ${JSON.stringify(argv)} env: ${JSON.stringify(env)}\nexit ${r.status}, stderr: ${r.stderr}`);
        }),
        params(runs),
      );
      const seaRuns = Math.ceil(RUNS / 4);
      if (RUNS > seaRuns) check(fc.constantFrom<Caller>('root', 'root', 'nobody'), RUNS - seaRuns);
      check(fc.constant<Caller>('sea'), seaRuns);
      console.log(`${name}: exit codes over ${RUNS} runs: ${JSON.stringify(seen)}`);
    } finally {
      [devnull, netns, sock].forEach(close);
    }
  });
}

test.after(() => {
  sh('ip link del ap0; ip link del br0');
  cleanup();
});
test.run();

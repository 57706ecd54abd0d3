// Fault injection with strace: learn the system calls a chain makes, then
// make each of them fail (or SIGKILL the chain on it) one run at a time,
// and check what every run leaves behind.
//
// Only the traced program's main thread is traced (no -f): every
// privileged or namespace-sensitive call of the toolkit runs there
// (DESIGN.md), strace counts `when=N` per traced thread and across exec,
// and processes the chain starts (a shell's subshells) are not hit by
// mistake. Every run checks, from strace's own output, that the call it
// hit is the call the step names.
//
// Node's own start-up opens some files at points that vary with timing
// (V8 reading /proc/self/maps and its executable, /sys/devices/system/cpu/online
// under Node 24), so an openat's number among all openats is not the same
// every run. An openat of a fixed absolute path is therefore pinned with
// `strace -P PATH`, which counts `when=N` over the calls on that path only;
// any other step whose run hits another call is run again (ATTEMPTS).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './harness.js';

/** The system calls steps are made of. Not close (Linux always frees the fd, an injected failure would not). */
export const TRACED = [
  'openat', 'ioctl', 'socket', 'socketpair', 'bind', 'connect', 'accept4', 'sendto', 'sendmsg', 'recvfrom', 'recvmsg',
  'setsockopt', 'getsockopt', 'setns', 'unshare', 'flock', 'capget', 'capset', 'prctl', 'setresuid', 'setresgid',
  'setgroups', 'execve', 'dup2', 'dup3', 'fcntl', 'close_range', 'bpf',
];

/** Realistic errors for each call; a step gets them in turn (the n-th step of a kind the n-th errno). */
const ERRNOS: Record<string, string[]> = {
  openat: ['ENOMEM', 'EMFILE', 'EACCES'],
  ioctl: ['EBUSY', 'EPERM', 'ENOMEM'],
  socket: ['EMFILE', 'ENOBUFS', 'ENOMEM'],
  socketpair: ['EMFILE', 'ENFILE'],
  bind: ['ENOMEM', 'EPERM'],
  connect: ['EAGAIN', 'ECONNREFUSED'],
  accept4: ['EMFILE', 'ENOMEM', 'ECONNABORTED'],
  sendto: ['ENOBUFS', 'EINTR', 'ENOMEM'],
  sendmsg: ['ENOBUFS', 'EPIPE', 'EINTR'],
  recvfrom: ['ENOBUFS', 'EINTR', 'ENOMEM'],
  recvmsg: ['ECONNRESET', 'EINTR', 'ENOMEM'],
  setsockopt: ['ENOMEM', 'ENOPROTOOPT'],
  getsockopt: ['ENOBUFS', 'ENOPROTOOPT'],
  setns: ['EPERM', 'ENOMEM', 'EINVAL'],
  unshare: ['ENOMEM', 'ENOSPC', 'EPERM'],
  flock: ['EINTR', 'ENOLCK'],
  capget: ['EPERM', 'EINVAL'],
  capset: ['EPERM', 'EINVAL'],
  prctl: ['EPERM', 'EINVAL'],
  setresuid: ['EAGAIN', 'EPERM'],
  setresgid: ['EPERM', 'EINVAL'],
  setgroups: ['EPERM', 'ENOMEM'],
  execve: ['ENOMEM', 'EACCES', 'E2BIG'],
  dup2: ['EMFILE', 'EBUSY'],
  dup3: ['EMFILE', 'EBUSY'],
  fcntl: ['EMFILE', 'EINVAL'],
  close_range: ['ENOMEM', 'EINVAL'],
  bpf: ['ENOMEM', 'EPERM', 'E2BIG'],
};

export interface Step {
  syscall: string;
  /** The n-th call of this system call by the traced thread (strace's when=n). */
  nth: number;
  /** What kind of call: the system call and its telling argument (a path, an ioctl, a family, a fcntl command). */
  kind: string;
  line: string;
  /** An openat of a fixed absolute path: the path, and the n-th openat of it (counted alone under `strace -P`). */
  path?: { name: string; nth: number };
}

/** Runs of one step before a hit on another call (Node's varying start-up calls) counts as a failure. */
const ATTEMPTS = 4;

export interface Outcome {
  status: number | null;
  signal: string | null;
  /** The chain's messages (stderr, or a server's log lines of that connection). */
  stderr: string;
  stdout: string;
  /** Anything the target itself found wrong during the run (a resident server died, its fds grew). */
  problems?: string[];
}

export interface Target {
  name: string;
  /** Run the scenario once with `strace` (an argv prefix, [] for none) in front of the traced program. */
  run(strace: string[]): Promise<Outcome>;
  /** What is wrong with a run that succeeded (the resource, the fds the next program got), or null. */
  checkOk(o: Outcome): string | null;
  /**
   * What a run that ended left behind that it must not have (links, locks, processes), or null.
   * After a kill at `step`, a target may allow (and remove) what is documented to survive one
   * (no step: after the recording run).
   */
  leftovers(after: 'fault' | 'kill', step: Step | undefined, steps: Step[], o: Outcome): string | null;
  /** Where the chain's own calls start in the trace (default: the toolkit bundle is opened). */
  regionStart?: RegExp;
  /** Where they end (default: a successful execve — the next program, or the next link's Node start). */
  regionEnd?: RegExp;
  /** Only the first region counts (a server's first connection), not every one (each exec'd link). */
  firstRegionOnly?: boolean;
  /** Programs allowed to sign the failure line. */
  programs: string[];
  /** Steps whose call depends on timing (an event loop's extra wakeup), so a run may not reach them. */
  mayMiss?: (step: Step) => boolean;
}

export interface Report {
  target: string;
  steps: number;
  kinds: number;
  runs: number;
  /** Runs whose chain got past the fault and succeeded. */
  tolerated: number;
  /** Runs that never reached a timing-dependent step (Target.mayMiss). */
  missed: number;
  /** Runs repeated because strace hit another call than the step's (Node's own varying calls shifted the count). */
  retried: number;
  failures: string[];
}

const LINE_RE = /^([a-z0-9_]+)\((.*)\)\s+=\s+(.*)$/;

function kindOf(syscall: string, args: string): string {
  // A call the thread was killed in is printed unfinished.
  const a = args.replace(/ <unfinished \.\.\.>$/, '').split(', ');
  switch (syscall) {
    case 'openat': return `openat ${(a[1] ?? '').replace(/\d+/g, 'N')}`;
    case 'ioctl': return `ioctl ${/^[A-Z_0-9]+$/.test(a[1] ?? '') ? a[1] : 'other'}`;
    case 'socket': return `socket ${a[0]}`;
    case 'fcntl': return `fcntl ${a[1]}`;
    case 'setsockopt': case 'getsockopt': return `${syscall} ${a[2]}`;
    case 'prctl': return `prctl ${a[0]}`;
    case 'setns': return `setns ${a[1]}`;
    case 'execve': return `execve ${a[0]}`;
    default: return syscall;
  }
}

/** The path of `openat(AT_FDCWD, "/abs/path", ...)` when it names the same file every run, else undefined. */
function fixedPath(syscall: string, args: string): string | undefined {
  if (syscall !== 'openat') return undefined;
  const m = /^AT_FDCWD, "(\/[^"\\]*)",/.exec(args);
  // Not /proc/PID/...: pids differ between runs. (/proc/self/... is fine: strace -P matches the path as the call names it.)
  return m && !/^\/proc\/\d/.test(m[1]!) ? m[1] : undefined;
}

/** Every traced call of the thread, in order, numbered per system call (and per fixed path). */
function parseTrace(text: string): { step: Step; line: string }[] {
  const counts = new Map<string, number>();
  const out: { step: Step; line: string }[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const m = LINE_RE.exec(line);
    if (!m) continue;
    const syscall = m[1]!;
    // strace starts the program with this execve and never sees its entry: it does not count.
    if (i === 0 && syscall === 'execve') continue;
    const nth = (counts.get(syscall) ?? 0) + 1;
    counts.set(syscall, nth);
    const step: Step = { syscall, nth, kind: kindOf(syscall, m[2]!), line: line.slice(0, 160) };
    const path = fixedPath(syscall, m[2]!);
    if (path) {
      const n = (counts.get(`path ${path}`) ?? 0) + 1;
      counts.set(`path ${path}`, n);
      step.path = { name: path, nth: n };
    }
    out.push({ step, line });
  }
  return out;
}

/**
 * Node's own calls that its threads make on the main thread at moments that
 * depend on timing (V8 sizing its worker pool, reading the TSC frequency):
 * counted, as strace counts them, but not steps — a run may not make them.
 */
const RUNTIME_KINDS = /^openat "\/sys\/devices\/system\/cpu\//;

const DEFAULT_START = /^openat\(.*\/dist\/netgrant\.cjs"/;
const DEFAULT_END = /^execve\(.*\)\s+=\s+0$/;

function straceArgs(out: string, trace: string[], extra: string[] = []): string[] {
  // -s 4096: an openat's whole path, for -P.
  return ['strace', '-qq', '-s', '4096', '-e', 'verbose=none', '-o', out, '-e', `trace=${trace.join(',')}`, ...extra];
}

/** Run the target once under strace and return the steps of the chain's own calls. */
export async function recordSteps(t: Target): Promise<{ steps: Step[]; outcome: Outcome }> {
  const { dir, cleanup } = tempDir('netgrant-faults-');
  try {
    const file = join(dir, 'trace');
    const outcome = await t.run(straceArgs(file, TRACED));
    const start = t.regionStart ?? DEFAULT_START;
    const end = t.regionEnd ?? DEFAULT_END;
    const steps: Step[] = [];
    let inside = false;
    let regions = 0;
    for (const { step, line } of parseTrace(readFileSync(file, 'utf8'))) {
      if (!inside && start.test(line) && !(t.firstRegionOnly && regions > 0)) (inside = true), regions++;
      else if (inside) {
        if (!RUNTIME_KINDS.test(step.kind)) steps.push(step);
        if (end.test(line)) inside = false;
      }
    }
    return { steps, outcome };
  } finally {
    cleanup();
  }
}

/**
 * Every step when there are at most `max`; otherwise the first of each kind
 * and then evenly spread others up to `max`. Every kind is always in.
 */
export function sample(steps: Step[], max: number): Step[] {
  if (steps.length <= max) return steps;
  const chosen = new Set<Step>();
  const seen = new Set<string>();
  for (const s of steps) if (!seen.has(s.kind)) (seen.add(s.kind), chosen.add(s));
  const rest = steps.filter((s) => !chosen.has(s));
  const room = Math.max(0, max - chosen.size);
  for (let i = 0; i < room && rest.length; i++) chosen.add(rest[Math.floor((i * rest.length) / room)]!);
  return steps.filter((s) => chosen.has(s));
}

/** The failure contract for a run that failed at `step` with `errno`. */
function checkFailure(t: Target, o: Outcome, step: Step, errno: string): string | null {
  const lines = o.stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1) return `exit ${o.status}; expected one message line, got ${JSON.stringify(o.stderr)}`;
  const m = /^([a-z0-9-]+): fatal: (.*)$/.exec(lines[0]!);
  if (!m || !t.programs.includes(m[1]!)) return `not a "prog: fatal: ..." line of ${t.programs.join('/')}: ${lines[0]}`;
  // 126 when the next program could not be run (exec, or getting its fds ready), 111 for any other call.
  const expected = step.syscall === 'execve' || m[2]!.startsWith('unable to exec ') ? 126 : 111;
  if (o.status !== expected) return `exit ${o.status} (signal ${o.signal}), expected ${expected}: ${lines[0]}`;
  // koffi's loader does not pass on why its native module failed to load.
  if (!lines[0]!.includes(`(${errno})`) && !m[2]!.startsWith('load the toolkit: ')) return `the message does not name ${errno}: ${lines[0]}`;
  return null;
}

/** The kind of call strace hit (failed, or killed the thread in), from its own trace of that system call alone. */
function hitCall(file: string): { kind: string; line: string } | undefined {
  if (!existsSync(file)) return undefined; // strace never ran (the problem shows in the outcome)
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = LINE_RE.exec(line);
    if (m && (line.endsWith('(INJECTED)') || m[3] === '?')) return { kind: kindOf(m[1]!, m[2]!), line };
  }
  return undefined;
}

function nearestOfKind(steps: Step[], step: Step, kind: string): Step | undefined {
  const at = steps.indexOf(step);
  let best = -1;
  for (const [i, s] of steps.entries()) if (s.kind === kind && (best < 0 || Math.abs(i - at) < Math.abs(best - at))) best = i;
  return steps[best];
}

/** Run `steps` (a sample of the recording `all`, which the targets' leftovers checks see whole). */
async function eachStep(t: Target, steps: Step[], all: Step[], what: 'fault' | 'kill', report: Report): Promise<void> {
  const { dir, cleanup } = tempDir('netgrant-faults-');
  const perKind = new Map<string, number>();
  try {
    for (const step of steps) {
      const n = perKind.get(step.kind) ?? 0;
      perKind.set(step.kind, n + 1);
      const errnos = ERRNOS[step.syscall] ?? ['EIO'];
      const errno = errnos[n % errnos.length]!;
      const action = what === 'fault' ? `error=${errno}` : 'signal=KILL';
      const label = `${t.name}: ${what === 'fault' ? errno : 'SIGKILL'} at ${step.syscall} #${step.nth} [${step.kind}]`;
      const when = step.path ? ['-P', step.path.name, '-e', `inject=openat:${action}:when=${step.path.nth}`] : ['-e', `inject=${step.syscall}:${action}:when=${step.nth}`];
      const problems: string[] = [];
      let o: Outcome | undefined;
      let wrongHit = '';
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const file = join(dir, `t${report.runs}.${attempt}`);
        o = await t.run(straceArgs(file, [step.syscall], when));
        const hit = hitCall(file);
        rmSync(file, { force: true });
        if (!hit && t.mayMiss?.(step)) report.missed++;
        else if (!hit) wrongHit = `strace hit no call (the run went another way than the recording; exit ${o.status}: ${o.stderr.trim()})`;
        else if (hit.kind !== step.kind) wrongHit = `strace hit another kind of call: ${hit.line.slice(0, 160)}`;
        else wrongHit = '';
        if (!wrongHit) break;
        // Whatever call it hit, the run must have left nothing but what a
        // fault at that call may leave (the recorded step of its kind nearest
        // this one; none when it is not the chain's own call).
        const near = hit ? nearestOfKind(all, step, hit.kind) : undefined;
        const left = t.leftovers(what, near, all, o);
        if (left) problems.push(`left behind (attempt ${attempt}, ${wrongHit}): ${left}`);
        if (attempt < ATTEMPTS) report.retried++;
      }
      if (!o) throw new Error('no run');
      // strace -P /proc/self/... says on stderr which path it also watches; that line is strace's, not the chain's.
      o.stderr = o.stderr.replace(/^strace: Requested path .*\n/gm, '');
      report.runs++;
      problems.push(...(o.problems ?? []));
      if (wrongHit) problems.push(`in ${ATTEMPTS} runs: ${wrongHit}`);
      if (what === 'fault') {
        if (o.status === 0) {
          report.tolerated++;
          const bad = t.checkOk(o);
          if (bad) problems.push(`went on after the fault, but: ${bad}`);
        } else {
          const bad = checkFailure(t, o, step, errno);
          if (bad) problems.push(bad);
        }
      } else if (o.status === 0) {
        const bad = t.checkOk(o);
        if (bad) problems.push(`survived the kill, but: ${bad}`);
      }
      const left = t.leftovers(what, step, all, o);
      if (left) problems.push(`left behind: ${left}`);
      const next = await t.run([]);
      const nextBad = next.status === 0 ? t.checkOk(next) : `exit ${next.status}: ${next.stderr.trim()}`;
      if (nextBad) problems.push(`the next request failed: ${nextBad}`);
      const nextLeft = t.leftovers('fault', step, all, next);
      if (nextLeft) problems.push(`the next request left behind: ${nextLeft}`);
      if (problems.length) report.failures.push(`${label}: ${problems.join('; ')}`);
    }
  } finally {
    cleanup();
  }
}

/**
 * Fail each step in turn (at most `max` steps, sampled; only those `only`
 * keeps: it sees each step's place in the whole recording), then SIGKILL
 * the chain at each.
 */
/**
 * NETGRANT_FAULT_SCALE (0 < x <= 1, default 1): of the sampled steps (one
 * of every kind of call, and more spread evenly up to the file's number),
 * a share x of them, spread evenly, at least 12. CI's maintenance Node
 * lines run 0.34: a third of the steps the main line fails, every third
 * one (docs/testing.md).
 */
function scaled(steps: Step[]): Step[] {
  const text = process.env.NETGRANT_FAULT_SCALE;
  if (text === undefined || text === '') return steps;
  const x = Number(text);
  if (!(x > 0 && x <= 1)) throw new Error(`NETGRANT_FAULT_SCALE must be a number in (0, 1], not ${JSON.stringify(text)}`);
  const n = Math.min(steps.length, Math.max(12, Math.ceil(steps.length * x)));
  return Array.from({ length: n }, (_, i) => steps[Math.floor((i * steps.length) / n)]!);
}

export async function injectEverywhere(t: Target, max = 60, only: (s: Step, i: number, all: Step[]) => boolean = () => true, opts: { kills?: boolean } = {}): Promise<{ faults: Report; kills: Report }> {
  const { steps: all, outcome } = await recordSteps(t);
  const base = { target: t.name, steps: all.length, kinds: new Set(all.map((s) => s.kind)).size, runs: 0, tolerated: 0, missed: 0, retried: 0 };
  const faults: Report = { ...base, failures: [] };
  const kills: Report = { ...base, failures: [] };
  const bad = (outcome.status === 0 ? t.checkOk(outcome) : `exit ${outcome.status}: ${outcome.stderr}`) ?? t.leftovers('fault', undefined, all, outcome);
  if (bad || all.length === 0) {
    faults.failures.push(`${t.name}: the recording run failed or made no call: ${bad ?? 'no steps'}`);
    return { faults, kills };
  }
  const steps = scaled(sample(all.filter(only), max));
  await eachStep(t, steps, all, 'fault', faults);
  if (opts.kills !== false) await eachStep(t, steps, all, 'kill', kills);
  return { faults, kills };
}

/** strace's text of a buffer (its C escapes) as bytes, up to n of them. */
function straceBytes(text: string, n: number): number[] {
  const out: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, '\\': 92, '"': 34 };
  for (let i = 0; i < text.length && out.length < n; i++) {
    if (text[i] !== '\\') out.push(text.charCodeAt(i));
    else if (/[0-7]/.test(text[i + 1] ?? '')) {
      const m = /^[0-7]{1,3}/.exec(text.slice(i + 1))![0];
      out.push(parseInt(m, 8));
      i += m.length;
    } else out.push(simple[text[++i]!] ?? 0);
  }
  return out;
}

/**
 * The netlink message a `sendto` step sends: its type (RTM_NEWLINK 16,
 * RTM_DELLINK 17, RTM_GETLINK 18, ...) and flags (NLM_F_CREATE 0x400), from
 * the header at the start of the buffer strace printed; undefined for any
 * other step. How a target picks the requests of one path among a chain's.
 */
export function netlinkRequest(s: Step): { type: number; flags: number } | undefined {
  const m = /^sendto\([0-9]+, "((?:[^"\\]|\\.)*)/.exec(s.line);
  if (!m) return undefined;
  const b = straceBytes(m[1]!, 8);
  return b.length === 8 ? { type: b[4]! | (b[5]! << 8), flags: b[6]! | (b[7]! << 8) } : undefined;
}

/** One line of figures for a report (printed by the tests, quoted in docs/reliability.md). */
export function figures(r: { faults: Report; kills: Report }): string {
  const f = r.faults;
  const missed = f.missed + r.kills.missed;
  const retried = f.retried + r.kills.retried;
  return `${f.target}: ${f.steps} steps of ${f.kinds} kinds; ${f.runs} faults (${f.tolerated} tolerated), ${r.kills.runs} kills${missed ? ` (${missed} runs did not reach a timing-dependent step)` : ''}${retried ? `, ${retried} runs repeated after hitting another call` : ''}; ${f.failures.length + r.kills.failures.length} failed`;
}

// The chain runtime: parse a link's options, run it, then go on with the
// rest of argv: exit 0 when nothing is left; run it in this process when it
// resolves (through PATH, as exec would) to one of netgrant's own programs;
// exec it otherwise, and always after a link that dropped privileges. Every
// failure becomes one line on stderr and the documented exit code; no stack
// trace reaches a user.
import { DeniedError, InputError, SysError, UsageError } from '../errors.js';
import { exec, exitNow, rawArgs } from '../exec.js';
import { parseOptions, type OptionDef, type OptionValues } from './options.js';
import { say } from './output.js';
import { processEnv, type Env } from './env.js';
import { HandOn } from './handon.js';
import { runtimeFdsClobbered, snapshotStartFds } from './startfds.js';
import { processFds } from './processfds.js';
import type { FdSpace } from './fdargs.js';

export const EXIT_DENIED = 1;
export const EXIT_USAGE = 100;
export const EXIT_INTERNAL = 101;
export const EXIT_SYSCALL = 111;
export const EXIT_EXEC = 126;
export const EXIT_NOTFOUND = 127;

/** What a running link sees and changes. */
export interface Chain {
  /** The program name, for messages. */
  readonly name: string;
  /** The next program and its arguments (byte-exact); a link may replace it. */
  rest: Buffer[];
  /** The environment (reads and writes reach the next program). */
  readonly env: Env;
  /** The fds named on the command line, placing and handing on fds, waiting. */
  readonly fds: FdSpace;
  /** One warning line on stderr. */
  warn(msg: string): void;
  /** Finds our own programs (for links that run others, like the resident server). */
  readonly resolveOwn?: OwnProgramResolver;
}

/** A chain link: one netgrant program. */
export interface Program {
  readonly name: string;
  /** The synopsis after the name, for usage messages. */
  readonly usage: string;
  readonly options: readonly OptionDef[];
  /**
   * The link lowers privileges (uid, capabilities, no_new_privs): the next
   * program must start with a real exec so the kernel recomputes them.
   */
  readonly dropsPrivileges?: boolean;
  /**
   * Present if the link may run inside the resident server (it changes no
   * process state: no namespace, credential or signal change). Returns why
   * these options are not allowed there, or null.
   */
  readonly resident?: (opts: OptionValues) => string | null;
  /** Exit codes other than the toolkit's (a drop-in for another program's contract). */
  readonly exitCodes?: Partial<Record<'usage' | 'denied' | 'syscall' | 'internal', number>>;
  run(chain: Chain, opts: OptionValues): void | Promise<void>;
}

/** Finds the netgrant program argv[0] would exec, if it is one of ours. */
export type OwnProgramResolver = (word: Buffer) => Program | undefined;

/** Node's own failed system calls (readFileSync: ENOMEM) are failed system calls like ours. */
function nodeSysError(e: unknown): SysError | undefined {
  const n = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || e instanceof SysError || typeof n.errno !== 'number' || typeof n.syscall !== 'string') return undefined;
  return new SysError(n.path === undefined ? n.syscall : `${n.syscall} ${n.path}`, -n.errno);
}

/** The exit code for an error a link threw. */
export function exitCodeFor(err: unknown, prog?: Program): number {
  const e = nodeSysError(err) ?? err;
  const codes = prog?.exitCodes ?? {};
  if (e instanceof UsageError || e instanceof InputError) return codes.usage ?? EXIT_USAGE;
  if (e instanceof DeniedError) return codes.denied ?? EXIT_DENIED;
  if (e instanceof SysError) return codes.syscall ?? EXIT_SYSCALL;
  return codes.internal ?? EXIT_INTERNAL;
}

/** The one-line message for an error a link threw. */
export function messageFor(prog: Program, err: unknown): string {
  const e = nodeSysError(err) ?? err;
  if (e instanceof UsageError) return `${e.message} (usage: ${prog.name} ${prog.usage})`;
  if (e instanceof InputError || e instanceof DeniedError || e instanceof SysError) return e.message;
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

/** Exec the next program; exits 0 if there is none, 126/127 if exec fails. */
export function execNext(name: string, rest: readonly Buffer[], keepFds: readonly number[]): never {
  if (rest.length === 0) exitNow(0);
  try {
    exec(rest, { keepFds });
  } catch (e) {
    const notFound = e instanceof SysError && e.code === 'ENOENT';
    say(name, 'fatal', `unable to exec ${rest[0]!.toString()}: ${e instanceof SysError ? e.message.slice(e.what.length + 2) : String(e)}`);
    exitNow(notFound ? EXIT_NOTFOUND : EXIT_EXEC);
  }
}

/**
 * Run prog on argv (default: this process's arguments), then the rest of
 * the chain. `resolveOwn` enables in-process chaining; the environment
 * variable NETGRANT_EXEC_ONLY=1 turns it off (every link a real exec).
 */
export async function runProgram(prog: Program, argv?: readonly Buffer[], resolveOwn?: OwnProgramResolver): Promise<never> {
  let current = prog;
  const die = (e: unknown): never => {
    say(current.name, 'fatal', messageFor(current, e));
    exitNow(exitCodeFor(e, current));
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
  const handOn = new HandOn();
  const fds = processFds(handOn);
  const inProcess = resolveOwn !== undefined && processEnv.get('NETGRANT_EXEC_ONLY') !== '1';
  let words: readonly Buffer[];
  try {
    snapshotStartFds(); // rethrows a failure to take it at load
    words = argv ?? rawArgs();
  } catch (e) {
    return die(e);
  }
  for (;;) {
    let rest: Buffer[];
    try {
      const parsed = parseOptions(words, current.options);
      const chain: Chain = {
        name: current.name,
        rest: parsed.rest,
        env: processEnv,
        fds,
        warn: (msg) => say(current.name, 'warning', msg),
        resolveOwn,
      };
      await current.run(chain, parsed.opts);
      rest = chain.rest;
    } catch (e) {
      return die(e);
    }
    // In-process only while the event loop is intact (a link may have placed
    // fds over Node's own) and never after a privilege drop.
    const next = inProcess && !current.dropsPrivileges && !runtimeFdsClobbered() && rest.length > 0 ? resolveOwn(rest[0]!) : undefined;
    if (!next) return execNext(current.name, rest, handOn.current());
    current = next;
    words = rest.slice(1);
  }
}

/** A link of a chain run in-process failed. */
export class LinkError extends Error {
  constructor(
    readonly prog: Program,
    readonly error: unknown,
  ) {
    super(messageFor(prog, error));
    this.name = 'LinkError';
  }
}

/** A resident chain, checked and resolved once, before serving: its words, each link's program and where its words start. */
export interface ResidentChain {
  readonly argv: readonly Buffer[];
  readonly links: readonly { prog: Program; at: number }[];
}

/**
 * Check, before serving anything, that argv is a chain the resident server
 * can run: every word that starts a link resolves to one of our programs
 * that allows resident use with these options, and the chain ends without a
 * program to exec. Throws UsageError otherwise. The programs found here are
 * the ones every connection runs: nothing is resolved through PATH again,
 * so a change in PATH's directories while the server runs can neither swap
 * a checked link for another program nor cost each connection the lookups.
 */
export function checkResidentChain(argv: readonly Buffer[], resolveOwn: OwnProgramResolver): ResidentChain {
  let words = argv;
  const links: { prog: Program; at: number }[] = [];
  while (words.length > 0) {
    const word = words[0]!.toString();
    const prog = resolveOwn(words[0]!);
    if (!prog) throw new UsageError(`${word}: not a netgrant program; the resident server runs only netgrant links and execs nothing`);
    if (!prog.resident) throw new UsageError(`${word} changes process state or execs: not allowed in the resident server`);
    const parsed = parseOptions(words.slice(1), prog.options);
    const why = prog.resident(parsed.opts);
    if (why) throw new UsageError(`${word}: ${why}`);
    links.push({ prog, at: argv.length - words.length });
    words = parsed.rest;
  }
  if (links.length === 0) throw new UsageError('no chain to serve');
  return { argv, links };
}

/**
 * Run a checked resident chain in this process with its own environment
 * and fds. Throws LinkError naming the link that failed.
 */
export async function runResidentChain(resident: ResidentChain, env: Env, fds: FdSpace, warn: (prog: string, msg: string) => void): Promise<void> {
  let words = resident.argv;
  for (const { prog, at } of resident.links) {
    // Each link starts where the check found it (a link hands on the words after its options).
    if (words.length !== resident.argv.length - at) throw new Error(`the chain reached ${prog.name} at word ${resident.argv.length - words.length}, not ${at} as checked`);
    try {
      const parsed = parseOptions(words.slice(1), prog.options);
      const chain: Chain = { name: prog.name, rest: parsed.rest, env, fds, warn: (msg) => warn(prog.name, msg) };
      await prog.run(chain, parsed.opts);
      words = chain.rest;
    } catch (e) {
      throw new LinkError(prog, e);
    }
  }
  if (words.length > 0) throw new Error(`the chain has ${words.length} words left after its last link`);
}

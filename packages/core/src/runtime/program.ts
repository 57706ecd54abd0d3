// The chain runtime: parse a link's options, run it, then exec the rest of
// argv (or exit 0 when nothing is left). Every failure becomes one line on
// stderr and the documented exit code; no stack trace reaches a user.
import { DeniedError, InputError, SysError, UsageError } from '../errors.js';
import { exec, rawArgs } from '../exec.js';
import { parseOptions, type OptionDef, type OptionValues } from './options.js';
import { say } from './output.js';
import { processEnv, type Env } from './env.js';
import { snapshotStartFds, inheritedFdsStillOpen } from './startfds.js';

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
  /** Hand fd on to the next program (its close-on-exec flag is cleared at exec). */
  keep(fd: number): void;
  /** One warning line on stderr. */
  warn(msg: string): void;
}

/** A chain link: one netgrant program. */
export interface Program {
  readonly name: string;
  /** The synopsis after the name, for usage messages. */
  readonly usage: string;
  readonly options: readonly OptionDef[];
  run(chain: Chain, opts: OptionValues): void | Promise<void>;
}

/** The exit code for an error a link threw. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError || e instanceof InputError) return EXIT_USAGE;
  if (e instanceof DeniedError) return EXIT_DENIED;
  if (e instanceof SysError) return EXIT_SYSCALL;
  return EXIT_INTERNAL;
}

/** The one-line message for an error a link threw. */
export function messageFor(prog: Program, e: unknown): string {
  if (e instanceof UsageError) return `${e.message} (usage: ${prog.name} ${prog.usage})`;
  if (e instanceof InputError || e instanceof DeniedError || e instanceof SysError) return e.message;
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

function die(prog: Program, e: unknown): never {
  say(prog.name, 'fatal', messageFor(prog, e));
  process.exit(exitCodeFor(e));
}

/** Exec the next program; exits 0 if there is none, 126/127 if exec fails. */
export function execNext(name: string, rest: readonly Buffer[], keepFds: readonly number[]): never {
  if (rest.length === 0) process.exit(0);
  try {
    exec(rest, { keepFds });
  } catch (e) {
    const notFound = e instanceof SysError && e.code === 'ENOENT';
    say(name, 'fatal', `unable to exec ${rest[0]!.toString()}: ${e instanceof SysError ? e.message.slice(e.what.length + 2) : String(e)}`);
    process.exit(notFound ? EXIT_NOTFOUND : EXIT_EXEC);
  }
}

/** Run one link on argv (default: this process's arguments), then exec the rest. */
export async function runProgram(prog: Program, argv: readonly Buffer[] = rawArgs()): Promise<never> {
  const onFatal = (e: unknown): never => die(prog, e);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  const kept = new Set<number>();
  let chain: Chain;
  try {
    snapshotStartFds();
    const { opts, rest } = parseOptions(argv, prog.options);
    chain = {
      name: prog.name,
      rest,
      env: processEnv,
      keep: (fd) => void kept.add(fd),
      warn: (msg) => say(prog.name, 'warning', msg),
    };
    await prog.run(chain, opts);
  } catch (e) {
    die(prog, e);
  }
  return execNext(prog.name, chain.rest, [...new Set([...inheritedFdsStillOpen(), ...kept])]);
}

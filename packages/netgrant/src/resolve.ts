// In-process chaining: find which program exec would run for a word, the
// way execvp searches PATH, and whether it is one of this bundle's own entry
// points (compared by real path, so symlinked installs match). realpath(3)
// itself (realpathSync.native): the JS realpathSync costs ~10x more per
// call, and a chain resolves every link (docs/perf.md).
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { OwnProgramResolver, Program } from '@netgrant/core';

/** The file execvp would run for word, or undefined if none. */
export function whichExec(word: string, path = process.env.PATH ?? '/bin:/usr/bin'): string | undefined {
  if (word === '') return undefined;
  if (word.includes('/')) return word;
  for (const dir of path.split(':')) {
    const candidate = join(dir === '' ? '.' : dir, word);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** The real path of the file exec would run for word, or undefined (none, or not UTF-8: left to exec). */
function execTarget(word: Buffer): string | undefined {
  const w = word.toString();
  if (!Buffer.from(w).equals(word)) return undefined;
  const file = whichExec(w);
  if (!file) return undefined;
  try {
    return realpathSync.native(file);
  } catch {
    return undefined;
  }
}

export function ownProgramResolver(programs: ReadonlyMap<string, Program>, binDir: string): OwnProgramResolver {
  const own = new Map<string, Program>();
  for (const [name, prog] of programs) {
    try {
      own.set(realpathSync.native(join(binDir, name)), prog);
    } catch {
      /* entry point missing: that program is always exec'd */
    }
  }
  return (word) => {
    const target = execTarget(word);
    return target === undefined ? undefined : own.get(target);
  };
}

/**
 * The single executable's resolver: a word exec would run as this very
 * executable (a link to it, by real path) is the program its name names,
 * as it would be after the exec.
 */
export function singleExecutableResolver(programs: ReadonlyMap<string, Program>, executable: string): OwnProgramResolver {
  const self = realpathSync.native(executable);
  return (word) => (execTarget(word) === self ? programs.get(basename(word.toString())) : undefined);
}

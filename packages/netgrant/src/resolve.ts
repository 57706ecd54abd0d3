// In-process chaining: find which program exec would run for a word, the
// way execvp searches PATH, and whether it is one of this bundle's own entry
// points (compared by real path, so symlinked installs match). realpath(3)
// itself (realpathSync.native): the JS realpathSync costs ~10x more per
// call, and a chain resolves every link (docs/perf.md).
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
    const w = word.toString();
    if (!Buffer.from(w).equals(word)) return undefined; // not UTF-8: leave it to exec
    const file = whichExec(w);
    if (!file) return undefined;
    try {
      return own.get(realpathSync.native(file));
    } catch {
      return undefined;
    }
  };
}

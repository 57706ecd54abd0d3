// Option parsing for chain links, skarnet style: options end at the first
// non-option word or at `--`; nothing after that is ever looked at, so the
// next program's options are never consumed. A small scanner finds the
// option words (it knows which options take values) and rewrites each as
// `--name=value` / `--name`; minimist maps those to the result object. This
// keeps minimist's quirks (a boolean eating a following `true`, `--`
// anywhere in argv) away from the next program's argv.
import minimist from 'minimist';
import { UsageError } from '../errors.js';

export interface OptionDef {
  /** Long name, used as the key of the result: "sock". */
  name: string;
  /** Single-letter alias: "s". */
  short?: string;
  /** Takes a value (else it is a flag). */
  value?: boolean;
  /** May repeat; the result is an array of every value given. */
  multi?: boolean;
}

export type OptionValues = Record<string, string | string[] | boolean | undefined>;

export interface Parsed {
  opts: OptionValues;
  /** The next program and its arguments, byte-exact. */
  rest: Buffer[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeWord(w: Buffer): string {
  try {
    return utf8.decode(w);
  } catch {
    throw new UsageError('option word is not valid UTF-8');
  }
}

/** Parse the leading options of argv against defs. */
export function parseOptions(argv: readonly Buffer[], defs: readonly OptionDef[]): Parsed {
  const byLong = new Map(defs.map((d) => [d.name, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short!, d]));
  const canonical: string[] = [];
  let i = 0;
  const take = (d: OptionDef, display: string, attached: string | undefined): void => {
    if (!d.value) {
      if (attached !== undefined) throw new UsageError(`option ${display} takes no value`);
      canonical.push(`--${d.name}`);
      return;
    }
    let v = attached;
    if (v === undefined) {
      i++;
      if (i >= argv.length) throw new UsageError(`option ${display} requires a value`);
      v = decodeWord(argv[i]!);
    }
    canonical.push(`--${d.name}=${v}`);
  };
  for (; i < argv.length; i++) {
    const raw = argv[i]!;
    if (raw.length < 2 || raw[0] !== 0x2d /* - */) break;
    const word = decodeWord(raw);
    if (word === '--') {
      i++;
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
      const d = byLong.get(name);
      if (!d) throw new UsageError(`unknown option --${name}`);
      take(d, `--${name}`, eq === -1 ? undefined : word.slice(eq + 1));
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const c = word[j]!;
      const d = byShort.get(c);
      if (!d) throw new UsageError(`unknown option -${c}`);
      if (d.value) {
        take(d, `-${c}`, j + 1 < word.length ? word.slice(j + 1) : undefined);
        break;
      }
      take(d, `-${c}`, undefined);
    }
  }
  const parsed = minimist(canonical, {
    string: defs.filter((d) => d.value).map((d) => d.name),
    boolean: defs.filter((d) => !d.value).map((d) => d.name),
  });
  const opts: OptionValues = {};
  for (const d of defs) {
    const v = parsed[d.name] as string | string[] | boolean | undefined;
    if (d.value) {
      if (v === undefined) continue;
      const list = Array.isArray(v) ? v : [v as string];
      opts[d.name] = d.multi ? list : list[list.length - 1];
    } else {
      opts[d.name] = v === true;
    }
  }
  return { opts, rest: argv.slice(i) };
}

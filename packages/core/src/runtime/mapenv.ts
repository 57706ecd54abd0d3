// An environment of its own (the resident server gives each connection
// one): a copy of a base, changed without touching the process's environ.
import type { Env } from './env.js';

export function mapEnv(base: Record<string, string | undefined>): Env & { entries(): [string, string][] } {
  const vars = new Map<string, string>();
  for (const [k, v] of Object.entries(base)) if (v !== undefined) vars.set(k, v);
  return {
    get: (name) => vars.get(name),
    set: (name, value) => {
      if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) throw new TypeError(`invalid environment variable ${JSON.stringify(name)}`);
      vars.set(name, value);
    },
    unset: (name) => void vars.delete(name),
    entries: () => [...vars],
  };
}

// The environment a link reads and writes. Backed by process.env, whose
// writes reach libc's environ, so exec passes untouched variables byte-exact.
import { InputError } from '../errors.js';

export interface Env {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  unset(name: string): void;
}

export const processEnv: Env = {
  get: (name) => process.env[name],
  set: (name, value) => {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new TypeError(`invalid environment variable ${JSON.stringify(name)}`);
    }
    process.env[name] = value;
  },
  unset: (name) => {
    delete process.env[name];
  },
};

const ID_RE = /^[0-9]{1,10}$/;

/**
 * A uid or gid peer-check exported (PEERUID, PEERGID): undefined if unset,
 * else a decimal 0..2^32-2 ((uid_t)-1 means "no change" to the kernel) or
 * an InputError.
 */
export function peerId(env: Env, name: string): number | undefined {
  const v = env.get(name);
  if (v === undefined) return undefined;
  if (!ID_RE.test(v) || Number(v) > 0xfffffffe) throw new InputError(`${name} has an invalid value ${JSON.stringify(v)}`);
  return Number(v);
}

/** peerId, where unset is an InputError too (what needs it: `context`). */
export function requirePeerId(env: Env, name: string, context?: string): number {
  const id = peerId(env, name);
  if (id === undefined) throw new InputError(`${context ? `${context}: ` : ''}${name} not set (run peer-check first)`);
  return id;
}

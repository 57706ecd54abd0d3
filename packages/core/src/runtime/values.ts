// Validation of option values. Each throws UsageError naming the option.
import { UsageError } from '../errors.js';
import type { OptionValues } from './options.js';

/** A decimal unsigned integer within [min, max]. */
export function parseUint(text: string, what: string, min = 0, max = 0xffffffff): number {
  if (!/^[0-9]+$/.test(text) || text.length > 10) throw new UsageError(`${what}: not a number: ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${what}: out of range (${min}..${max}): ${text}`);
  return n;
}

/** An fd number (0..1048575, the kernel's nr_open ceiling). */
export function parseFd(text: string, what: string): number {
  return parseUint(text, what, 0, 1048575);
}

/** A comma-separated list of fd numbers, no duplicates. */
export function parseFdList(text: string, what: string): number[] {
  if (text === '') throw new UsageError(`${what}: empty fd list`);
  const fds = text.split(',').map((t) => parseFd(t, what));
  if (new Set(fds).size !== fds.length) throw new UsageError(`${what}: fd listed twice: ${text}`);
  return fds;
}

/** The single value of a value option, or undefined. */
export function optString(opts: OptionValues, name: string): string | undefined {
  const v = opts[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a repeatable option. */
export function optList(opts: OptionValues, name: string): string[] {
  const v = opts[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function optFlag(opts: OptionValues, name: string): boolean {
  return opts[name] === true;
}

/** A required value option. */
export function requireString(opts: OptionValues, name: string, display: string): string {
  const v = optString(opts, name);
  if (v === undefined) throw new UsageError(`option ${display} is required`);
  return v;
}

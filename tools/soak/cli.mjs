// The soak's knobs (environment) and its closing line.
import { writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';

/** The full count: `npm run soak` without knobs, the run that writes docs/soak.md. */
export const FULL = 10000;
/** The full launcher count: `npm run soak` without knobs. */
export const FULL_LAUNCHES = 2000;
const SERVER_KINDS = ['resident', 's6', 'launcher'];

/** Print the check lines and `N passed, N failed` (also to --summary FILE), and exit. */
export function finish(lines, passed, failed) {
  const line = `${passed} passed, ${failed} failed`;
  for (const l of lines) console.log(l);
  const at = process.argv.indexOf('--summary');
  if (at > 0 && process.argv[at + 1]) writeFileSync(process.argv[at + 1], line + '\n');
  console.log(line);
  process.exit(failed ? 1 : 0);
}

export function fatal(message) {
  console.error(`soak: fatal: ${message}`);
  finish([], 0, 1);
}

function knob(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 2 ** 31) fatal(`${name} must be a positive integer, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** SOAK_LEASES, SOAK_S6_LEASES, SOAK_LAUNCHES, SOAK_CONCURRENCY, SOAK_SERVERS, SOAK_SEED; checked, or exit. */
export function options() {
  const leases = knob('SOAK_LEASES', FULL);
  const kinds = (process.env.SOAK_SERVERS || SERVER_KINDS.join(',')).split(',');
  if (kinds.some((k) => !SERVER_KINDS.includes(k))) fatal(`SOAK_SERVERS lists ${SERVER_KINDS.join(' and ')}, not ${JSON.stringify(process.env.SOAK_SERVERS)}`);
  return {
    leasesFor: { resident: leases, s6: knob('SOAK_S6_LEASES', leases), launcher: knob('SOAK_LAUNCHES', FULL_LAUNCHES) },
    concurrency: knob('SOAK_CONCURRENCY', 12),
    seed: knob('SOAK_SEED', randomInt(1, 2 ** 31)),
    kinds,
  };
}

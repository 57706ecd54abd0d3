// fast-check generators shared by the adversarial tests: random argv for a
// link (from its own option table), interface-name bytes biased towards the
// kernel's edge cases, and framed messages with one known defect each.
// Every property runs with a fixed seed (NETGRANT_FC_SEED overrides it);
// fast-check prints the seed and the counterexample path on failure, so a
// failure reproduces with the same seed.
import fc from 'fast-check';
import type { OptionDef } from '@netgrant/core';
import { encodeHeader, encodeEnv } from '@netgrant/core';

export const SEED = Number(process.env.NETGRANT_FC_SEED ?? 20261125);

/** fc.assert options: the fixed seed, numRuns cases, the failure's own message in the report, at most 2 minutes. */
export function params(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns, includeErrorInReport: true, interruptAfterTimeLimit: 120000, markInterruptAsFailure: true };
}

/** Words that sit on the edges of what the toolkit's options accept. */
export const EDGE_WORDS = [
  '', '0', '1', '2', '3', '4', '6', '7', '-1', '+1', '1.5', '0x10', '1e3', '007', '65534', '65535', '65536', '4294967294', '4294967295',
  '4294967296', '99999999999', '1048575', '1048576', 'abc', 'all', 'ALL', 'net_admin', 'cap_net_admin', 'sys_admin', '40', '41', '63',
  'root', 'nobody', 'no-such-user-x', 'br0', 'nobr0', 'tap%d', '%d', 'tap0', 'x'.repeat(15), 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb',
  '.', '..', 'à', '\u00a0', 'é'.repeat(8), '3,4', '3,3', '3,', ',', '6,7', '0,1', '1500', '67', '68', '65535', 'l2', 'l3', 'l3s', 'bridge',
  'private', 'vepa', 'passthru', 'tap', 'tun', '02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', '01:00:00:00:00:00', '02:00:00:00:00', 'zz',
  '0777', '0600', '-', '--', '=', 'A=B', 'PATH', 'NODE_OPTIONS', 'LD_PRELOAD', 'A-B', '/', '/dev/null', '/dev/zero', '/proc/self/ns/net',
  '/proc/self/ns/user', '/proc/1/ns/net', '/etc/shadow', '/nonexistent/x', '/run/netns/none', 'none',
];

/** An option word's value: an edge word, one of `extra` (paths of the test's fixtures), or random text. */
export function optionValue(extra: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...EDGE_WORDS, ...extra) },
    { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  );
}

/**
 * Option words for a link with these option definitions: known options in
 * short, long and attached forms (now and then a value missing, or given
 * to a flag), and a few unknown options, `--` or a lone `-`. valueFor gives
 * the values tried for each option.
 */
export function optionWords(defs: readonly OptionDef[], valueFor: (d: OptionDef) => fc.Arbitrary<string>): fc.Arbitrary<string[]> {
  const odd = fc.constantFrom(['--'], ['-'], ['--bogus'], ['-Z'], ['--=x'], ['---']);
  // A program without options (netgrant-cni) gets only the odd words.
  if (defs.length === 0) return fc.array(odd, { maxLength: 2 }).map((a) => a.flat());
  const form = fc.constantFrom('short', 'short', 'short', 'long', 'long', 'long', 'attached', 'attached', 'missing');
  const known = fc.constantFrom(...defs).chain((d) =>
    fc.tuple(form, valueFor(d)).map(([f, v]) => {
      const flag = f === 'short' && d.short ? `-${d.short}` : `--${d.name}`;
      // A flag: 'missing' stands for the opposite mistake, a value given to it.
      if (!d.value) return f === 'missing' ? [`--${d.name}=${v}`] : [flag];
      if (f === 'missing') return [flag];
      if (f === 'attached') return [flag.startsWith('--') ? `${flag}=${v}` : `${flag}${v}`];
      return [flag, v];
    }),
  );
  return fc.array(fc.oneof({ weight: 15, arbitrary: known }, { weight: 1, arbitrary: odd }), { maxLength: 6 }).map((a) => a.flat());
}

/** Values for one option: mostly the hinted ones, sometimes any edge word or random text. */
export function hinted(hints: readonly string[], extra: readonly string[] = []): fc.Arbitrary<string> {
  return hints.length ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...hints) }, { weight: 1, arbitrary: optionValue(extra) }) : optionValue(extra);
}

/** Interface names as bytes: mostly valid-looking, with the kernel's edge bytes and lengths mixed in. */
export const ifNameBytes: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...Buffer.from('abcxyz019_-.%@+')) },
      { weight: 2, arbitrary: fc.constantFrom(0x00, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x2f, 0x3a, 0xa0, 0x85, 0xc3, 0xff, 0x7f, 0x01) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 255 }) },
    ),
    { minLength: 0, maxLength: 18 },
  )
  .map((bytes) => Buffer.from(bytes));

/** Random bytes, up to max. */
export function anyBytes(max: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
}

/** A well-formed metadata payload: NUL-terminated KEY=VALUE entries, distinct keys. */
export const envPayload: fc.Arbitrary<Buffer> = fc
  .uniqueArray(fc.tuple(fc.stringMatching(/^K[A-Z0-9_]{0,7}$/), fc.string({ maxLength: 20 }).filter((v) => !v.includes('\0'))), { maxLength: 5, selector: ([k]) => k })
  .map((vars) => encodeEnv(vars));

/** How a generated frame deviates from a well-formed message. */
export type FrameDefect = 'none' | 'truncated' | 'oversized' | 'fd-count' | 'too-many-fds' | 'late-fds' | 'garbage';

export interface Frame {
  defect: FrameDefect;
  /** The bytes as sent, split into separate sendmsg calls. */
  chunks: Buffer[];
  /** How many fds ride on each chunk. */
  fdsPerChunk: number[];
  /** For 'none': the payload the receiver must see. */
  payload: Buffer;
  /** Bytes sent after the message (never part of it). */
  trailer: Buffer;
}

/** Split buf at sorted cut points (each in 1..len-1), dropping duplicates. */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.filter((p) => p > 0 && p < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
}

/**
 * Framed messages for a receiver that accepts at most maxFds fds and
 * maxPayload bytes: well-formed ones (split at random points, with a
 * trailer that must stay unread) and ones with exactly one defect.
 */
export function frames(maxFds: number, maxPayload: number, payloadArb: fc.Arbitrary<Buffer> = anyBytes(Math.min(maxPayload, 300))): fc.Arbitrary<Frame> {
  const cuts = fc.array(fc.integer({ min: 1, max: 320 }), { maxLength: 4 });
  return fc
    .record({
      defect: fc.constantFrom<FrameDefect>('none', 'none', 'truncated', 'oversized', 'fd-count', 'too-many-fds', 'late-fds', 'garbage'),
      payload: payloadArb,
      nfds: fc.integer({ min: 0, max: maxFds }),
      cuts,
      skew: fc.integer({ min: 1, max: 3 }),
      garbage: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a)),
      trailer: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
    })
    .map(({ defect, payload: given, nfds, cuts: points, skew, garbage, trailer }) => {
      let payload = given;
      let len = payload.length;
      let announced = nfds;
      let carried = nfds;
      if (defect === 'oversized') len = maxPayload + skew;
      if (defect === 'fd-count') announced = nfds + skew <= maxFds ? nfds + skew : Math.max(0, nfds - skew);
      if (defect === 'fd-count' && announced === nfds) carried = nfds + 1;
      if (defect === 'too-many-fds') carried = announced = maxFds + skew;
      // Late fds: the header announces none, and they ride on a payload chunk.
      if (defect === 'late-fds') [announced, carried] = [0, Math.max(1, nfds)];
      if (defect === 'late-fds' && payload.length === 0) payload = Buffer.from('A=1\0');
      if (defect === 'late-fds') len = payload.length;
      let wire = Buffer.concat([encodeHeader(len, announced), defect === 'oversized' ? Buffer.alloc(0) : payload]);
      if (defect === 'truncated') wire = wire.subarray(0, Math.max(0, wire.length - skew));
      if (defect === 'garbage') wire = garbage;
      // A late fd rides on a chunk after the first byte (the header is sent on its own).
      const chunks = defect === 'late-fds' ? [wire.subarray(0, 6), ...cut(wire.subarray(6), points)] : cut(wire, points);
      const fdsPerChunk = chunks.map((_, i) => (defect === 'late-fds' ? (i === 1 ? carried : 0) : i === 0 ? carried : 0));
      return { defect, chunks, fdsPerChunk, payload, trailer: defect === 'none' ? trailer : Buffer.alloc(0) };
    });
}

// Drawing addresses: uniformly at random (crypto) from a subnet's usable
// hosts, never an excluded one, each candidate at most once; a full subnet
// ends the sequence instead of looping.
import { usableRange, type Cidr } from './cidr.js';

const ENUMERATE_UP_TO = 1 << 16;
const RANDOM_DRAWS = 512;

/** Candidate host addresses in random order, excluding `excluded`. */
export function* candidates(c: Cidr, excluded: ReadonlySet<bigint>): Generator<bigint> {
  const range = usableRange(c);
  if (!range) return;
  // Loaded on use: node:crypto costs ~2.5 ms to load (docs/perf.md).
  const { randomBytes, randomInt } = require('node:crypto') as typeof import('node:crypto');
  const size = range.last - range.first + 1n;
  if (size <= BigInt(ENUMERATE_UP_TO)) {
    const free: bigint[] = [];
    for (let v = range.first; v <= range.last; v++) if (!excluded.has(v)) free.push(v);
    // Fisher–Yates, drawing from the CSPRNG.
    for (let i = free.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [free[i], free[j]] = [free[j]!, free[i]!];
    }
    yield* free;
    return;
  }
  const seen = new Set<bigint>();
  const bytes = Math.ceil((c.bits - c.prefix) / 8) + 8;
  for (let n = 0; n < RANDOM_DRAWS; n++) {
    const v = range.first + (BigInt(`0x${randomBytes(bytes).toString('hex')}`) % size);
    if (excluded.has(v) || seen.has(v)) continue;
    seen.add(v);
    yield v;
  }
}

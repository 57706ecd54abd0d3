// What a soak run must show, as named pass/fail checks.
import { slope } from './stats.mjs';

/** RSS may drift by GC and JIT; a leak of 256 bytes per lease would exceed this. */
export const RSS_SLOPE_LIMIT_KB = 256;
/** Node's heap grows while the server warms up: RSS is judged from here on. */
export const WARM_LEASES = 1000;

/** Samples after the fresh start: fds must be equal at all of them. */
const afterStart = (samples) => samples.slice(1);

/** Samples once warm (RSS is judged on these, when there are at least three). */
export function warm(samples) {
  return samples.filter((s) => s.leases >= WARM_LEASES);
}

/** RSS and fd slopes over the warm samples, per 1,000 leases (null: too few samples). */
export function slopes(r) {
  const w = warm(r.samples);
  if (w.length < 2) return null;
  const xs = w.map((s) => s.leases / 1000);
  return { rssKb: slope(xs, w.map((s) => s.rssKb)), fds: slope(xs, w.map((s) => s.fds)) };
}

export function checks(r) {
  const k = r.kind;
  const w = warm(r.samples);
  const survivors = r.leases - r.counts['killed-holding'] - r.counts['killed-chain'];
  const fds = afterStart(r.samples).map((s) => s.fds);
  const rss = slopes(r)?.rssKb ?? 0;
  const rssCheck = w.length >= 3
    ? [[`${k}: server RSS flat (slope ${rss.toFixed(0)} kB per 1,000 leases, limit ${RSS_SLOPE_LIMIT_KB})`, Math.abs(rss) <= RSS_SLOPE_LIMIT_KB]]
    : []; // too short to judge: fewer than three samples past the warm-up
  return [
    [`${k}: every surviving client got a working tap (${r.counts.ok}/${survivors})`, r.counts.failed === 0 && r.counts.ok === survivors],
    [`${k}: a tenth of the clients were killed mid-lease (${r.counts['killed-holding']} holding their tap, ${r.counts['killed-chain']} in the chain)`,
      r.plannedKills.holding + r.plannedKills.chain === Math.floor(r.leases / 10) && r.counts['killed-holding'] >= r.plannedKills.holding],
    [`${k}: zero taps remain (at every sample and after the server stopped)`, r.samples.every((s) => s.taps === 0) && r.tapsAfterStop === 0],
    [`${k}: no quota lock held between leases or after`, r.samples.every((s) => s.locks === 0) && r.locksAfterStop === 0],
    [`${k}: server open fds flat (${Math.min(...fds)}..${Math.max(...fds)} at every sample after the start)`, Math.max(...fds) === Math.min(...fds)],
    ...rssCheck,
    [`${k}: the server served to the end and stopped on SIGTERM`, r.aliveAtEnd && (r.end.code === 0 || r.end.signal === 'SIGTERM')],
    [`${k}: no process left behind`, r.processesLeft === 0],
  ];
}

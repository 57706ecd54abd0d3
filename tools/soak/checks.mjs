// What a soak run must show, as named pass/fail checks.
import { slope } from './stats.mjs';

/**
 * RSS moves by megabytes as V8 sizes its heap and malloc its arenas (an
 * 8,000-lease run of netgrant-serve: RSS 58-67 MB while the live heap after
 * full GCs stayed 4.4-4.6 MB). RSS is flat when its warm samples stay within
 * this band: a leak of 3.5 kB per lease over 9,000 leases would leave it.
 */
export const RSS_BAND_KB = 32 * 1024;
/** The live JS heap after full GCs, from --trace-gc: a leak of 110 bytes per lease over 9,000 leases would leave this band. */
export const HEAP_BAND_MB = 1;
/** Node's heap grows while the server warms up: RSS and the heap are judged from here on. */
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

/** The live heap after each full GC that came after the warm-up (resident only). */
export function warmHeap(r) {
  const first = warm(r.samples)[0];
  return first && r.fullGcHeapMb ? r.fullGcHeapMb.slice(first.fullGcs) : [];
}

const n = (x) => x.toLocaleString('en-US');

export function checks(r) {
  const k = r.kind;
  const w = warm(r.samples);
  const survivors = r.leases - r.counts['killed-holding'] - r.counts['killed-chain'];
  const fds = afterStart(r.samples).map((s) => s.fds);
  const rss = w.map((s) => s.rssKb);
  const rssBand = Math.max(...rss) - Math.min(...rss);
  const rssCheck = w.length >= 3
    ? [[`${k}: server RSS flat (${n(Math.min(...rss))}..${n(Math.max(...rss))} kB from ${n(WARM_LEASES)} leases on, band ${n(RSS_BAND_KB)} kB)`, rssBand <= RSS_BAND_KB]]
    : []; // too short to judge: fewer than three samples past the warm-up
  const heap = warmHeap(r);
  const heapCheck = heap.length >= 2
    ? [[`${k}: server JS heap after full GCs flat (${heap.join(', ')} MB, band ${HEAP_BAND_MB} MB)`, Math.max(...heap) - Math.min(...heap) <= HEAP_BAND_MB]]
    : []; // no trace (s6-ipcserver is C), or fewer than two full GCs past the warm-up
  return [
    [`${k}: every surviving client got a working tap (${r.counts.ok}/${survivors})`, r.counts.failed === 0 && r.counts.ok === survivors],
    [`${k}: a tenth of the clients were killed mid-lease (${r.counts['killed-holding']} holding their tap, ${r.counts['killed-chain']} in the chain)`,
      r.plannedKills.holding + r.plannedKills.chain === Math.floor(r.leases / 10) && r.counts['killed-holding'] >= r.plannedKills.holding],
    [`${k}: a tenth of the clients were greedy, persisting and re-owning their taps through the fd (${r.counts.greedy} of ${r.plannedGreedy} planned), and each of those leases still ended`, r.plannedGreedy === Math.floor(r.leases / 10) && r.counts.greedy === r.plannedGreedy],
    [`${k}: zero taps remain (at every sample and after the server stopped)`, r.samples.every((s) => s.taps === 0) && r.tapsAfterStop === 0],
    [`${k}: no lease lock held between leases or after`, r.samples.every((s) => s.locks === 0) && r.locksAfterStop === 0],
    [`${k}: server open fds flat (${Math.min(...fds)}..${Math.max(...fds)} at every sample after the start)`, Math.max(...fds) === Math.min(...fds)],
    ...rssCheck,
    ...heapCheck,
    [`${k}: the server served to the end and stopped on SIGTERM`, r.aliveAtEnd && (r.end.code === 0 || r.end.signal === 'SIGTERM')],
    [`${k}: no process left behind`, r.processesLeft === 0],
  ];
}

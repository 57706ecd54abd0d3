// Where the time goes, per row of docs/perf.md (filled from profiles).
export function notes() {
  return { chain: '', lease: '', throughput: '', datapath: '' };
}

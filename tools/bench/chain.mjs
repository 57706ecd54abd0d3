// Row 1, chain overhead: five netgrant links then /bin/true, with every link
// a real exec (NETGRANT_EXEC_ONLY=1) and with in-process chaining, against
// `node -e 0` and a C chain of five execline programs; each with and
// without NODE_EXTRA_CA_CERTS; the same two chains through the single
// executable. Timed with hyperfine -N.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA, SEA_PATH, knobs, run } from './lib.mjs';

// peer-check -E -a: a real link (reads the UCSPI environment, checks,
// exports PEERUID/PEERGID/PEERPID, hands on).
const link = ['peer-check', '-E', '-a'];
const five = [...link, ...link, ...link, ...link, ...link, '/bin/true'];
const UCSPI = { PROTO: 'IPC', IPCREMOTEEUID: '0', IPCREMOTEEGID: '0' };

export const chainRows = [
  { key: 'node', name: 'node -e 0', argv: [process.execPath, '-e', '0'], env: {} },
  { key: 'c', name: 'C chain: 5 execline links + true', argv: ['/usr/lib/execline/bin/export', 'A', '1', 'export', 'B', '2', 'export', 'C', '3', 'export', 'D', '4', 'export', 'E', '5', '/bin/true'], env: {} },
  { key: 'exec', name: "netgrant, 5 links, every link exec'd", argv: five, env: { NETGRANT_EXEC_ONLY: '1' } },
  { key: 'inproc', name: 'netgrant, 5 links, in-process', argv: five, env: {} },
  // The single executable (its code cache inside it; no startup snapshot: koffi cannot be in one, docs/single-executable.md).
  { key: 'sea-exec', name: "single executable, 5 links, every link exec'd", argv: five, env: { PATH: SEA_PATH, NETGRANT_EXEC_ONLY: '1' } },
  { key: 'sea', name: 'single executable, 5 links, in-process', argv: five, env: { PATH: SEA_PATH } },
];

function hyperfine(dir, argv, env, runs) {
  const out = join(dir, 'hyperfine.json');
  const cmd = argv.map((a) => (/[\s'"]/.test(a) ? `'${a}'` : a)).join(' ');
  run(['hyperfine', '-N', '--warmup', '3', '--runs', String(runs), '--export-json', out, cmd], { env: { ...UCSPI, ...env } });
  const r = JSON.parse(readFileSync(out, 'utf8')).results[0];
  return { mean: r.mean * 1000, stddev: r.stddev * 1000, median: r.median * 1000, min: r.min * 1000 };
}

/** Every row without and with NODE_EXTRA_CA_CERTS, in ms. */
export function measureChain(dir, runs = knobs.runs) {
  return chainRows.map((row) => {
    const without = hyperfine(dir, row.argv, row.env, runs);
    const withCa = hyperfine(dir, row.argv, { ...row.env, NODE_EXTRA_CA_CERTS: CA }, runs);
    console.error(`chain: ${row.name}: ${without.mean.toFixed(1)} / ${withCa.mean.toFixed(1)} ms`);
    return { key: row.key, name: row.name, without, withCa };
  });
}

// Fairness row (issue 12): how much one uid that stalls every connection
// slot it may, and reconnects without end, delays another uid's lease. The
// service is the shape every recipe has: peer-check, fd-recv of the client's
// request with a deadline (-t), mktap, fd-send; per-uid limits set (-C).
// Measured under s6-ipcserver and under netgrant-serve, each with -c 16
// -C 4: the victim's lease latency alone, then while the attacker (uid
// 65534, 40 connections held, each one closed replaced at once) runs.
import { join, resolve } from 'node:path';
import { PYTHON, benchDir, percentile, mean, runJson, startService, background, sleep } from './lib.mjs';

export const ATTACKER = 65534;
export const VICTIM = 65533;
const CLIENT = join(benchDir, 'fair-client.py');
const as = (uid) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

/** The service chain: who may ask, the request within 5 s, a tap on the bridge for the peer, the fd back. */
export const fairChain = (bridge) => ['peer-check', '-u', String(ATTACKER), '-u', String(VICTIM), 'fd-recv', '-s', '0', '-m', '0', '-t', '5000', 'mktap', '-b', bridge, '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3'];

const SERVERS = {
  s6: (sock, chain) => ['s6-ipcserver', '-c', '16', '-C', '4', sock, ...chain],
  resident: (sock, chain) => ['netgrant-serve', '-c', '16', '-C', '4', sock, ...chain],
  // The control: a per-uid limit as large as the server (what every server had before -C).
  unlimited: (sock, chain) => ['netgrant-serve', '-c', '16', '-C', '16', sock, ...chain],
};
const NAMES = { s6: 's6-ipcserver -c 16 -C 4', resident: 'netgrant-serve -c 16 -C 4', unlimited: 'netgrant-serve -c 16 -C 16 (no per-uid limit)' };

const stats = (ms) => ({ n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), mean: mean(ms) });

/** One server kind: the victim's latencies alone and under attack. */
export async function fairness(kind, dir, bridge, n) {
  const sock = join(dir, `fair-${kind}.sock`);
  const s = await startService(SERVERS[kind](sock, fairChain(bridge)), sock);
  try {
    const victim = () => runJson([...as(VICTIM), PYTHON, CLIENT, 'lease', sock, String(n)]);
    await runJson([...as(VICTIM), PYTHON, CLIENT, 'lease', sock, '3']);
    const alone = (await victim()).ms;
    let attackOut = '';
    const attacker = background([...as(ATTACKER), PYTHON, CLIENT, 'stall', sock, '40'], { onStdout: (d) => (attackOut += d) });
    try {
      await sleep(1000); // its connections are all in: 4 held, the rest closed and replaced
      const t0 = Date.now();
      const attacked = (await victim()).ms;
      const seconds = (Date.now() - t0) / 1000;
      await attacker.stop();
      const connects = JSON.parse(attackOut || '{"connects":0}').connects;
      const a = stats(attacked);
      const b = stats(alone);
      return { name: NAMES[kind], alone: b, attacked: a, delayP50: a.p50 - b.p50, delayP99: a.p99 - b.p99, delayMax: a.max - b.p50, attackerConnects: connects, attackerPerSecond: connects / (seconds + 1) };
    } finally {
      await attacker.stop(true);
    }
  } catch (e) {
    throw new Error(`${e.message}\nserver said: ${s.stderr()}`);
  } finally {
    await s.stop();
  }
}

export async function measureFairness(dir, bridge, n = 50) {
  return [await fairness('s6', dir, bridge, n), await fairness('resident', dir, bridge, n)];
}

// `node fairness.mjs KIND DIR BRIDGE N`: one server kind, as JSON (the test suite's way in).
if (process.argv[1] && import.meta.url === `file://${resolve(process.argv[1])}`) {
  const [kind, dir, bridge, n] = process.argv.slice(2);
  process.stdout.write(`${JSON.stringify(await fairness(kind, dir, bridge, Number(n)))}\n`);
}

// One tap lease, as a real client takes it:
//   setpriv (uid) s6-ipcclient SOCK fd-recv -s 6 -d 3 -e TAPNAME python3 client.py BRIDGE HOLD_MS
// setpriv, s6-ipcclient and fd-recv each exec the next, so the pid spawned
// here is the client for the whole lease and the only one ever signalled.
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'client.py');
const TIMEOUT_MS = 30000;
const running = new Set();

/** SIGKILL every client still running (the soak is being stopped). */
export function killClients() {
  for (const child of running) child.kill('SIGKILL');
}

/**
 * Run one lease (greedy: the client persists and re-owns its tap, see client.py). kill: null (the client holds holdMs and exits), 'holding'
 * (SIGKILL once it reports holding its tap), or a number (SIGKILL that many
 * ms after the start, wherever the chain is then).
 * Resolves to { outcome: 'ok' | 'killed-holding' | 'killed-chain' | 'failed', ms, detail }.
 */
export function lease({ sock, uid, bridge, holdMs, kill, greedy, env }) {
  const argv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 's6-ipcclient', sock,
    'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME', '/usr/bin/python3', '-I', '-S', CLIENT, bridge, String(kill === 'holding' ? TIMEOUT_MS : holdMs), ...(greedy ? ['greedy'] : [])];
  const started = process.hrtime.bigint();
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  let heldMs = null;
  let killed = false;
  let timedOut = false;
  const sigkill = () => {
    killed = child.kill('SIGKILL') || killed;
  };
  child.stdout.on('data', (d) => {
    out += d;
    if (heldMs === null && /^holding \S+$/m.test(out)) {
      heldMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (kill === 'holding') sigkill();
    }
  });
  child.stderr.on('data', (d) => (err += d));
  const timers = [setTimeout(() => ((timedOut = true), sigkill()), TIMEOUT_MS)];
  if (typeof kill === 'number') timers.push(setTimeout(sigkill, kill));
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      running.delete(child);
      timers.forEach(clearTimeout);
      const ms = heldMs;
      const detail = `exit ${code ?? signal}: ${(out + err).trim().split('\n').slice(-3).join(' | ')}`;
      if (killed && !timedOut && signal === 'SIGKILL') {
        resolve({ outcome: heldMs !== null ? 'killed-holding' : 'killed-chain', ms, detail });
      } else if (code === 0 && /^holding (\S+)\nok \1$/m.test(out)) {
        resolve({ outcome: 'ok', ms, detail });
      } else {
        resolve({ outcome: 'failed', ms, detail: timedOut ? `timed out after ${TIMEOUT_MS} ms; ${detail}` : detail });
      }
    });
  });
}

// Row 5: how long a lease outlives its holder. A client takes a tap through
// the service, then exits: cooperatively (it just closes its fd; the kernel
// deletes the tap), or hostile (with no capability it first makes the tap
// persistent and gives it to root, so the kernel would keep it for ever).
// Under s6-ipcserver with netgrant-reap as the reaper, and under
// netgrant-serve, which reaps itself. The deletion time is the kernel's
// RTM_DELLINK as `ip -ts monitor link` stamps it; the exit time is when the
// client's exit reaches this process. A hostile lease is deleted at its
// TUNSETPERSIST notification, usually before its holder has exited: its
// latency is then 0, and the time from the tamper to the deletion is shown
// beside it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ENV, PYTHON, background, percentile, root, sleep, startService } from './lib.mjs';

const HOSTILE = join(root, 'tools', 'test', 'lib', 'hostile-tap.py');
const NOBODY = 65534;
const LEASES = Number(process.env.BENCH_REAP_LEASES ?? 40);

/** `ip -ts -o monitor link`: the wall-clock time of every deletion, by device name. */
function monitorDeletions() {
  const deleted = new Map();
  let buf = '';
  const mon = background(['ip', '-ts', '-o', 'monitor', 'link'], {
    onStdout: (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = line.match(/^\[([^\]]+)\] Deleted \d+: ([^:@]+)[:@]/);
        if (m) deleted.set(m[2], Date.parse(m[1].slice(0, 23)) + Number(`0.${m[1].slice(23, 26) || 0}`)); // local time, as ip prints it
      }
    },
  });
  return { deleted, stop: () => mon.stop() };
}

/** One lease through sock; resolves with {name, exitAt, tamperAt}. */
function lease(sock, hostile) {
  return new Promise((resolve, reject) => {
    const actions = hostile ? ['persist', 'owner=0'] : [];
    const script = `echo "name $TAPNAME"; exec ${PYTHON} ${HOSTILE} 3 ${actions.join(' ')}`;
    const p = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
      's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME', 'sh', '-c', script], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let tamperAt;
    p.stdout.on('data', (d) => {
      out += d;
      if (tamperAt === undefined && out.includes('ok persist')) tamperAt = Date.now();
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => {
      const exitAt = Date.now();
      const name = out.match(/^name (\S+)$/m)?.[1];
      if (code !== 0 || !name) reject(new Error(`lease client: exit ${code}: ${err.trim()}`));
      else resolve({ name, exitAt, tamperAt });
    });
  });
}

async function measure(sock, hostile, mon) {
  const afterExit = [];
  const afterTamper = [];
  for (let i = 0; i < LEASES; i++) {
    const l = await lease(sock, hostile);
    let at;
    for (let waited = 0; (at = mon.deleted.get(l.name)) === undefined; waited += 5) {
      if (waited > 10000) throw new Error(`${l.name} not deleted 10 s after its holder exited`);
      await sleep(5);
    }
    mon.deleted.delete(l.name);
    afterExit.push(Math.max(0, at - l.exitAt));
    if (l.tamperAt !== undefined) afterTamper.push(Math.max(0, at - l.tamperAt));
  }
  const stats = (v) => (v.length ? { p50: percentile(v, 50), p99: percentile(v, 99), max: Math.max(...v) } : undefined);
  return { n: LEASES, afterExit: stats(afterExit), afterTamper: stats(afterTamper) };
}

export async function measureReap(dir, bridge) {
  const mon = monitorDeletions();
  const chain = ['peer-check', '-u', String(NOBODY), 'mktap', '-b', bridge, '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME'];
  const rows = [];
  try {
    await sleep(200);
    const s6sock = join(dir, 'reap-s6.sock');
    const reaper = background(['netgrant-reap', '-i', '1000']);
    const s6 = await startService(['s6-ipcserver', s6sock, ...chain], s6sock);
    try {
      for (const hostile of [false, true]) rows.push({ server: 's6-ipcserver + netgrant-reap', holder: hostile ? 'hostile' : 'cooperative', ...(await measure(s6sock, hostile, mon)) });
    } finally {
      await s6.stop();
      await reaper.stop();
    }
    const ressock = join(dir, 'reap-serve.sock');
    const res = await startService(['netgrant-serve', ressock, ...chain], ressock);
    try {
      for (const hostile of [false, true]) rows.push({ server: 'netgrant-serve', holder: hostile ? 'hostile' : 'cooperative', ...(await measure(ressock, hostile, mon)) });
    } finally {
      await res.stop();
    }
  } finally {
    await mon.stop();
  }
  return rows;
}

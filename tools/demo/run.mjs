#!/usr/bin/env node
// The README's main job: in a throwaway network + mount namespace, start a
// netgrant service under s6-ipcserver and let an unprivileged uid (nobody)
// obtain a resource from it, then show what happened.
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'node_modules', '.bin');
const PATH = `${bin}:/usr/lib/execline/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

if (process.getuid() !== 0) {
  console.error('demo: must run as root (it starts a root service and switches to uid nobody)');
  process.exit(100);
}
const need = { 's6-ipcserver': 's6', redirfd: 'execline', ip: 'iproute2', setpriv: 'util-linux' };
const missing = Object.entries(need).filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { PATH } }).status !== 0).map(([, pkg]) => pkg);
if (missing.length) {
  console.log(`demo: installing ${missing.join(' ')} from Debian`);
  const r = spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(111);
}
if (!existsSync(join(root, 'packages', 'netgrant', 'dist', 'netgrant.cjs'))) {
  console.error('demo: the toolkit is not built; run npm ci first');
  process.exit(100);
}

if (!process.env.NETGRANT_DEMO_INNER) {
  // Re-run inside a fresh network and mount namespace: nothing reaches the host's.
  const r = spawnSync('unshare', ['--net', '--mount', '--', process.execPath, fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, NETGRANT_DEMO_INNER: '1' },
  });
  process.exit(r.status ?? 1);
}

const dir = mkdtempSync('/tmp/netgrant-demo-');
chmodSync(dir, 0o755);
const sock = join(dir, 'service.sock');
const say = (s) => console.log(`\n== ${s}`);
spawnSync('ip', ['link', 'set', 'lo', 'up']);
say('A root service: s6-ipcserver runs this chain for each connection');
const chain = ['peer-check', '-u', 'nobody', 'redirfd', '-r', '3', '/etc/os-release', 'fd-send', '-s', '1', '-d', '3', '-e', 'PEERUID'];
console.log(`   s6-ipcserver ${sock} \\\n     ${chain.join(' ')}`);
const server = spawn('s6-ipcserver', ['-1', sock, ...chain], { env: { PATH }, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
await new Promise((resolve) => server.stdout.once('data', resolve));

say('uid nobody asks for the resource: s6-ipcclient ... fd-recv -s 6 -d 3 prog');
const client = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 's6-ipcclient', sock,
  'fd-recv', '-s', '6', '-d', '3', '-e', 'PEERUID', 'sh', '-c',
  'echo "   running as uid $(id -u), the service saw PEERUID=$PEERUID"; echo "   fd 3 is $(readlink /proc/$$/fd/3); its first line: $(head -n 1 <&3)"'];
const r = spawnSync(client[0], client.slice(1), { env: { PATH }, stdio: 'inherit' });

say('uid 4242 is not in the allow list: the service refuses, the client gets nothing');
const d = spawnSync('setpriv', ['--reuid=4242', '--regid=4242', '--clear-groups', 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', 'true'], { env: { PATH }, stdio: 'inherit' });
console.log(`   client exit status ${d.status}`);

process.kill(-server.pid, 'SIGTERM');
rmSync(dir, { recursive: true, force: true });
say(r.status === 0 && d.status !== 0 ? 'demo ok' : 'demo FAILED');
process.exit(r.status === 0 && d.status !== 0 ? 0 : 1);

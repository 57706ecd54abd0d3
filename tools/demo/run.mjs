#!/usr/bin/env node
// The README's main job: in a throwaway network + mount namespace, start the
// tap service under s6-ipcserver, let an unprivileged uid (nobody) obtain a
// tap through it, show what the kernel made, ping through it, and show the
// lease ending and a refused caller.
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
const need = { 's6-ipcserver': 's6', ip: 'iproute2', setpriv: 'util-linux', python3: 'python3', ping: 'iputils-ping' };
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
const sock = join(dir, 'tap.sock');
const say = (s) => console.log(`\n== ${s}`);
const sh = (cmd) => spawnSync('sh', ['-c', cmd], { env: { PATH }, stdio: 'inherit' });
sh('ip link set lo up && ip link add br-demo type bridge && ip addr add 10.77.0.1/24 dev br-demo && ip link set br-demo up');
say('In a throwaway network namespace: bridge br-demo, 10.77.0.1/24. A root tap service:');
const chain = ['peer-check', '-u', 'nobody', 'mktap', '-b', 'br-demo', '--owner-from-peer', '--max-per-peer', '2', 'fd-send', '-s', '1', '-d', '3', '-e', 'TAPNAME,TAPMAC'];
console.log(`   s6-ipcserver ${sock} \\\n     ${chain.join(' ')}`);
const server = spawn('s6-ipcserver', ['-1', sock, ...chain], { env: { PATH }, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
await new Promise((resolve) => server.stdout.once('data', resolve));

say('uid nobody asks for a tap: s6-ipcclient SOCK fd-recv -s 6 -d 3 -e TAPNAME,TAPMAC prog');
const responder = join(root, 'tools', 'demo', 'tap-responder.py');
const client = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 's6-ipcclient', sock,
  'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME,TAPMAC', 'sh', '-c',
  `echo "   running as uid $(id -u): fd 3 is $(readlink /proc/$$/fd/3), the tap $TAPNAME ($TAPMAC)"; exec python3 ${responder} 10.77.0.2 3`],
  { env: { PATH }, stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 1500));
say('What the kernel says about it:');
sh('ip -d link show type tun | sed "s/^/   /" | grep -E "tap|tun type|master" ');
say('Traffic: the bridge pings the tap holder (10.77.0.2)');
const ping = spawnSync('ping', ['-c', '3', '-W', '2', '10.77.0.2'], { env: { PATH }, encoding: 'utf8' });
console.log(ping.stdout.split('\n').filter((l) => /bytes from|packet loss/.test(l)).map((l) => `   ${l}`).join('\n'));
const clientStatus = await new Promise((r) => client.on('close', r));

say('The holder exited: the lease is over, the kernel removed the tap');
sh('n=$(ip -o link show type tun | wc -l); echo "   tun/tap devices left: $n"');

say('uid 4242 is not in the allow list: the service refuses, the client gets nothing');
const d = spawnSync('setpriv', ['--reuid=4242', '--regid=4242', '--clear-groups', 's6-ipcclient', sock, 'fd-recv', '-s', '6', '-d', '3', 'true'], { env: { PATH }, stdio: 'inherit' });
console.log(`   client exit status ${d.status}`);

process.kill(-server.pid, 'SIGTERM');
rmSync(dir, { recursive: true, force: true });
const ok = ping.status === 0 && clientStatus === 0 && d.status !== 0;
say(ok ? 'demo ok' : 'demo FAILED');
process.exit(ok ? 0 : 1);

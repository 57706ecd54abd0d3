// The Debian packages the benchmark needs: installed with apt-get when
// missing and running as root, otherwise named (exit 100).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const NEEDS = [
  ['/usr/bin/hyperfine', 'hyperfine'],
  ['/usr/bin/iperf3', 'iperf3'],
  ['/usr/bin/slirp4netns', 'slirp4netns'],
  ['/usr/bin/pasta', 'passt'],
  ['/usr/lib/qemu/qemu-bridge-helper', 'qemu-system-common'],
  ['/usr/bin/s6-ipcserver', 's6'],
  ['/usr/lib/execline/bin/export', 'execline'],
  ['/usr/bin/python3', 'python3'],
  ['/usr/bin/unshare', 'util-linux'],
  ['/usr/bin/cc', 'gcc'],
  ['/usr/include/stdio.h', 'libc6-dev'],
  ['/usr/include/linux/if_tun.h', 'linux-libc-dev'],
];

const ipPresent = () => existsSync('/usr/sbin/ip') || existsSync('/sbin/ip') || existsSync('/usr/bin/ip') || existsSync('/bin/ip');

export function missingPackages() {
  const missing = NEEDS.filter(([path]) => !existsSync(path)).map(([, pkg]) => pkg);
  if (!ipPresent()) missing.push('iproute2');
  return [...new Set(missing)];
}

/** Install what is missing (root) or exit 100 naming it. */
export function ensurePackages() {
  let missing = missingPackages();
  if (missing.length === 0) return;
  if (process.getuid() !== 0) {
    console.error(`bench: fatal: missing Debian packages: ${missing.join(' ')} (apt-get install ${missing.join(' ')})`);
    process.exit(100);
  }
  console.error(`bench: installing ${missing.join(' ')}`);
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!apt(['install', '-y', '--no-install-recommends', ...missing])) {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  }
  missing = missingPackages();
  if (missing.length > 0) {
    console.error(`bench: fatal: could not install: ${missing.join(' ')}`);
    process.exit(100);
  }
}

// Debian's stock kernel for guests: the package linux-image-amd64 depends
// on, fetched from the Debian archive with apt-get download and unpacked
// into a cache (NETGRANT_GUEST_CACHE, default /var/cache/netgrant-guest).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE = process.env.NETGRANT_GUEST_CACHE ?? '/var/cache/netgrant-guest';

/** The versioned kernel package, e.g. linux-image-6.1.0-56-amd64. */
function kernelPackage() {
  const deps = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const m = deps.match(/Depends:\s+(linux-image-\d\S*-amd64)\b/);
  if (!m) throw new Error(`cannot find the kernel package linux-image-amd64 depends on:\n${deps}`);
  return m[1];
}

/** { vmlinuz, modules, version }, fetched and unpacked once. */
export function fetchKernel() {
  mkdirSync(CACHE, { recursive: true });
  chmodSync(CACHE, 0o755);
  const pkg = kernelPackage();
  const version = pkg.replace(/^linux-image-/, '');
  const root = join(CACHE, pkg);
  const vmlinuz = join(root, 'boot', `vmlinuz-${version}`);
  if (!existsSync(vmlinuz)) {
    let deb = readdirSync(CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) {
      execFileSync('apt-get', ['-o', 'APT::Sandbox::User=root', 'download', pkg], { cwd: CACHE, stdio: ['ignore', 'ignore', 'pipe'] });
      deb = readdirSync(CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    }
    rmSync(root, { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-x', join(CACHE, deb), root]);
    chmodSync(vmlinuz, 0o644);
  }
  return { vmlinuz, modules: join(root, 'lib', 'modules', version), version };
}

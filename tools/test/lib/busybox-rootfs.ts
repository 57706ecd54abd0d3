// A container image's root filesystem built offline from busybox-static
// (no registry is reachable): sh, ip, ping and sleep, a root user. For
// `podman import` (packages/netgrant-cni/test).
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './harness.js';

/** Build it under dir/R and pack it; the tarball's path (mode 0644). */
export function busyboxRootfsTar(dir: string): string {
  const r = join(dir, 'R');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run']) mkdirSync(join(r, d), { recursive: true });
  copyFileSync('/bin/busybox', join(r, 'bin', 'busybox'));
  chmodSync(join(r, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'ip', 'ping', 'sleep']) symlinkSync('busybox', join(r, 'bin', a));
  writeFileSync(join(r, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(r, 'etc', 'group'), 'root:x:0:\n');
  const tar = join(dir, 'r.tar');
  const t = sh(`tar -C ${r} -cf ${tar} . && chmod 644 ${tar}`);
  if (t.status !== 0) throw new Error(`tar: ${t.stderr}`);
  return tar;
}

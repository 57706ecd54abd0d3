// A tiny initramfs: busybox-static, the kernel modules asked for (with
// their dependencies, from modinfo), and an /init script.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, chmodSync, rmSync, readdirSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import { tmpdir } from 'node:os';

function findModules(dir, out = new Map()) {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) findModules(p, out);
    else if (/\.ko(\.xz)?$/.test(e)) out.set(e.replace(/\.ko(\.xz)?$/, '').replace(/-/g, '_'), p);
  }
  return out;
}

/** Module files for names, dependencies first. */
export function resolveModules(modulesDir, names) {
  const all = findModules(join(modulesDir, 'kernel'));
  const order = [];
  const visit = (name) => {
    const key = name.replace(/-/g, '_');
    if (order.some((o) => o.name === key)) return;
    const file = all.get(key);
    if (!file) throw new Error(`module ${name} not found in ${modulesDir}`);
    const deps = execFileSync('modinfo', ['-F', 'depends', file], { encoding: 'utf8' }).trim();
    for (const d of deps ? deps.split(',') : []) visit(d);
    order.push({ name: key, file });
  };
  names.forEach(visit);
  return order;
}

/** Build out (gzip'd newc cpio) with busybox, modules (loaded in order by /init as /lib/modules/N.ko) and init. */
export function buildInitramfs({ modulesDir, modules, init, out }) {
  const root = mkdtempSync(join(tmpdir(), 'netgrant-initramfs-'));
  try {
    for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'lib/modules', 'mnt']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    const list = resolveModules(modulesDir, modules);
    list.forEach((m, i) => copyFileSync(m.file, join(root, 'lib', 'modules', `${String(i).padStart(2, '0')}-${basename(m.file)}`)));
    writeFileSync(join(root, 'init'), init);
    chmodSync(join(root, 'init'), 0o755);
    execFileSync('sh', ['-c', `cd "${root}" && find . | cpio -o -H newc --quiet | gzip -1 > "${out}"`]);
    chmodSync(out, 0o644);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The start of every /init: busybox applets, /proc, /sys, /dev, modules loaded in order. */
export const INIT_PRELUDE = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in /lib/modules/*.ko; do insmod "$m" || echo "insmod $m failed"; done
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1"=*) echo "\${w#*=}";; esac; done; }
`;

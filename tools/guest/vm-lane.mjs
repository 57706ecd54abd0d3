// The kernel VM lane: test files that need kernel features this machine's
// kernel lacks (ipvlan) run inside a guest booting Debian's stock kernel
// under qemu-system-x86_64 (TCG). The guest's root is the host's root
// filesystem, shared read-only over virtio-9p, under a tmpfs overlay so that
// writes (temp files, /run/netns) stay in the guest. Each test file runs
// there exactly as the native runner runs it (its own network and mount
// namespace, Node from the host's filesystem), and its output comes back
// over the serial console between markers.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fetchKernel, CACHE } from './kernel.mjs';
import { buildInitramfs, INIT_PRELUDE } from './initramfs.mjs';

const MARK = '@@NETGRANT-VM';
/** What a boot and power-off may take beyond the jobs themselves. */
const BOOT_MS = 120000;
const MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'ipvlan', 'macvlan', 'veth', 'tun'];

// /init: the host's root (9p, read-only) under a tmpfs overlay becomes the
// root; the job script named on the kernel command line runs as PID 1.
const INIT = `${INIT_PRELUDE}
jobs=$(arg ngjobs)
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower || echo "${MARK} fatal mount 9p"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,xino=on overlay /newroot || echo "${MARK} fatal mount overlay"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs -o mode=0755 run /newroot/run
exec switch_root /newroot /bin/sh "$jobs"
`;

/** { kernel, initrd } for the lane, built once per kernel and init script. */
export function laneGuest() {
  const k = fetchKernel();
  const tag = createHash('sha256').update(INIT + MODULES.join()).digest('hex').slice(0, 12);
  const initrd = join(CACHE, `vm-lane-${k.version}-${tag}.cpio.gz`);
  if (!existsSync(initrd)) buildInitramfs({ modulesDir: k.modules, modules: MODULES, init: INIT, out: initrd });
  return { kernel: k.vmlinuz, initrd, version: k.version };
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** Jobs run two at a time: the guest has two CPUs. */
const LANES = 2;

/**
 * Run jobs [{ bundle, env }] in one guest boot, two at a time, each under
 * `unshare --net --mount` with `script` (the native runner's namespace
 * set-up) and Node `nodeBin`, killed after jobTimeoutMs. A job's output is
 * printed whole when it ends, between markers. Resolves with [{ text, code }]
 * in job order; a job the guest never finished gets code null and what was
 * seen of it.
 */
export function runInGuest({ jobs, script, nodeBin, workDir, jobTimeoutMs }) {
  const timeoutMs = BOOT_MS + Math.ceil(jobs.length / LANES) * jobTimeoutMs;
  const guest = laneGuest();
  const jobFile = join(workDir, 'vm-jobs.sh');
  const job = (j, i) =>
    `job ${i} env ${Object.entries(j.env).map(([k, v]) => `${k}=${q(v)}`).join(' ')} timeout -s KILL ${Math.ceil(jobTimeoutMs / 1000)} ` +
    `unshare --net --mount -- sh -c ${q(script)} sh ${q(nodeBin)} ${q(j.bundle)}`;
  const lines = [
    '#!/bin/sh',
    // PID 1 of the guest: no job may take it down; every job ends in a marker.
    'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root',
    'echo 1 > /proc/sys/kernel/sysrq',
    'mkdir -p /run/vm-lane',
    // job N CMD...: run CMD, then print its output and status in one piece.
    `job() { n=$1; shift; "$@" </dev/null >/run/vm-lane/$n 2>&1; rc=$?; flock /run/vm-lane/print sh -c 'echo "${MARK} begin $1"; cat "/run/vm-lane/$1"; echo "${MARK} end $1 $2"' sh $n $rc; }`,
    `echo "${MARK} kernel $(uname -r)"`,
    ...Array.from({ length: LANES }, (_, lane) => `(${jobs.map((j, i) => (i % LANES === lane ? `${job(j, i)}; ` : '')).join('')}:) &`),
    'wait',
    `echo "${MARK} done"`,
    'echo o > /proc/sysrq-trigger',
    'sleep 60',
  ];
  writeFileSync(jobFile, lines.join('\n') + '\n');
  chmodSync(jobFile, 0o755);
  const argv = [
    '-machine', 'pc', '-accel', 'tcg', '-cpu', 'max', '-m', '3072', '-smp', String(LANES), '-nographic', '-no-reboot',
    '-kernel', guest.kernel, '-initrd', guest.initrd,
    '-append', `console=ttyS0 panic=-1 quiet loglevel=0 ngjobs=${jobFile}`,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap',
  ];
  return new Promise((resolve) => {
    const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (d) => (out += d.toString().replace(/\r/g, ''));
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      out += `\n[vm-lane] guest timed out after ${timeoutMs} ms, killed\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(parseGuestOutput(out, jobs.length));
    });
  });
}

/** Split the console transcript into each job's output and exit status. */
export function parseGuestOutput(out, count) {
  const results = [];
  for (let i = 0; i < count; i++) {
    const begin = out.indexOf(`${MARK} begin ${i}\n`);
    if (begin < 0) {
      results.push({ text: `[vm-lane] the guest did not finish this job (a job's output comes when it ends); console tail:\n${out.slice(-3000)}`, code: null });
      continue;
    }
    const from = begin + `${MARK} begin ${i}\n`.length;
    const end = out.slice(from).match(new RegExp(`^${MARK} end ${i} (\\d+)$`, 'm'));
    if (!end) {
      results.push({ text: out.slice(from) + '\n[vm-lane] the guest ended before this job did', code: null });
      continue;
    }
    results.push({ text: out.slice(from, from + end.index), code: Number(end[1]) });
  }
  return results;
}

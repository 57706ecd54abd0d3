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
import { nicArgs } from './nics.mjs';

const MARK = '@@NETGRANT-VM';
/** What a boot and power-off may take beyond the jobs themselves. */
const BOOT_MS = 120000;
const MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'ipvlan', 'macvlan', 'macvtap', 'veth', 'tun', '8021q', 'virtio_net'];


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
/** The guest's memory (the overlay's upper layer, a tmpfs, lives in it too). */
const GUEST_MIB = 3072;

/**
 * Run jobs [{ bundle, env }] in one guest boot, two at a time (each lane
 * takes the next job when its last one ends), each under
 * `unshare --net --mount` with `script` (the native runner's namespace
 * set-up) and Node `nodeBin`, killed after jobTimeoutMs. A job's output is
 * printed whole when it ends, between markers; onJob(i, result) hears of
 * each job as it ends. Resolves with [{ text, code, seconds, ooms }] in job
 * order; a job the guest never finished gets code null and what was seen
 * of it.
 */
export function runInGuest({ jobs, script, nodeBin, workDir, jobTimeoutMs, onJob }) {
  const timeoutMs = BOOT_MS + Math.ceil(jobs.length / LANES) * jobTimeoutMs;
  const jobTimeoutS = Math.ceil(jobTimeoutMs / 1000);
  const guest = laneGuest();
  const jobFile = join(workDir, 'vm-jobs.sh');
  const job = (j, i) =>
    `j${i}() { env ${Object.entries(j.env).map(([k, v]) => `${k}=${q(v)}`).join(' ')} timeout -s KILL ${jobTimeoutS} ` +
    `unshare --net --mount -- sh -c ${q(script)} sh ${q(nodeBin)} ${q(j.bundle)}; }`;
  const lines = [
    '#!/bin/sh',
    // PID 1 of the guest: no job may take it down; every job ends in a marker.
    'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root',
    'echo 1 > /proc/sys/kernel/sysrq',
    'mkdir -p /run/vm-lane',
    ...jobs.map(job),
    // job N: run jN, then print its output, status, seconds taken and the
    // guest's OOM kills meanwhile (/proc/vmstat oom_kill) in one piece.
    'ooms() { awk \'$1 == "oom_kill" { print $2 }\' /proc/vmstat; }',
    `job() { n=$1; t0=$(date +%s); o0=$(ooms); j$n </dev/null >/run/vm-lane/$n 2>&1; rc=$?; t=$(($(date +%s) - t0)); o=$(($(ooms) - o0)); ` +
      `flock /run/vm-lane/print sh -c 'echo "${MARK} begin $1"; cat "/run/vm-lane/$1"; echo "${MARK} end $1 $2 $3 $4"' sh $n $rc $t $o; }`,
    // A lane takes the next job number from a shared counter until none is left.
    'echo 0 > /run/vm-lane/next',
    `next() { flock /run/vm-lane/next sh -c 'n=$(cat /run/vm-lane/next); echo $((n + 1)) > /run/vm-lane/next; echo $n'; }`,
    `lane() { while n=$(next) && [ "$n" -lt ${jobs.length} ]; do job $n; done; }`,
    `echo "${MARK} kernel $(uname -r)"`,
    ...Array.from({ length: LANES }, () => 'lane &'),
    'wait',
    `echo "${MARK} done"`,
    'echo o > /proc/sysrq-trigger',
    'sleep 60',
  ];
  writeFileSync(jobFile, lines.join('\n') + '\n');
  chmodSync(jobFile, 0o755);
  const argv = [
    '-machine', 'pc', '-accel', 'tcg', '-cpu', 'max', '-m', String(GUEST_MIB), '-smp', String(LANES), '-nographic', '-no-reboot',
    '-kernel', guest.kernel, '-initrd', guest.initrd,
    '-append', `console=ttyS0 panic=-1 quiet loglevel=0 ngjobs=${jobFile}`,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap',
    ...nicArgs(),
  ];
  return new Promise((resolve) => {
    const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const told = new Set();
    // A whole end line only: output arrives in chunks, and a chunk may end in the middle of it.
    const endRe = new RegExp(`^${MARK} end (\\d+) [^\\n]*\\n`, 'gm');
    const take = (d) => {
      out += d.toString().replace(/\r/g, '');
      if (!onJob) return;
      // Tell of every job whose end marker has come.
      for (const m of out.matchAll(endRe)) {
        const i = Number(m[1]);
        if (told.has(i) || i >= jobs.length) continue;
        told.add(i);
        onJob(i, parseJob(out, i, jobTimeoutS));
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      out += `\n[vm-lane] guest timed out after ${timeoutMs} ms, killed\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      const results = parseGuestOutput(out, jobs.length, jobTimeoutS);
      if (onJob) for (const [i, r] of results.entries()) if (!told.has(i)) onJob(i, r);
      resolve(results);
    });
  });
}

/** Split the console transcript into each job's output and exit status. */
export function parseGuestOutput(out, count, jobTimeoutS) {
  return Array.from({ length: count }, (_, i) => parseJob(out, i, jobTimeoutS));
}

/** Job i's { text, code, seconds, ooms } from the console transcript. */
function parseJob(out, i, jobTimeoutS) {
  const begin = out.indexOf(`${MARK} begin ${i}\n`);
  if (begin < 0) return { text: `[vm-lane] the guest did not finish this job (a job's output comes when it ends); console tail:\n${out.slice(-3000)}`, code: null };
  const from = begin + `${MARK} begin ${i}\n`.length;
  const end = out.slice(from).match(new RegExp(`^${MARK} end ${i} (\\d+)(?: (\\d+) (\\d+))?$`, 'm'));
  if (!end) return { text: out.slice(from) + '\n[vm-lane] the guest ended before this job did', code: null };
  const code = Number(end[1]);
  const seconds = end[2] === undefined ? undefined : Number(end[2]);
  const ooms = Number(end[3] ?? 0);
  let text = out.slice(from, from + end.index);
  // A SIGKILLed job (137): say who killed it.
  if (code === 137 && ooms > 0) text += `\n[vm-lane] killed after ${seconds} s: the guest's OOM killer killed ${ooms} process(es) meanwhile (guest memory: ${GUEST_MIB} MiB)\n`;
  else if (code === 137 && jobTimeoutS !== undefined && seconds !== undefined && seconds >= jobTimeoutS - 1) text += `\n[vm-lane] killed after ${seconds} s: the per-job timeout (${jobTimeoutS} s, NETGRANT_VM_JOB_TIMEOUT_MS)\n`;
  else if (code === 137) text += `\n[vm-lane] killed (SIGKILL) after ${seconds} s, by neither the timeout nor the OOM killer\n`;
  return { text, code, seconds, ooms };
}

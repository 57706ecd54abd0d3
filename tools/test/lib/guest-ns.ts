// A "guest" without a VM: network namespace NS holds a tap eth0 whose MAC
// is the guest's, and tools/bench/tap-pump.c moves frames between it and
// the lease's tap (made by mktap with the arguments given: name it with -n,
// TAPNAME is the guest end's), as QEMU's tap backend would.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, BASE_ENV, ROOT } from './harness.js';

/** Build the pump into dir (once per file). */
export function buildPump(dir: string): string {
  const pump = join(dir, 'tap-pump');
  const r = run(['cc', '-O2', '-pthread', '-o', pump, join(ROOT, 'tools/bench/tap-pump.c')]);
  if (r.status !== 0) throw new Error(`cc tap-pump: ${r.stderr}`);
  return pump;
}

export interface GuestNs {
  proc: ChildProcess;
  vars: Record<string, string>;
  /** Run a shell command line inside the namespace. */
  sh: (cmd: string) => ReturnType<typeof run>;
}

const SHOW = 'echo "GUESTADDRS=$GUESTADDRS GUESTGATEWAYS=$GUESTGATEWAYS GUESTMAC=$GUESTMAC"';

/** mktap MKTAP_ARGS --guest-mac MAC --vnet-hdr, its guest end eth0 (MAC mac) in a new namespace ns, the pump between. */
export async function guestNs(pump: string, ns: string, mac: string, mktapArgs: string[]): Promise<GuestNs> {
  sh(`ip netns add ${ns}`);
  const fd = openSync(`/run/netns/${ns}`, 'r');
  const proc = spawn('mktap', [...mktapArgs, '--guest-mac', mac, '--vnet-hdr',
    'mktap', '-N', '9', '--any-netns', '-d', '4', '-n', 'eth0', '-a', mac, '--vnet-hdr',
    'sh', '-c', `${SHOW}; exec ${pump} 3 4`],
  { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', fd] });
  closeSync(fd);
  const out = await new Promise<string>((resolve, reject) => {
    let o = '';
    let e = '';
    proc.stdout!.on('data', (d) => {
      o += d;
      if (o.endsWith('\n')) resolve(o.trim());
    });
    proc.stderr!.on('data', (d) => (e += d));
    proc.on('close', (code) => reject(new Error(`exited ${code}: ${e}`)));
  });
  const vars = Object.fromEntries(out.split(' ').map((kv) => kv.split('=') as [string, string]));
  return { proc, vars, sh: (cmd: string) => run(['ip', 'netns', 'exec', ns, 'sh', '-c', cmd]) };
}

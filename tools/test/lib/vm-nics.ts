// The kernel VM lane's NICs (tools/guest/vm-lane.mjs GUEST_NICS): real
// (virtio-net) devices of the guest's initial namespace, in pairs on QEMU
// hubs of their own. A test takes a NIC by MAC into its own namespace under
// a name of its choosing; when that namespace goes, the kernel gives the
// device back to the initial one.
import { run, sh } from './harness.js';

const INITIAL = '/proc/1/ns/net';

interface IpLink { ifname: string; address?: string }

/** The name of the initial namespace's link with MAC mac, or undefined. */
export function initialNicName(mac: string): string | undefined {
  const r = run(['nsenter', `--net=${INITIAL}`, 'ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout || '[]') as IpLink[]).find((l) => l.address === mac)?.ifname;
}

/** Move the guest's NIC with MAC mac into this process's namespace, named name (and left down). */
export function takeNic(mac: string, name: string): void {
  const found = initialNicName(mac);
  if (!found) throw new Error(`no NIC with MAC ${mac} in the guest's initial namespace (is this the VM lane?)`);
  const moved = run(['nsenter', `--net=${INITIAL}`, 'ip', 'link', 'set', 'dev', found, 'netns', String(process.pid)]);
  if (moved.status !== 0) throw new Error(`move ${found} here: ${moved.stderr}`);
  const renamed = sh(`ip -j link show | grep -q '"address":"${mac}"' && ip link set dev ${found} name ${name}`);
  if (renamed.status !== 0) throw new Error(`rename ${found} to ${name}: ${renamed.stderr}`);
}

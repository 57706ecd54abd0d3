// netgrant-cni rootful, kind ipvlan, in the kernel VM lane (this machine's
// kernel has no ipvlan): ADD into a container's namespace on the
// configuration's parent in its default mode (l3s, routed through the
// device) with a pool address, DEL by the attachment's key; then delegated
// IPAM (Debian's host-local): its address on eth0, released by DEL. The
// rest (master, mode and mtu checks, CHECK, GC, a failed ADD, the oracle) is
// the same code as macvlan's, run natively in macvlan.test.ts.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): netgrant-cni ends every chain,
// so both modes run the same code; the VM lane is for the kernel's ipvlan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sh, tempDir } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { gone } from '../../../tools/test/lib/launcher-attacks.js';
import { attach, cni, container, type Json } from '../../../tools/test/lib/cni.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
sh('ip link add ci0 type veth peer name ci1 && ip addr add 10.83.0.1/24 dev ci0 && ip link set ci0 up && ip link set ci1 up');
const dataDir = join(dir, 'ipam');
const net = (extra: Json = {}): Json => ({ cniVersion: '1.0.0', name: 'ngipv', type: 'netgrant-cni', kind: 'ipvlan', master: 'ci0', config: conf('10.83.0.0/24\n'), ...extra });

test('ipvlan: ADD (l3s, routed through the device, a pool address) and DEL by the key; delegated IPAM\'s address, released by DEL', async () => {
  const a = await container();
  try {
    const add = cni(attach('ADD', 'v1', a.netns), net());
    assert.is(add.status, 0, add.stderr + add.stdout);
    assert.match(add.out!.ips[0].address, /^10\.83\.0\.\d+\/24$/);
    assert.equal(add.out!.routes, [{ dst: '0.0.0.0/0' }]);
    const seen = a.inside('ip -d -o link show eth0; ip -o -4 addr show eth0; ip route show default').stdout;
    assert.match(seen, /ipvlan {2}mode l3s/);
    assert.match(seen, new RegExp(` ${add.out!.ips[0].address.replace(/\./g, '\\.')} `));
    assert.match(seen, /default dev eth0/);
    assert.is(cni({ ...attach('DEL', 'v1', ''), CNI_NETNS: '' }, net()).status, 0);
    assert.not.match(a.inside('ip -o link show').stdout, /eth0/);

    const ipam = { type: 'host-local', dataDir, ranges: [[{ subnet: '10.83.0.0/24', rangeStart: '10.83.0.100', rangeEnd: '10.83.0.110' }]] };
    const viaIpam = cni(attach('ADD', 'v2', a.netns), net({ ipam }));
    assert.is(viaIpam.status, 0, viaIpam.stderr + viaIpam.stdout);
    assert.is(viaIpam.out!.ips[0].address, '10.83.0.100/24');
    assert.match(a.inside('ip -o -4 addr show eth0').stdout, / 10\.83\.0\.100\/24 /);
    assert.is(cni(attach('DEL', 'v2', a.netns), net({ ipam })).status, 0);
    assert.equal(existsSync(join(dataDir, 'ngipv')) ? readdirSync(join(dataDir, 'ngipv')).filter((n) => n.startsWith('10.')) : [], []);
    assert.not.match(a.inside('ip -o link show').stdout, /eth0/);
  } finally {
    a.proc.kill('SIGKILL');
    await gone(a.proc);
  }
  sh('ip link del ci0');
  cleanup();
});

test.run();

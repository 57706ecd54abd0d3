// netgrant-cni rootless, kind ipvlan, in the kernel VM lane (this
// machine's kernel has no ipvlan): the plugin as uid 65534 in its own user
// namespace asks a mkipvlan --cni -N service; eth0 in the container is an
// ipvlan on the administrator's parent with a pool address, the
// registry's entry carries the attachment's key under the peer's uid, and
// DEL is answered from it (the plugin deletes eth0 in the namespace it
// owns; the address is held until that namespace goes). Few Node starts:
// under TCG each costs ~0.45 s idle, far more under load.
// The rest of the rootless side (veth, macvlan, forged requests) runs
// natively in rootless.test.ts; mkipvlan -N itself in mkipvlan.vm.test.ts.
//
// @netgrant-test-modes: in-process
// netgrant-cni execs nothing, and the service's chain is mkipvlan's, whose
// own VM file runs -N; one mode keeps the lane's time small.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { sh, tempDir, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { cniClient, delLaunched, endRootless, inside, serviceChain, type Rootless } from '../../../tools/test/lib/cni-rootless.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const sock = join(dir, 'ipvlan.sock');
const { rootlessAdd, plugin } = cniClient(sock);

test('rootless kind ipvlan through a mkipvlan --cni -N service: eth0 an ipvlan with a pool address, the key in the registry under the peer\'s uid, DEL answered from it', async () => {
  // The parent ip0 holds the pool's subnet (the LAN's traffic through an ipvlan is mkipvlan.vm.test.ts's).
  sh('ip link add ip0 type veth peer name ip1 && ip addr add 10.56.0.1/24 dev ip0 && ip link set ip0 up && ip link set ip1 up');
  const srv = await startServer(serviceChain(sock, [NOBODY], ['mkipvlan', '-c', confMaker(dir)('10.56.0.0/24\n'), '-m', 'l2'], []), sock);
  chmodSync(sock, 0o777);
  let r: Rootless | undefined;
  try {
    r = await rootlessAdd({ id: 'i1', config: { kind: 'ipvlan' } });
    assert.is(r.status, 0, r.stderr + JSON.stringify(r.out) + srv.output());
    assert.equal([r.out!.interfaces.length, r.out!.interfaces[0].name], [1, 'eth0']);
    const addr = r.out!.ips[0].address as string;
    assert.match(addr, /^10\.56\.0\.\d+\/24$/);
    assert.match(inside(r.container, 'ip -d -o link show eth0').stdout, /ipvlan/);
    assert.match(sh('cat /run/netgrant/launched/*').stdout, new RegExp(`by=mkipvlan uid=${NOBODY} .*addrs=${addr} client=1 cni=ngnet/i1/eth0\n`));
    const cfg = { cniVersion: '1.0.0', kind: 'ipvlan' };
    // (CHECK is kind-independent but for the kind's name: rootless.test.ts runs it for veth and macvlan.)
    await delLaunched(plugin, srv, r, 'i1', cfg);
  } finally {
    await endRootless(r);
    await srv.stop();
    sh('ip link del ip0');
  }
});

test.after(cleanup);
test.run();

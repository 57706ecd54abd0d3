// mkphys natively: everything refused before a NIC moves (this machine's
// test namespaces hold no physical device; the leases themselves run in the
// kernel VM lane, mkphys.vm.test.ts, on the guest's virtio NICs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, failsWith, tempDir } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
sh('ip link add pv0 type veth peer name pv1');

test('refused before anything moves: not listed, not there, not physical, no -P, bad names, options and configurations', () => {
  const c = conf('interface pv0 nope0\n');
  const cases: [string[], number, RegExp][] = [
    [['-c', c], 100, /-P IFNAME is required/],
    [['-c', c, '-P', 'a/b'], 100, /-P: invalid interface name/],
    [['-c', c, '-P', 'pv0', '-i', 'way-too-long-name0'], 100, /-i: invalid interface name/],
    [['-c', c, '-P', 'pv1'], 1, /-P pv1: not an interface the configuration allows/],
    [['-c', c, '-P', 'nope0'], 100, /-P nope0: no such interface/],
    [['-c', c, '-P', 'pv0'], 100, /-P pv0: not a physical device/],
    [['-c', c, '-P', 'pv0', '-N', '2'], 100, /-N is not a namespace/],
    [['-c', c, '-P', 'pv0', '-t', '0'], 100, /-t: out of range/],
    [['-c', conf('allow pv0\n'), '-P', 'pv0'], 100, /c\d+\.conf:1: unknown directive "allow"/],
    [['-c', conf('interface\n'), '-P', 'pv0'], 100, /interface needs an interface name/],
    [['-c', conf('# none\n'), '-P', 'pv0'], 100, /no interface listed/],
    [['-c', conf('interface pv0\n', 0o666), '-P', 'pv0'], 100, /writable/],
    [['-c', join(dir, 'absent.conf'), '-P', 'pv0'], 111, /ENOENT/],
  ];
  for (const [args, code, re] of cases) {
    const r = run(['mkphys', ...args, 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'mkphys', code, re), null, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
  }
  assert.is(run(['ip', 'link', 'show', 'pv0']).status, 0, 'nothing moved');
  if (existsSync('/run/netgrant/phys')) assert.equal(readdirSync('/run/netgrant/phys').filter((e) => e.includes('pv')), []);
});

test.after(() => {
  sh('ip link del pv0');
  cleanup();
});
test.run();

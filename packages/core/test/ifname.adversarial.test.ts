// Interface names, generated at random with the kernel's edge bytes, judged
// by core's validator and by the real kernel (this test's own namespace):
// TUNSETIFF from Python with the raw bytes (the kernel's dev_valid_name on
// register), and `ip link add NAME type veth` for a sample.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { validIfName, checkIfName, ifNameProblem, UsageError } from '@netgrant/core';
import { run, sh, PYTHON } from '../../../tools/test/lib/harness.js';
import { ifNameBytes, params, SEED } from '../../../tools/test/lib/arbitraries.js';

// Reads hex names, one per line; for each creates a non-persistent tap with
// exactly those bytes (no NUL: the 16-byte ifr_name field is padded with
// NULs, a 16th byte is the kernel's to drop) and prints "ok HEX-OF-NAME"
// or "err ERRNO".
const TUN_ORACLE = `
import fcntl, os, struct, sys
for line in sys.stdin:
    name = bytes.fromhex(line.strip())
    fd = os.open('/dev/net/tun', os.O_RDWR)
    try:
        r = fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', name, 0x1002))
        print('ok', r[:16].split(b'\\0')[0].hex())
    except OSError as e:
        print('err', e.errno)
    finally:
        os.close(fd)
`;

function kernelVerdicts(names: Buffer[]): string[] {
  const r = run([PYTHON, '-c', TUN_ORACLE], { input: Buffer.from(names.map((n) => n.toString('hex')).join('\n') + '\n') });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

const names = fc.sample(ifNameBytes, { seed: SEED, numRuns: 600 }).filter((n) => n.length > 0 && n.length <= 16 && !n.subarray(0, 15).includes(0));

test('validator and kernel agree on every generated name without % (TUNSETIFF with the raw bytes)', () => {
  const plain = names.filter((n) => n.length <= 15 && !n.includes(0x25));
  const verdicts = kernelVerdicts(plain);
  let accepted = 0;
  plain.forEach((n, i) => {
    const v = verdicts[i]!;
    const kernelOk = v.startsWith('ok') || v === 'err 17'; // EEXIST: a valid name that exists (lo)
    assert.is(validIfName(n), kernelOk, `${n.toString('hex')}: validator ${ifNameProblem(n)}, kernel ${v}`);
    if (v.startsWith('ok')) {
      accepted++;
      assert.is(v.slice(3), n.toString('hex'), 'the kernel used the name byte for byte');
    }
  });
  assert.ok(accepted > 50 && accepted < plain.length, `both verdicts occur (${accepted} of ${plain.length} accepted)`);
});

test('16-byte names: the kernel silently truncates them (CVE-2019-13164), the validator refuses every one', () => {
  // Valid names padded with 'a' to 16 bytes.
  const long = names.filter((n) => n.length <= 15 && validIfName(n) && !n.includes(0x25)).map((n) => Buffer.concat([n, Buffer.alloc(16 - n.length, 0x61)]));
  assert.ok(long.length > 5, `${long.length} samples`);
  const verdicts = kernelVerdicts(long);
  long.forEach((n, i) => {
    assert.is(verdicts[i], `ok ${n.subarray(0, 15).toString('hex')}`, 'TUNSETIFF took the first 15 bytes');
    assert.not.ok(validIfName(n));
  });
});

test('names with %: whatever the kernel accepts as a template, the validator accepts', () => {
  const templates = names.filter((n) => n.length <= 15 && n.includes(0x25));
  const verdicts = kernelVerdicts(templates);
  templates.forEach((n, i) => {
    if (verdicts[i]!.startsWith('ok')) assert.ok(validIfName(n), n.toString('hex'));
  });
});

test('ip link add NAME type veth agrees for a sample of argv-safe names', () => {
  const sample = names.filter((n) => n.length <= 15 && !n.includes(0x25) && n.toString('utf8') === n.toString('latin1') && n[0] !== 0x2d).slice(0, 40);
  assert.ok(sample.length >= 20, `${sample.length} samples`);
  for (const n of sample) {
    const name = n.toString('latin1');
    const r = run(['ip', 'link', 'add', 'name', name, 'type', 'veth', 'peer', 'name', 'advpeer0']);
    if (r.status === 0) sh('ip link del advpeer0');
    // ip refuses some names itself before asking the kernel; a name it passes on gets the kernel's verdict.
    if (/not a valid ifname/.test(r.stderr)) assert.not.ok(validIfName(n), `${JSON.stringify(name)}: ip refuses it, the validator accepts it`);
    else assert.is(r.status === 0 || /File exists/.test(r.stderr), validIfName(n), `${JSON.stringify(name)}: ${r.stderr}`);
  }
});

test('checkIfName: any string either comes back unchanged or is one UsageError line naming it', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 20 }), ifNameBytes.map((b) => b.toString('utf8'))), (s) => {
      try {
        assert.is(checkIfName(s, '-n'), s);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        assert.ok(!e.message.includes('\n') && e.message.startsWith(`-n: invalid interface name ${JSON.stringify(s)}: `), e.message);
      }
    }),
    params(2000),
  );
});

test.run();

// core's eBPF assembler and bpf(2) wrappers against the real kernel: known
// encodings (from the kernel's instruction-set document), labels, the
// verifier's log in a refused load's error, array maps, atomic cmpxchg run
// by the kernel (BPF_PROG_TEST_RUN), and tc filter dumps on a device without
// a clsact qdisc; and loads made while signals keep arriving (a profiler's
// SIGPROF), which the verifier gives up on (EAGAIN) unless they are blocked.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Asm, R0, R1, R2, R3, FP, loadProgram, createMap, mapLookup, mapUpdate, testRun, close, listOpenFds, isCloexec,
  BPF_PROG_TYPE_SCHED_CLS, BPF_MAP_TYPE_ARRAY, BPF_FUNC, SysError, withNetlink, createLink, getLink, dumpFilters, addClsact, deleteClsact,
} from '@netgrant/core';
import { caught } from '../../../tools/test/lib/harness.js';

const hex = (a: Asm) => a.assemble().toString('hex');
const FRAME = Buffer.concat([Buffer.alloc(12, 0xff), Buffer.from([0x08, 0x00]), Buffer.alloc(46)]);

test('encodings: mov, alu, ldx/stx, ld_imm64 (map fd pseudo), jumps, call, exit, cmpxchg', () => {
  assert.is(hex(new Asm().mov64(R0, 2)), 'b700000002000000');
  assert.is(hex(new Asm().mov64(R1, R2)), 'bf21000000000000');
  assert.is(hex(new Asm().mov32(R0, -1)), 'b4000000ffffffff');
  assert.is(hex(new Asm().alu64('lsh', R2, 16)), '6702000010000000');
  assert.is(hex(new Asm().ldx('h', R2, FP, -58)), '69a2c6ff00000000');
  assert.is(hex(new Asm().stx('dw', FP, -16, R3)), '7b3af0ff00000000');
  assert.is(hex(new Asm().st('w', FP, -8, 0)), '620af8ff00000000');
  assert.is(hex(new Asm().ldImm64(R2, 0x1122334455667788n)), '1802000088776655' + '0000000044332211');
  assert.is(hex(new Asm().ldMapFd(R1, 7)), '1811000007000000' + '0000000000000000');
  assert.is(hex(new Asm().call(BPF_FUNC.skb_load_bytes)), '850000001a000000');
  assert.is(hex(new Asm().exit()), '9500000000000000');
  assert.is(hex(new Asm().cmpxchg('dw', R1, 0, R3)), 'db310000f1000000');
  // Labels: forward and backward offsets count instructions after the jump; ld_imm64 takes two slots.
  const a = new Asm().jmp('jeq', R2, 1, 'end').ldImm64(R3, 1n).label('end').jmp32('jne', R2, R3, 'end').ja('end').exit();
  assert.is(hex(a), '1502020001000000' + '1803000001000000' + '0000000000000000' + '5e32ffff00000000' + '0500feff00000000' + '9500000000000000');
});

test('assembly errors: undefined and duplicate labels, bad registers and immediates', () => {
  assert.match(caught(() => new Asm().ja('nowhere').exit().assemble())!.message, /undefined label nowhere/);
  assert.match(caught(() => new Asm().label('x').label('x'))!.message, /defined twice/);
  assert.match(caught(() => new Asm().mov64({ reg: 11 }, 0))!.message, /bad register 11/);
  assert.match(caught(() => new Asm().mov64(R0, 2 ** 33))!.message, /not 32-bit/);
  assert.match(caught(() => new Asm().ldx('w', R0, FP, 40000))!.message, /not 16-bit/);
});

test('a program the verifier refuses: SysError with its log; nothing left open', () => {
  const fds = listOpenFds();
  const e = caught(() => loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: new Asm().mov64(R0, R2).exit().assemble(), license: 'GPL', name: 'bad' }));
  assert.is(e?.name, 'SysError');
  assert.is(e?.code, 'EACCES', e?.message);
  assert.match(e!.message, /load bpf program bad: .*verifier: .*R2 !read_ok/);
  assert.match(caught(() => loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: Buffer.alloc(0), license: 'GPL' }))!.message, /empty/);
  assert.match(caught(() => loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: new Asm().mov64(R0, 0).exit().assemble(), license: 'GPL', name: 'no spaces' }))!.message, /bad bpf object name/);
  assert.equal(listOpenFds(), fds);
});

test('array map: create, update, lookup; fds close-on-exec', () => {
  const m = createMap({ type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 2, name: 'ng_test' });
  try {
    assert.ok(isCloexec(m));
    const k = (n: number) => Buffer.from([n, 0, 0, 0]);
    assert.equal(mapLookup(m, k(1), 8), Buffer.alloc(8), 'arrays start zeroed');
    mapUpdate(m, k(1), Buffer.from('0102030405060708', 'hex'));
    assert.is(mapLookup(m, k(1), 8)!.toString('hex'), '0102030405060708');
    assert.is(mapLookup(m, k(5), 8), null, 'out of range: ENOENT');
    assert.is(caught(() => mapUpdate(m, k(5), Buffer.alloc(8)))?.code, 'E2BIG');
  } finally {
    close(m);
  }
});

test('cmpxchg, run by the kernel: the first run claims the slot, the second sees it taken', () => {
  const m = createMap({ type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 1 });
  try {
    // r0 = old value == 0 ? 1 (claimed) : 2; the slot gets 0x2a.
    const a = new Asm()
      .st('w', FP, -4, 0).ldMapFd(R1, m).mov64(R2, FP).alu64('add', R2, -4).call(BPF_FUNC.map_lookup_elem)
      .jmp('jeq', R0, 0, 'out').mov64(R1, R0).mov64(R3, 0x2a).mov64(R0, 0).cmpxchg('dw', R1, 0, R3)
      .jmp('jne', R0, 0, 'taken').mov64(R0, 1).exit()
      .label('taken').mov64(R0, 2).exit()
      .label('out').mov64(R0, 3).exit();
    const p = loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: a.assemble(), license: 'Dual MIT/GPL', name: 'ng_cas' });
    try {
      assert.ok(isCloexec(p));
      assert.is(testRun(p, FRAME), 1);
      assert.is(mapLookup(m, Buffer.alloc(4), 8)!.readBigUInt64LE(0), 0x2an);
      assert.is(testRun(p, FRAME), 2);
    } finally {
      close(p);
    }
  } finally {
    close(m);
  }
});

test('tc: dumps of a device without clsact are empty; clsact twice is EEXIST; bad index or hook is an InputError', () => {
  withNetlink((nl) => {
    createLink(nl, { kind: 'bridge' }, { name: 'brbpf0' });
    const i = getLink(nl, 'brbpf0')!.index;
    assert.equal(dumpFilters(nl, i, 'ingress'), []);
    addClsact(nl, i);
    assert.is(caught(() => addClsact(nl, i))?.code, 'EEXIST');
    assert.equal(dumpFilters(nl, i, 'egress'), []);
    deleteClsact(nl, i);
    assert.is(caught(() => dumpFilters(nl, 0, 'ingress'))?.name, 'InputError');
    assert.is(caught(() => dumpFilters(nl, i, 'sideways' as 'ingress'))?.name, 'InputError');
    assert.is(caught(() => addClsact(nl, 999999))?.code, 'ENODEV');
    assert.equal(dumpFilters(nl, 999999, 'ingress'), [], 'no such device: an empty dump');
    assert.ok(SysError);
  });
});

/** A straight-line program long enough that a signal often arrives while the verifier walks it. */
const longProgram = () => {
  const a = new Asm();
  for (let i = 0; i < 400; i++) a.mov64(R0, i);
  return a.exit().assemble();
};

test('loads while SIGPROF keeps arriving (node --cpu-prof every 100 µs): loaded with signals blocked, never given up on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ng-bpf-prof-'));
  try {
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '100', process.argv[1]!], {
      env: { ...process.env, NETGRANT_CHILD: 'bpf-signals' },
      encoding: 'utf8',
      timeout: 60000,
    });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), 'loaded 60');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

if (process.env.NETGRANT_CHILD === 'bpf-signals') {
  const insns = longProgram();
  let n = 0;
  for (let i = 0; i < 60; i++) {
    close(loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns, license: 'GPL', name: 'signals' }));
    n++;
  }
  process.stdout.write(`loaded ${n}\n`);
} else {
  test.run();
}

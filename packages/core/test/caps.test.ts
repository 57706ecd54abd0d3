// Capabilities and raw credential calls. Drops are irreversible, so every
// case that changes the process runs in a child: this bundle started again
// with NETGRANT_CHILD=<case>, which does the case and prints JSON or execs
// a shell that reports /proc/self/status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chownSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import {
  CAP_NAMES, CAP_CHOWN, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SETPCAP, capBit, capName, capNumber, capMask, capsOf, capNames,
  parseCapList, capLastCap, allCaps, capGet, capSet, withEffective, boundingHas, boundingSet, boundingDrop, ambientHas,
  ambientSet, ambientRaise, ambientLower, ambientClear, getSecurebits, setSecurebits, getNoNewPrivs, setNoNewPrivs,
  getKeepCaps, setKeepCaps, setresuid, setresgid, setgroups, dropTo, exec, SysError, UsageError,
  SECBIT_KEEP_CAPS, SECBIT_NOROOT, SECBIT_NOROOT_LOCKED,
} from '@netgrant/core';
import { NOBODY, tempDir, caught } from '../../../tools/test/lib/harness.js';

const STATUS_SCRIPT = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Uid|Gid|Groups|Threads):" /proc/self/status';

function out(obj: unknown): never {
  writeSync(1, JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)) + '\n');
  process.exit(0);
}

/** The Name: value lines of a /proc status text. */
function fields(text: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^(\w+):\s+(.*)$/);
    if (m) r[m[1]!] = m[2]!.trim();
  }
  return r;
}

const hex = (m: bigint) => m.toString(16).padStart(16, '0');

const CHILD = process.env.NETGRANT_CHILD;
if (CHILD) {
  runChild(CHILD);
} else {
  defineTests();
  test.run();
}

function runChild(name: string): void {
  switch (name) {
    case 'drop-root':
      dropTo(capBit(CAP_NET_ADMIN));
      exec(['/bin/sh', '-c', STATUS_SCRIPT]);
      break;
    case 'drop-none':
      dropTo(0n);
      exec(['/bin/sh', '-c', `${STATUS_SCRIPT}; ip link add ngcapv0 type veth peer name ngcapv1 2>/dev/null && echo created || echo refused`]);
      break;
    case 'drop-nobody':
      dropTo(capBit(CAP_NET_ADMIN) | capBit(CAP_NET_RAW), { uid: NOBODY, gid: NOBODY, groups: [] });
      exec(['/bin/sh', '-c', `id; ${STATUS_SCRIPT}; ip link add ngcapv0 type veth peer name ngcapv1 && echo created; ip link del ngcapv0; touch /root/ngcap-probe 2>/dev/null && echo wrote || echo denied`]);
      break;
    case 'drop-groups':
      dropTo(0n, { uid: 1000, gid: 1000, groups: [1000, 4, 27] });
      exec(['/bin/sh', '-c', 'id -u; id -g; id -G']);
      break;
    case 'drop-missing': {
      // No NET_ADMIN in permitted: dropTo must refuse, naming it.
      const s = capGet();
      capSet({ ...s, effective: s.effective & ~capBit(CAP_NET_ADMIN), permitted: s.permitted & ~capBit(CAP_NET_ADMIN) });
      out({ err: caught(() => dropTo(capBit(CAP_NET_ADMIN) | capBit(CAP_NET_RAW))), prm: capGet().permitted });
      break;
    }
    case 'capset': {
      const before = capGet();
      capSet({ effective: capBit(CAP_NET_ADMIN), permitted: capBit(CAP_NET_ADMIN) | capBit(CAP_NET_RAW), inheritable: capBit(CAP_NET_RAW) });
      const after = capGet();
      // NET_RAW back into effective works (permitted); CHOWN does not.
      capSet({ ...after, effective: after.effective | capBit(CAP_NET_RAW) });
      const raised = capGet().effective;
      const eperm = caught(() => capSet({ ...after, effective: after.effective | capBit(CAP_CHOWN) }));
      const epermPrm = caught(() => capSet({ ...after, permitted: after.permitted | capBit(CAP_CHOWN) }));
      out({ before, after, raised, eperm, epermPrm });
      break;
    }
    case 'with-effective': {
      const { dir, cleanup } = tempDir();
      const file = `${dir}/f`;
      writeFileSync(file, '');
      const s = capGet();
      capSet({ ...s, effective: 0n });
      const chown = () => chownSync(file, NOBODY, NOBODY);
      const without = caught(chown);
      const inside = withEffective(capBit(CAP_CHOWN), () => {
        chown();
        return capGet().effective;
      });
      const afterOk = capGet().effective;
      const thrown = caught(() =>
        withEffective(capBit(CAP_CHOWN), () => {
          throw new Error('boom');
        }),
      );
      const afterThrow = capGet().effective;
      const again = caught(chown);
      // Not permitted: EPERM, effective unchanged.
      capSet({ ...capGet(), permitted: s.permitted & ~capBit(CAP_NET_ADMIN) });
      let ran = false;
      const notPermitted = caught(() => withEffective(capBit(CAP_NET_ADMIN), () => (ran = true)));
      cleanup();
      out({ without, inside, afterOk, thrown, afterThrow, again, notPermitted, ran, effEnd: capGet().effective });
      break;
    }
    case 'bounding': {
      const had = boundingHas(CAP_NET_ADMIN);
      boundingDrop(CAP_NET_ADMIN);
      const has = boundingHas(CAP_NET_ADMIN);
      const set = boundingSet();
      const invalid = caught(() => boundingHas(capLastCap() + 1));
      const range = caught(() => boundingHas(64));
      // Without CAP_SETPCAP in effective, dropping fails with EPERM.
      const s = capGet();
      capSet({ ...s, effective: s.effective & ~capBit(CAP_SETPCAP) });
      const eperm = caught(() => boundingDrop(CAP_NET_RAW));
      const raw = boundingHas(CAP_NET_RAW);
      out({ had, has, set, invalid, range, eperm, raw, status: fields(readFileSync('/proc/thread-self/status', 'utf8')).CapBnd });
      break;
    }
    case 'ambient': {
      const start = ambientSet();
      const notInh = caught(() => ambientRaise(CAP_NET_ADMIN));
      const s = capGet();
      capSet({ ...s, inheritable: capBit(CAP_NET_ADMIN) | capBit(CAP_NET_RAW) });
      ambientRaise(CAP_NET_ADMIN);
      ambientRaise(CAP_NET_RAW);
      const raised = ambientSet();
      const has = ambientHas(CAP_NET_ADMIN);
      ambientLower(CAP_NET_ADMIN);
      const lowered = ambientSet();
      const hasAfter = ambientHas(CAP_NET_ADMIN);
      const status = fields(readFileSync('/proc/thread-self/status', 'utf8')).CapAmb;
      ambientClear();
      const cleared = ambientSet();
      const invalid = caught(() => ambientHas(capLastCap() + 1));
      out({ start, notInh, raised, has, lowered, hasAfter, status, cleared, invalid });
      break;
    }
    case 'securebits': {
      const start = getSecurebits();
      const keepStart = getKeepCaps();
      setKeepCaps(true);
      const afterKeep = getSecurebits();
      const keep = getKeepCaps();
      setKeepCaps(false);
      const afterClear = getSecurebits();
      setSecurebits(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED);
      const locked = getSecurebits();
      const eperm = caught(() => setSecurebits(0));
      out({ start, keepStart, afterKeep, keep, afterClear, locked, eperm });
      break;
    }
    case 'nnp': {
      const before = getNoNewPrivs();
      setNoNewPrivs();
      const after = getNoNewPrivs();
      const status = fields(readFileSync('/proc/thread-self/status', 'utf8')).NoNewPrivs;
      out({ before, after, status });
      break;
    }
    case 'ids': {
      setgroups([4, 27]);
      setresgid(1000, 1001, 1002);
      setresuid(2000, NOBODY, 2002);
      const mine = fields(readFileSync('/proc/thread-self/status', 'utf8'));
      // Raw syscalls: the other Node threads keep uid 0.
      const others = readdirSync('/proc/self/task')
        .filter((t) => t !== String(process.pid))
        .map((t) => fields(readFileSync(`/proc/self/task/${t}/status`, 'utf8')).Uid);
      const back = caught(() => setresuid(0, 0, 0));
      const bad = caught(() => setresuid(-2, 0, 0));
      const badGroup = caught(() => setgroups([-1]));
      out({ uid: mine.Uid, gid: mine.Gid, groups: mine.Groups, others, back, bad, badGroup });
      break;
    }
    case 'ids-clear': {
      setgroups([4, 27]);
      const set = fields(readFileSync('/proc/thread-self/status', 'utf8')).Groups;
      setgroups([]);
      const cleared = fields(readFileSync('/proc/thread-self/status', 'utf8')).Groups;
      setresgid(-1, NOBODY, -1);
      const gid = fields(readFileSync('/proc/thread-self/status', 'utf8')).Gid;
      out({ set, cleared, gid });
      break;
    }
    default:
      writeSync(2, `unknown child case ${name}\n`);
      process.exit(99);
  }
}

function child(name: string): { status: number | null; stdout: string; stderr: string; json: any } {
  const r = spawnSync(process.execPath, [process.argv[1]!], {
    env: { ...process.env, NETGRANT_CHILD: name },
    encoding: 'utf8',
    timeout: 30000,
  });
  let json: any = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not a JSON case */
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

function defineTests(): void {
  test('capability names both ways, full table 0..40', () => {
    assert.is(CAP_NAMES.length, 41);
    for (let i = 0; i < CAP_NAMES.length; i++) {
      const n = capName(i);
      assert.is(capNumber(n), i);
      assert.is(capNumber(n.toUpperCase()), i);
      assert.is(capNumber(n.slice(4)), i);
      assert.is(capNumber(n.slice(4).toUpperCase()), i);
      assert.is(capNumber(`cap_${i}`), i);
      assert.is(capNumber(String(i)), i);
    }
    assert.is(capName(12), 'cap_net_admin');
    assert.is(capNumber('cap_net_admin'), 12);
    assert.is(capNumber('CAP_NET_ADMIN'), 12);
    assert.is(capNumber('Net_Admin'), 12);
    assert.is(capName(0), 'cap_chown');
    assert.is(capName(40), 'cap_checkpoint_restore');
    assert.is(capName(38), 'cap_perfmon');
    assert.is(capName(39), 'cap_bpf');
    assert.is(capName(21), 'cap_sys_admin');
    assert.is(capName(41), 'cap_41');
    assert.is(capNumber('cap_41'), 41);
    assert.is(capNumber('63'), 63);
  });

  test('unknown capability names and numbers are usage errors', () => {
    for (const bad of ['cap_net_admins', 'netadmin', '', 'cap_', '64', 'cap_64', '-1', '012', '1e1', ' 12', 'cap_net_admin ', 'all']) {
      const e = caught(() => capNumber(bad));
      assert.ok(e, `rejects ${JSON.stringify(bad)}`);
      assert.is(e!.name, 'UsageError');
      assert.match(e!.message, 'unknown capability');
    }
    assert.throws(() => capName(64), (e: unknown) => e instanceof UsageError);
    assert.throws(() => capName(-1), (e: unknown) => e instanceof UsageError);
    assert.throws(() => capMask([64]), (e: unknown) => e instanceof UsageError);
    assert.throws(() => capMask(['nope']), (e: unknown) => e instanceof UsageError && /nope/.test(e.message));
  });

  test('masks: capBit, capMask, capsOf, capNames, parseCapList', () => {
    assert.is(capBit(CAP_NET_ADMIN), 0x1000n);
    assert.is(capBit(40), 1n << 40n);
    assert.is(capMask(['net_admin', 'CAP_NET_RAW']), 0x3000n);
    assert.is(capMask([12, 13, 'cap_12']), 0x3000n);
    assert.equal(capsOf(0x3001n | (1n << 40n)), [0, 12, 13, 40]);
    assert.equal(capNames(0x3000n), ['cap_net_admin', 'cap_net_raw']);
    assert.is(parseCapList(''), 0n);
    assert.is(parseCapList('net_admin,CAP_NET_RAW'), 0x3000n);
    assert.is(parseCapList('ALL'), allCaps());
    assert.throws(() => parseCapList('net_admin,,net_raw'), (e: unknown) => e instanceof UsageError);
    assert.throws(() => parseCapList('net_admin,bogus'), (e: unknown) => e instanceof UsageError);
  });

  test('cap_last_cap and the sets of this (root) process', () => {
    assert.is(capLastCap(), Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')));
    assert.is(allCaps(), (1n << BigInt(capLastCap() + 1)) - 1n);
    const st = fields(readFileSync('/proc/thread-self/status', 'utf8'));
    const s = capGet();
    assert.is(hex(s.effective), st.CapEff);
    assert.is(hex(s.permitted), st.CapPrm);
    assert.is(hex(s.inheritable), st.CapInh);
    assert.is(hex(boundingSet()), st.CapBnd);
    assert.is(hex(ambientSet()), st.CapAmb);
    assert.ok(boundingHas(CAP_NET_ADMIN));
    assert.is(getNoNewPrivs(), false);
    assert.is(getKeepCaps(), false);
    assert.is(getSecurebits(), 0);
  });

  test('dropTo as root keeping NET_ADMIN: every set 0x1000 and NoNewPrivs after exec', () => {
    const r = child('drop-root');
    assert.is(r.status, 0, r.stderr);
    const f = fields(r.stdout);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.is(f[k], '0000000000001000', k);
    assert.is(f.NoNewPrivs, '1');
    assert.is(f.Threads, '1');
    assert.match(f.Uid!, /^0\s+0\s+0\s+0$/);
  });

  test('dropTo keeping nothing: all sets empty, NET_ADMIN work refused', () => {
    const r = child('drop-none');
    assert.is(r.status, 0, r.stderr);
    const f = fields(r.stdout);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.is(f[k], '0000000000000000', k);
    assert.is(f.NoNewPrivs, '1');
    assert.match(r.stdout, /^refused$/m);
  });

  test('dropTo with uid/gid 65534 and no groups keeps NET_ADMIN+NET_RAW through exec', () => {
    const r = child('drop-nobody');
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^uid=65534\(nobody\) gid=65534\(nogroup\) groups=65534\(nogroup\)$/m);
    const f = fields(r.stdout);
    assert.match(f.Uid!, /^65534\s+65534\s+65534\s+65534$/);
    assert.match(f.Gid!, /^65534\s+65534\s+65534\s+65534$/);
    assert.is(f.Groups ?? '', '');
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.is(f[k], '0000000000003000', k);
    assert.is(f.NoNewPrivs, '1');
    assert.match(r.stdout, /^created$/m);
    assert.match(r.stdout, /^denied$/m);
  });

  test('dropTo sets supplementary groups exactly', () => {
    const r = child('drop-groups');
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, '1000\n1000\n1000 4 27\n');
  });

  test('dropTo refuses to keep a capability that is not permitted', () => {
    const r = child('drop-missing');
    assert.is(r.status, 0, r.stderr);
    assert.is(r.json.err.name, 'SysError');
    assert.is(r.json.err.code, 'EPERM');
    assert.match(r.json.err.message, 'cap_net_admin');
    assert.not.match(r.json.err.message, 'cap_net_raw');
  });

  test('capset: lowering works, raising beyond permitted is EPERM', () => {
    const r = child('capset');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.before.permitted, `0x${capGet().permitted.toString(16)}`);
    assert.equal(j.after, { effective: '0x1000', permitted: '0x3000', inheritable: '0x2000' });
    assert.is(j.raised, '0x3000');
    assert.is(j.eperm.code, 'EPERM');
    assert.is(j.eperm.name, 'SysError');
    assert.match(j.eperm.message, 'set capabilities');
    assert.is(j.epermPrm.code, 'EPERM');
  });

  test('withEffective raises around one call and restores, also on throw', () => {
    const r = child('with-effective');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.without.code, 'EPERM');
    assert.is(j.inside, '0x1');
    assert.is(j.afterOk, '0x0');
    assert.is(j.thrown.message, 'boom');
    assert.is(j.afterThrow, '0x0');
    assert.is(j.again.code, 'EPERM');
    assert.is(j.notPermitted.code, 'EPERM');
    assert.is(j.ran, false);
    assert.is(j.effEnd, '0x0');
  });

  test('bounding set: read, drop, EINVAL past cap_last_cap, EPERM without CAP_SETPCAP', () => {
    const r = child('bounding');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.had, true);
    assert.is(j.has, false);
    const expected = boundingSet() & ~0x1000n;
    assert.is(j.set, `0x${expected.toString(16)}`);
    assert.is(j.status, hex(expected));
    assert.is(j.invalid.code, 'EINVAL');
    assert.is(j.range.name, 'UsageError');
    assert.is(j.eperm.code, 'EPERM');
    assert.match(j.eperm.message, 'cap_net_raw');
    assert.is(j.raw, true);
  });

  test('ambient set: raise needs inheritable, raise/lower/clear', () => {
    const r = child('ambient');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.start, '0x0');
    assert.is(j.notInh.code, 'EPERM');
    assert.is(j.raised, '0x3000');
    assert.is(j.has, true);
    assert.is(j.lowered, '0x2000');
    assert.is(j.hasAfter, false);
    assert.is(j.status, hex(0x2000n));
    assert.is(j.cleared, '0x0');
    assert.is(j.invalid.code, 'EINVAL');
  });

  test('securebits and keepcaps; locked bits cannot change', () => {
    const r = child('securebits');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.is(j.start, 0);
    assert.is(j.keepStart, false);
    assert.is(j.afterKeep, SECBIT_KEEP_CAPS);
    assert.is(j.keep, true);
    assert.is(j.afterClear, 0);
    assert.is(j.locked, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED);
    assert.is(j.eperm.code, 'EPERM');
  });

  test('no_new_privs', () => {
    const r = child('nnp');
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.json, { before: false, after: true, status: '1' });
  });

  test('raw setresuid/setresgid/setgroups change the calling thread only', () => {
    const r = child('ids');
    assert.is(r.status, 0, r.stderr);
    const j = r.json;
    assert.match(j.uid, /^2000\s+65534\s+2002\s+65534$/);
    assert.match(j.gid, /^1000\s+1001\s+1002\s+1001$/);
    assert.is(j.groups, '4 27');
    assert.ok(j.others.length > 0, 'node has other threads');
    for (const u of j.others) assert.match(u, /^0\s+0\s+0\s+0$/, 'other threads keep uid 0');
    assert.is(j.back.code, 'EPERM');
    assert.is(j.bad.name, 'UsageError');
    assert.is(j.badGroup.name, 'UsageError');
  });

  test('setgroups([]) clears, -1 leaves an id unchanged', () => {
    const r = child('ids-clear');
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.json, { set: '4 27', cleared: '', gid: '0\t65534\t0\t65534' });
  });

  test('errors are SysErrors carrying the errno', () => {
    // Raising inheritable beyond the bounding set... simplest: an ambient raise
    // of a cap not inheritable in this process fails with EPERM here too.
    const e = caught(() => ambientRaise(CAP_NET_ADMIN));
    assert.ok(e);
    assert.is(e!.name, 'SysError');
    assert.is(e!.code, 'EPERM');
    assert.match(e!.message, 'raise ambient cap_net_admin: Operation not permitted (EPERM)');
    assert.ok(new SysError('x', 1) instanceof Error);
  });
}

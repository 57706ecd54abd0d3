// The launcher's configuration grammar and the trusted-file checks, at
// random: a parse either yields a configuration that holds every rule, or
// one InputError line naming the file and line; a well-formed file parses
// back to what was written; openTrustedFile accepts exactly the root-owned,
// regular, not group/world-writable files on the expected filesystem, and
// never opens anything else for reading; the vlan directive's VID lists
// and the sub-interfaces' names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validIfName, openTrustedFile, close, listOpenFds, InputError } from '@netgrant/core';
import { parseLaunchConfig, parseCidr, contains, parseVid, parseVidList, vlanName, type LaunchConfig } from '@netgrant/lease';
import { sh, tempDir, NOBODY } from '../../../tools/test/lib/harness.js';
import { params } from '../../../tools/test/lib/arbitraries.js';

const MODES = ['l2', 'l3', 'l3s'];
const FILE = '/etc/netgrant/test.conf';

/** Do two prefixes of one family share an address? (independent of the parser's own check) */
function overlap(a: string, b: string): boolean {
  const x = parseCidr(a)!;
  const y = parseCidr(b)!;
  if (x.family !== y.family) return false;
  const shift = BigInt(x.bits - Math.min(x.prefix, y.prefix));
  return x.network >> shift === y.network >> shift;
}

/** The rules a parsed configuration must hold. */
function checkConfig(c: LaunchConfig): void {
  assert.ok(c.subnets.length > 0);
  if (c.mode !== undefined) assert.ok(MODES.includes(c.mode));
  if (c.limit !== undefined) assert.ok(Number.isInteger(c.limit) && c.limit >= 0 && c.limit <= 999999);
  c.subnets.forEach((s, i) => {
    assert.ok(parseCidr(s.cidr.text), s.cidr.text);
    if (s.parent !== undefined) assert.ok(validIfName(s.parent), s.parent);
    if (s.gateway !== undefined) assert.ok(contains(s.cidr, s.gateway), `${s.gateway} in ${s.cidr.text}`);
    for (const t of c.subnets.slice(0, i)) assert.not.ok(overlap(s.cidr.text, t.cidr.text), `${s.cidr.text} overlaps ${t.cidr.text}`);
  });
}

const LINES = [
  '10.0.0.0/24', '10.0.0.0/25', '10.0.0.128/25', '10.0.0.1/24', '10.0.0.0/33', '10.1.0.0/16', '0.0.0.0/0', '192.168.1.0/30', '10.2.0.0/32',
  'fd00::/64', 'fd00::/48', 'fd00::1/64', 'fd00::/129', '::/0', '::ffff:10.0.0.0/120', 'mode l2', 'mode l3s', 'mode', 'mode l9', 'mode l2 l3',
  'limit 0', 'limit 3', 'limit 999999', 'limit 1000000', 'limit -1', 'limit', 'limit 1.5', '10.3.0.0/24 parent eth0', '10.3.0.0/24 parent',
  '10.3.0.0/24 parent a/b', '10.3.0.0/24 parent xxxxxxxxxxxxxxxx', '10.3.0.0/24 gateway 10.3.0.1', '10.3.0.0/24 gateway 10.4.0.1',
  '10.3.0.0/24 gateway fd00::1', '10.3.0.0/24 gateway', '10.3.0.0/24 frob x', '10.3.0.0/24 parent eth0 gateway 10.3.0.254 parent eth1',
  'include other.conf', 'allow br0', '# comment', '', '   ', '\t10.5.0.0/24\t# trailing', '10.6.0.0/24 # parent x',
];
const line = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...LINES) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }).filter((s) => !s.includes('\n')) });

test('any text: a configuration that holds every rule, or one InputError line naming the file and line', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
      const text = lines.join('\n');
      let c: LaunchConfig;
      try {
        c = parseLaunchConfig(text, FILE, MODES);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        assert.not.ok(e.message.includes('\n'), e.message);
        const m = e.message.match(/^\/etc\/netgrant\/test\.conf(?::(\d+))?: /);
        assert.ok(m, e.message);
        if (m![1] === undefined) assert.is(e.message, `${FILE}: no subnet listed`);
        else assert.ok(Number(m![1]) >= 1 && Number(m![1]) <= lines.length, e.message);
        return;
      }
      checkConfig(c);
    }),
    params(3000),
  );
});

// A well-formed configuration: disjoint subnets (10.N.0.0/24, fd00:N::/64), options, comments, odd spacing.
const subnet = fc.record({
  n: fc.integer({ min: 0, max: 255 }),
  v6: fc.boolean(),
  parent: fc.option(fc.constantFrom('eth0', 'pp0', 'x'.repeat(15), 'a.b-c_d')),
  gateway: fc.boolean(),
});
const spacing = fc.constantFrom(' ', '  ', '\t', ' \t ');
const wellFormed = fc.record({
  mode: fc.option(fc.constantFrom(...MODES)),
  limit: fc.option(fc.integer({ min: 0, max: 999999 })),
  subnets: fc.uniqueArray(subnet, { minLength: 1, maxLength: 5, selector: (s) => `${s.v6}${s.n}` }),
  sp: spacing,
  comment: fc.boolean(),
});

test('a well-formed configuration parses back to what was written', () => {
  fc.assert(
    fc.property(wellFormed, ({ mode, limit, subnets, sp, comment }) => {
      const cidr = (s: (typeof subnets)[0]) => (s.v6 ? `fd00:${s.n.toString(16)}::/64` : `10.${s.n}.0.0/24`);
      const gw = (s: (typeof subnets)[0]) => (s.v6 ? `fd00:${s.n.toString(16)}::1` : `10.${s.n}.0.1`);
      const out = comment ? ['# netgrant'] : [];
      if (mode !== null) out.push(`mode${sp}${mode}`);
      if (limit !== null) out.push(`${sp}limit ${limit}${comment ? ' # per uid' : ''}`);
      for (const s of subnets) out.push([cidr(s), ...(s.parent !== null ? ['parent', s.parent] : []), ...(s.gateway ? ['gateway', gw(s)] : [])].join(sp));
      const c = parseLaunchConfig(out.join('\n') + '\n', FILE, MODES);
      assert.is(c.mode, mode ?? undefined);
      assert.is(c.limit, limit ?? undefined);
      assert.equal(c.subnets.map((s) => [s.cidr.text, s.parent, s.gateway]), subnets.map((s) => [cidr(s), s.parent ?? undefined, s.gateway ? gw(s) : undefined]));
    }),
    params(1000),
  );
});

test('VLAN ids: a vlan directive yields VIDs of 1-4094 exactly as written, or one InputError naming the line; -V takes 1-4094 only; every name fits IFNAMSIZ', () => {
  const range = fc.tuple(fc.integer({ min: 1, max: 4094 }), fc.integer({ min: 0, max: 40 })).map(([lo, n]) => [lo, Math.min(4094, lo + n)] as const);
  fc.assert(
    fc.property(fc.array(range, { minLength: 1, maxLength: 6 }), (ranges) => {
      const got = new Set<number>();
      parseVidList([ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',')], 'f:1', got);
      const want = new Set(ranges.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)));
      assert.equal([...got].sort((x, y) => x - y), [...want].sort((x, y) => x - y));
    }),
    params(300),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), (word) => {
      const got = new Set<number>();
      try {
        parseVidList([word], 'f:3', got);
      } catch (e) {
        assert.ok(e instanceof InputError && /^f:3: vlan/.test(e.message), String(e));
        return;
      }
      for (const v of got) assert.ok(Number.isInteger(v) && v >= 1 && v <= 4094, `${v} from ${JSON.stringify(word)}`);
    }),
    params(1000),
  );
  for (const bad of ['0', '4095', '4096', '-1', '1e1', '', 'ten', '010000']) assert.throws(() => parseVid(bad), /-V: /);
  assert.is(parseVid('4094'), 4094);
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 15 }).filter(validIfName), fc.integer({ min: 1, max: 999999 }), fc.integer({ min: 1, max: 4094 }), (parent, index, vid) => {
      const name = vlanName(parent, index, vid);
      assert.ok(validIfName(name) && Buffer.byteLength(name) <= 15, name);
      assert.ok(name === `${parent}.${vid}` || name === `ngv${index}.${vid}`, name);
    }),
    params(500),
  );
});

test('trusted files: accepted exactly when regular, root-owned, not group/world-writable and on the expected filesystem; nothing else is opened', () => {
  const { dir, cleanup } = tempDir();
  const other = join(dir, 'other-fs');
  mkdirSync(other);
  sh(`mount -t tmpfs adversarial-conf ${other}`);
  const before = listOpenFds();
  let n = 0;
  try {
    fc.assert(
      fc.property(
        fc.constantFrom('file', 'file', 'file', 'symlink', 'dir', 'fifo'),
        fc.constantFrom(0, NOBODY),
        fc.integer({ min: 0, max: 0o7777 }),
        fc.boolean(),
        (kind, uid, mode, otherFs) => {
          const p = join(otherFs ? other : dir, `c${n++}`);
          if (kind === 'file' || kind === 'symlink') writeFileSync(kind === 'file' ? p : `${p}.target`, '10.0.0.0/24\n');
          if (kind === 'symlink') symlinkSync(`${p}.target`, p);
          if (kind === 'dir') mkdirSync(p);
          if (kind === 'fifo') sh(`mkfifo ${p}`);
          if (kind !== 'symlink') (chownSync(p, uid, 0), chmodSync(p, mode));
          const trusted = kind === 'file' && uid === 0 && (mode & 0o022) === 0 && !otherFs;
          try {
            const t = openTrustedFile(p, { sameFilesystemAs: dir });
            close(t.fd);
            assert.ok(trusted, `${kind} uid ${uid} mode ${mode.toString(8)} otherFs ${otherFs} was accepted`);
            assert.is(t.text, '10.0.0.0/24\n');
          } catch (e) {
            if (!(e instanceof InputError)) throw e;
            assert.not.ok(trusted, `refused: ${e.message}`);
            const why = kind === 'symlink' ? /is a symbolic link/ : kind !== 'file' ? /not a regular file/ : uid !== 0 ? /owned by uid 65534/ : mode & 0o022 ? /writable by/ : /not on the same filesystem/;
            assert.match(e.message, why);
          } finally {
            rmSync(p, { recursive: true, force: true });
          }
        },
      ),
      params(300),
    );
    assert.equal(listOpenFds(), before, 'no fd left open');
  } finally {
    sh(`umount ${other}`);
    cleanup();
  }
});

test.run();

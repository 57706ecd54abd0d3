import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseOptions, parseFdList, parseUint, UsageError, type OptionDef } from '@netgrant/core';

const defs: OptionDef[] = [
  { name: 'sock', short: 's', value: true },
  { name: 'fds', short: 'd', value: true },
  { name: 'env', short: 'e', value: true, multi: true },
  { name: 'persist', short: 'p' },
  { name: 'lo' },
];
const words = (...w: string[]) => w.map((s) => Buffer.from(s));
const strs = (b: Buffer[]) => b.map((x) => x.toString());

test('short, attached, long and repeated options; rest untouched', () => {
  const { opts, rest } = parseOptions(words('-s', '6', '-d3,4', '-e', 'A', '-eB', '--lo', 'prog', '-x', '--', 'y'), defs);
  assert.equal(opts.sock, '6');
  assert.equal(opts.fds, '3,4');
  assert.equal(opts.env, ['A', 'B']);
  assert.equal(opts.lo, true);
  assert.equal(opts.persist, false);
  assert.equal(strs(rest), ['prog', '-x', '--', 'y']);
});

test('-- ends options; a later -- belongs to the next program', () => {
  const a = parseOptions(words('-p', '--', '-s', '1'), defs);
  assert.equal(a.opts.persist, true);
  assert.equal(strs(a.rest), ['-s', '1']);
  const b = parseOptions(words('cap-drop', '--from-peer', '--'), defs);
  assert.equal(strs(b.rest), ['cap-drop', '--from-peer', '--']);
});

test('a flag never eats a following "true" (minimist quirk)', () => {
  const { opts, rest } = parseOptions(words('--persist', 'true'), defs);
  assert.equal(opts.persist, true);
  assert.equal(strs(rest), ['true']);
});

test('clustered flags and a value option at the end of a cluster', () => {
  const { opts, rest } = parseOptions(words('-ps', '7', 'x'), defs);
  assert.equal(opts.persist, true);
  assert.equal(opts.sock, '7');
  assert.equal(strs(rest), ['x']);
});

test('a lone - is a non-option', () => {
  assert.equal(strs(parseOptions(words('-', 'a'), defs).rest), ['-', 'a']);
});

test('rest is byte-exact', () => {
  const odd = Buffer.from([0x61, 0xff, 0x62]);
  const { rest } = parseOptions([Buffer.from('-p'), odd], defs);
  assert.ok(rest[0]!.equals(odd));
});

for (const [argv, msg] of [
  [['-x'], 'unknown option -x'],
  [['--nope'], 'unknown option --nope'],
  [['-s'], 'requires a value'],
  [['--lo=1'], 'takes no value'],
  [['--no-lo'], 'unknown option'],
] as const) {
  test(`usage error: ${argv.join(' ')}`, () => {
    try {
      parseOptions(words(...argv), defs);
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, msg);
    }
  });
}

test('non-UTF-8 option word is a usage error', () => {
  assert.throws(() => parseOptions([Buffer.from([0x2d, 0x73, 0xff])], defs), (e: unknown) => e instanceof UsageError);
});

test('numbers and fd lists', () => {
  assert.equal(parseFdList('3,4,10', 'd'), [3, 4, 10]);
  assert.throws(() => parseFdList('3,3', 'd'), /twice/);
  assert.throws(() => parseFdList('3,x', 'd'), /not a number/);
  assert.throws(() => parseFdList('', 'd'), /empty/);
  assert.throws(() => parseUint('-1', 'n'), /not a number/);
  assert.throws(() => parseUint('99999999999', 'n'), /not a number/);
  assert.throws(() => parseUint('5', 'n', 0, 4), /out of range/);
  assert.equal(parseUint('0', 'n'), 0);
});

test.run();

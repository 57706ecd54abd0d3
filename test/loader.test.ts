// The entry points' loader (tools/build/load.cjs, built to dist/load.cjs):
// V8's code cache is used only when it was made from this very bundle, and
// any other cache (another build, a same-length edit of the bundle, a
// truncated or missing file) leaves the toolkit loading as usual. Each case
// loads a copy of dist in a fresh Node (the suite's NODE: the cache a
// Node makes is only good for that Node, so the copy gets one made by it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, NODE, ROOT } from '../tools/test/lib/harness.js';

const DIST = join(ROOT, 'packages', 'netgrant', 'dist');
const { dir, cleanup } = tempDir();
let n = 0;

/** A copy of dist with a code cache made by NODE. */
function distCopy(): { loader: string; bundle: string; cache: string } {
  const d = join(dir, `dist${n++}`);
  cpSync(DIST, d, { recursive: true });
  const loader = join(d, 'load.cjs');
  const made = run([NODE, '-e', 'process.stdout.write(require(process.argv[1]).makeCache())', loader]);
  assert.is(made.status, 0, made.stderr);
  const cache = join(d, 'netgrant.cjs.cache');
  writeFileSync(cache, made.stdoutBuf);
  return { loader, bundle: join(d, 'netgrant.cjs'), cache };
}

/** Load the copy in a fresh Node: whether V8 took the cache, and whether the toolkit is there. */
function load(loader: string): { cached: boolean; main: string } {
  const r = run([NODE, '-e', 'const r = require(process.argv[1]).open(); console.log(JSON.stringify({ cached: r.cached, main: typeof r.exports.main }))', loader]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  return JSON.parse(r.stdout) as { cached: boolean; main: string };
}

test('the cache made for the bundle is taken', () => {
  const { loader } = distCopy();
  assert.equal(load(loader), { cached: true, main: 'function' });
});

test('the build installs a cache with the bundle, carrying its id', () => {
  const id = /^\/\/ netgrant build ([0-9a-f]{32})\n/.exec(readFileSync(join(DIST, 'netgrant.cjs'), 'utf8'))?.[1];
  assert.ok(id, 'the bundle starts with its build id');
  assert.is(readFileSync(join(DIST, 'netgrant.cjs.cache')).subarray(0, 33).toString('latin1'), `${id}\n`);
});

test("another build's cache is not used", () => {
  const { loader, cache } = distCopy();
  const c = readFileSync(cache);
  c.write('0123456789abcdef0123456789abcdef', 0, 'latin1');
  writeFileSync(cache, c);
  assert.equal(load(loader), { cached: false, main: 'function' });
});

test('a bundle edited to the same length (another id) does not get the old cache', () => {
  const { loader, bundle } = distCopy();
  const src = readFileSync(bundle, 'latin1');
  writeFileSync(bundle, src.replace(/^\/\/ netgrant build [0-9a-f]{32}/, `// netgrant build ${'f'.repeat(32)}`), 'latin1');
  assert.is(readFileSync(bundle).length, Buffer.byteLength(src, 'latin1'));
  assert.equal(load(loader), { cached: false, main: 'function' });
});

test('a cache cut short, or none at all: the bundle loads', () => {
  const { loader, cache } = distCopy();
  writeFileSync(cache, readFileSync(cache).subarray(0, 40));
  assert.equal(load(loader), { cached: false, main: 'function' });
  rmSync(cache);
  assert.equal(load(loader), { cached: false, main: 'function' });
});

test.after(cleanup);
test.run();

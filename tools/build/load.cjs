// The toolkit's loader (copied to packages/netgrant/dist/load.cjs): every
// program's entry point loads the bundle through it. It compiles the bundle
// with V8's code cache, made at build time (tools/build/build.mjs), which
// saves compiling the bundle on every start (docs/perf.md, row 1).
//
// The cache is used only when it was made from this very bundle: both carry
// the build's id (the bundle on its first line, the cache in its first 33
// bytes), since V8 itself checks only the source's length. Any other cache
// (another build, another Node, a missing or unreadable file) is ignored
// and the bundle is compiled as usual; V8 refuses a cache of another V8
// version or flags on its own. V8 does not verify the cache's checksum
// (release builds skip it; asking for it with --verify-snapshot-checksum
// means loading node:v8, ~2 ms per start): the cache is code, trusted as
// the bundle beside it is, root-owned, and whoever can write it can write
// the bundle (as with Python's .pyc files).
'use strict';
const { readFileSync } = require('node:fs');
const { Script } = require('node:vm');
const { wrap, createRequire } = require('node:module');
const { join } = require('node:path');

const BUNDLE = join(__dirname, 'netgrant.cjs');
const CACHE = `${BUNDLE}.cache`;
const ID = /^\/\/ netgrant build ([0-9a-f]{32})\n/;

/** Compile and run the bundle as a CommonJS module; its Script (for the build to make the cache from) and exports. */
function compile(source, cachedData) {
  const script = new Script(wrap(source), { filename: BUNDLE, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(BUNDLE), module, BUNDLE, __dirname);
  return { script, exports: module.exports };
}

/** The code cache made from the bundle with this id, or undefined. */
function cacheFor(id) {
  try {
    const c = readFileSync(CACHE);
    return c.subarray(0, 33).toString('latin1') === `${id}\n` ? c.subarray(33) : undefined;
  } catch {
    return undefined; // no cache: compile
  }
}

/** Load the bundle: its exports, and whether V8 took the code cache. */
function open() {
  const source = readFileSync(BUNDLE, 'utf8');
  const id = ID.exec(source)?.[1];
  const cachedData = id ? cacheFor(id) : undefined;
  const { script, exports } = compile(source, cachedData);
  return { exports, cached: cachedData !== undefined && !script.cachedDataRejected };
}

/** The toolkit's exports. */
const load = () => open().exports;

/** A code cache for this bundle and this Node, made after running the bundle's module body (the build writes it to CACHE). */
function makeCache() {
  const source = readFileSync(BUNDLE, 'utf8');
  const id = ID.exec(source)?.[1];
  if (!id) throw new Error(`${BUNDLE} has no build id`);
  return Buffer.concat([Buffer.from(`${id}\n`, 'latin1'), compile(source, undefined).script.createCachedData()]);
}

module.exports = { load, open, makeCache };

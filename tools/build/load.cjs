// The toolkit's loader (copied to packages/netgrant/dist/load.cjs): every
// program's entry point loads the bundle through it. It compiles the bundle
// with V8's code cache, made at build time (tools/build/build.mjs), which
// saves compiling the bundle on every start (docs/perf.md, row 1).
//
// The cache is used only when it was made from this very bundle: both carry
// the build's id (the bundle on its first line, the cache in its first 33
// bytes), since V8 itself checks only the source's length. Any other cache
// (another build, another Node, a missing or unreadable file) is ignored and
// the bundle is compiled as usual; V8 rejects a cache of another V8 version
// or flags on its own. The cache lives beside the bundle, and whoever can
// write it can write the bundle.
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

/** The toolkit's exports. */
function load() {
  const source = readFileSync(BUNDLE, 'utf8');
  const id = ID.exec(source)?.[1];
  return compile(source, id ? cacheFor(id) : undefined).exports;
}

module.exports = { load, compile, BUNDLE, CACHE, ID };

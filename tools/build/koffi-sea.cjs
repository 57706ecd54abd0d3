// esbuild alias for @koromix/koffi-linux-<arch> in the single executable
// (tools/build/sea.mjs): load koffi.node from the fixed path beside the
// executable, never from a temporary file, and only if root owns it and
// nobody else can change it. The executable may hold file capabilities and
// run for any user: a native module someone else could write would be
// their code with those capabilities (docs/single-executable.md).
//
// The file is opened once (O_NOFOLLOW; close-on-exec, as Node opens
// every file) and checked on that fd, and that
// very file is loaded through /proc/self/fd; its directory and every one
// above it must be root's and writable by root alone (or sticky, as /tmp),
// so nobody else can put another file at that path either.
'use strict';
const { openSync, fstatSync, statSync, closeSync, writeSync, constants } = require('node:fs');
const { basename, dirname, join } = require('node:path');

/** Why st may not hold code this executable loads, or null. */
function unsafe(st, dir) {
  if (st.uid !== 0) return `owned by uid ${st.uid}, not root`;
  if (st.mode & 0o022 && !(dir && st.mode & 0o1000)) return `writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`;
  return null;
}

function refuse(path, why) {
  const e = new Error(`${path}: refused: ${why}`);
  e.code = 'EPERM';
  throw e;
}

/** koffi's native module, from beside the executable, checked. */
function load() {
  const path = join(dirname(process.execPath), 'koffi.node');
  for (let d = dirname(path); ; d = dirname(d)) {
    const why = unsafe(statSync(d), true);
    if (why) refuse(d, why);
    if (d === '/') break;
  }
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) refuse(path, 'not a regular file');
    const why = unsafe(st, false);
    if (why) refuse(path, why);
    const m = { exports: {} };
    process.dlopen(m, `/proc/self/fd/${fd}`);
    return m.exports;
  } finally {
    closeSync(fd);
  }
}

// A refusal or failure here is one line, as from any program's entry point.
try {
  module.exports = load();
} catch (e) {
  writeSync(2, `${basename(process.argv[1] || 'netgrant')}: fatal: load the toolkit: ${String(e && e.message).split('\n')[0]}${e && e.code ? ` (${e.code})` : ''}\n`);
  process.exit(111);
}

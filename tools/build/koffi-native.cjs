// esbuild alias for @koromix/koffi-linux-x64: load koffi.node from next to
// the bundle, so a built program reads nothing from node_modules.
'use strict';
const m = { exports: {} };
process.dlopen(m, require('node:path').join(__dirname, 'koffi.node'));
module.exports = m.exports;

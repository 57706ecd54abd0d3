// esbuild alias for @koromix/koffi-linux-x64: load koffi.node from next to
// the bundle, so a built program reads nothing from node_modules. An
// installed npm package ships no koffi.node (it would fit one platform
// only): there the native module is koffi's own platform package, which
// npm installed beside the bundle's package as koffi's dependency (the
// name is computed, so that esbuild leaves this require alone instead of
// aliasing it back to this file). docs/install.md.
'use strict';
const { join } = require('node:path');
const { existsSync } = require('node:fs');
const beside = join(__dirname, 'koffi.node');
if (existsSync(beside)) {
  const m = { exports: {} };
  process.dlopen(m, beside);
  module.exports = m.exports;
} else {
  module.exports = require(['@koromix', `koffi-${process.platform}-${process.arch}`].join('/'));
}

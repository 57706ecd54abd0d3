// What koffi gets for `require('node:util')`: only util.deprecate, the one
// function it uses. koffi's own bundled JS copies every property of the
// module it requires (esbuild's __toESM); copying node:util's on Node >= 22
// materialises util.diff, whose colour setup reads process.stderr: that
// initialises the stderr stream (libuv opens /dev/null for itself and makes
// a stderr pipe O_NONBLOCK) before core records the process's start state,
// and the exec'd program would inherit both.
'use strict';
module.exports = { deprecate: require('node:util').deprecate };

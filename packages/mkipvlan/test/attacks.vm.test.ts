// mkipvlan's accounting under attack, in the kernel VM lane (Debian's
// kernel has ipvlan), by real unprivileged processes
// (tools/test/lib/launcher-attacks.ts; docs/security.md). The kernel's
// EADDRINUSE check is the second line here; the registry is the first.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the VM lane is for the
// kernel's ipvlan; the attacks are on accounting, the same in both modes,
// and run natively in both by mkmacvlan's attacks.test.ts.
import { test } from 'uvu';
import { attackSuite } from '../../../tools/test/lib/launcher-attacks.js';

attackSuite('mkipvlan', { rounds: 1 });

test.run();

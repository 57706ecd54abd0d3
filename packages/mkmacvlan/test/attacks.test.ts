// mkmacvlan's accounting under attack, natively, by real unprivileged
// processes (tools/test/lib/launcher-attacks.ts; docs/security.md).
import { test } from 'uvu';
import { attackSuite } from '../../../tools/test/lib/launcher-attacks.js';

attackSuite('mkmacvlan');

test.run();

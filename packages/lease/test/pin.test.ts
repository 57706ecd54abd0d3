// Per-lease anti-spoofing filters on this machine's kernel (clsact + cls_bpf,
// no flower or gact): the shared suite in tools/test/lib/pin-cases.ts.
// It runs no toolkit program, so one chaining mode is enough:
// @netgrant-test-modes: in-process
import { test } from 'uvu';
import { pinSuite } from '../../../tools/test/lib/pin-cases.js';

pinSuite(test);
test.run();

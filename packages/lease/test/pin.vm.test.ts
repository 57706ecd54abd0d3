// Per-lease anti-spoofing filters on Debian's stock kernel (the VM lane,
// docs/testing-vm.md): the same suite as pin.test.ts, so the program passes
// 6.1's verifier too. The lane's initramfs loads only its own modules; the
// bridge, clsact, cls_bpf and macvtap modules are loaded here.
// The suite runs no toolkit program (no chain to run in-process or by
// exec), so one chaining mode is enough in the emulated guest:
// @netgrant-test-modes: in-process
import { test } from 'uvu';
import { pinSuite, loadGuestModules } from '../../../tools/test/lib/pin-cases.js';

loadGuestModules();
pinSuite(test);
test.run();

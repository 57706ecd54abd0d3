// Fault injection (docs/reliability.md) on the paths of 802.1Q
// sub-interfaces (mkmacvlan -V) and physical-interface leases (mkphys -P),
// in the kernel VM lane (Debian's stock kernel has 8021q, this machine's
// does not; the guest has NICs to lease, this machine's namespaces do not):
// the same driver as every fault file; the targets are
// tools/test/lib/fault-launcher.ts (with a VID) and fault-phys.ts.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the steps failed here are
// the lease layer's own calls (netlink, the entry file), the same
// in both modes; the launchers' exec path is failed natively
// (faults-macvlan.test.ts, exec-only). Under TCG a launch takes seconds and
// a -V run makes two (the held one and the chain's) and a reap, so only
// the calls of these paths are failed: for -V, the sub-interface's
// creation (its answer lost), its record (the alias) and the sweep's
// deletion of an unused one; for -P, the entry's file and the move
// (request, and answer lost: the NIC gone with its entry kept). For -V a
// kill at each of those steps too: the sub-interface is made and recorded
// in a scratch namespace before it moves (lease scratch.ts), so a kill
// leaves none without its record. For -P faults only (its restore runs
// untraced between runs).
// @netgrant-test-slow (the VM lane starts it first)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures, netlinkRequest, type Step } from '../tools/test/lib/faults.js';
import { launcherTarget } from '../tools/test/lib/fault-launcher.js';
import { physTarget } from '../tools/test/lib/fault-phys.js';
import { GUEST_NICS } from '../tools/guest/nics.mjs';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_SETLINK = 19;
const NLM_F_CREATE = 0x400;

const { dir, cleanup } = tempDir();
/** Seconds since t0 (each test's own time, for docs/testing.md). */
const seconds = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);
chmodSync(dir, 0o755);

/** The index of the first step after `from` that `pred` matches, or -1. */
const firstAfter = (all: Step[], from: number, pred: (s: Step) => boolean) => all.findIndex((s, j) => j > from && pred(s));
/** The step after request j when it is the request's answer (a recvfrom), or -1. */
const answer = (all: Step[], j: number) => (j >= 0 && all[j + 1]?.syscall === 'recvfrom' ? j + 1 : -1);
const request = (type: number, create?: boolean) => (s: Step) => {
  const r = netlinkRequest(s);
  return r !== undefined && r.type === type && (create === undefined || ((r.flags & NLM_F_CREATE) !== 0) === create);
};

test('faults and kills: mkmacvlan -V (the sub-interface\'s creation, record and the sweep\'s deletion)', async () => {
  // The chain's first create is the sub-interface's (its link comes after): its answer; then the alias; then the sweep's delete.
  const chosen = (all: Step[]) => {
    const create = firstAfter(all, -1, request(RTM_NEWLINK, true));
    const alias = firstAfter(all, create, (s) => request(RTM_NEWLINK, false)(s) || request(RTM_SETLINK)(s));
    const del = firstAfter(all, create, request(RTM_DELLINK));
    return create < 0 ? [] : [answer(all, create), alias, del];
  };
  const t0 = Date.now();
  const r = await injectEverywhere(launcherTarget('mkmacvlan', dir, { vid: 10 }), 3, (_s, i, all) => chosen(all).includes(i));
  console.log(`  ${figures(r)}; ${seconds(t0)} s`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.is(r.faults.runs, 3, 'the chain made the calls it should (3 chosen)');
});

test('faults: mkphys -P (the entry, the move)', async () => {
  const chosen = (all: Step[]) => {
    const u = all.findIndex((s) => s.syscall === 'unshare');
    const entry = all.findIndex((s) => /^openat "\/run\/netgrant\/phys\/\./.test(s.kind));
    const move = firstAfter(all, u, request(RTM_NEWLINK));
    return u < 0 ? [] : [entry, move, answer(all, move)];
  };
  const t0 = Date.now();
  const r = await injectEverywhere(physTarget(GUEST_NICS.faults[0], dir), 3, (_s, i, all) => chosen(all).includes(i), { kills: false });
  console.log(`  ${figures(r)}; ${seconds(t0)} s`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.is(r.faults.runs, 3, 'the chain made the calls it should (3 chosen)');
});

test.after(cleanup);
test.run();

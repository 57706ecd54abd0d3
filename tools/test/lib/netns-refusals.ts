// -N's refusals, shared by every creator's tests (mkveth, mkmacvlan; the
// checks are packages/lease/src/launch/target.ts): a namespace another uid
// owns and the server's own (1), an fd that is not a namespace, another
// kind of namespace, no PEERUID (100). Nothing is executed.
import * as assert from 'uvu/assert';
import { openSync, closeSync } from 'node:fs';
import { failsWith, NOBODY, type Result } from './harness.js';

/** Run the creator with fd 5 = fd (as fd-recv would place it), env, and `sh -c 'echo EXECUTED'` after it. */
export type WithNs = (fd: number, env: Record<string, string>) => Result;

/** Every refusal, for the client's namespace open at ns. */
export function assertNetnsRefusals(prog: string, ns: number, withNs: WithNs): void {
  const own = openSync('/proc/self/ns/net', 'r');
  const file = openSync('/etc/passwd', 'r');
  const mnt = openSync('/proc/self/ns/mnt', 'r');
  try {
    const cases: [number, Record<string, string>, number, RegExp][] = [
      [ns, { PEERUID: '1000' }, 1, /-N: the network namespace is not owned by uid 1000/],
      [own, { PEERUID: '0' }, 1, /-N: the server's own network namespace/],
      [file, { PEERUID: String(NOBODY) }, 100, /-N/],
      [mnt, { PEERUID: String(NOBODY) }, 100, /not a net namespace/],
      [ns, {}, 100, /-N: PEERUID not set/],
    ];
    for (const [fd, env, code, re] of cases) {
      const r = withNs(fd, env);
      assert.is(failsWith(r, prog, code, re), null, r.stderr);
      assert.is(r.stdout, '');
    }
  } finally {
    [own, file, mnt].forEach((fd) => closeSync(fd));
  }
}

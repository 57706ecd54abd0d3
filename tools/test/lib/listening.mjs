// Whether a server's unix socket listens yet (the benchmark and the test
// harness start servers and wait for this).
import { readFileSync } from 'node:fs';

/**
 * Whether a unix socket bound to `path` in this network namespace listens:
 * its /proc/net/unix line has __SO_ACCEPTCON (0x10000) in its flags. The
 * socket file appears at bind(2), before listen(2), and a connect in
 * between is refused.
 * @param {string} path
 * @returns {boolean}
 */
export function listening(path) {
  return readFileSync('/proc/net/unix', 'latin1').split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[7] === path && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0;
  });
}

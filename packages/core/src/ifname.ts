// Interface names, checked with the kernel's own rules (net/core/dev.c
// dev_valid_name) before any lookup, ACL match or ioctl:
//
//   - 1 to 15 bytes (IFNAMSIZ 16 including the terminating NUL);
//   - not "." or "..";
//   - no '/', ':' or whitespace byte. "Whitespace" is the kernel's isspace()
//     (lib/ctype.c): space, \t, \n, \v, \f, \r and also byte 0xA0 (Latin-1
//     no-break space; the kernel table marks it as space, so e.g. the UTF-8
//     encoding of 'à' = C3 A0 is refused by TUNSETIFF with EINVAL).
//
// Names are checked as their UTF-8 bytes (or the given Buffer's bytes). A
// NUL byte is refused too: the kernel would silently truncate at it.
// '%' is allowed, as in the kernel: "tap%d" asks the kernel to pick a number.
import { UsageError } from './errors.js';

/** IFNAMSIZ: the kernel's buffer size for an interface name, NUL included. */
export const IFNAMSIZ = 16;

/** Why name is not a valid interface name, or null when it is. */
export function ifNameProblem(name: string | Buffer): string | null {
  const b = Buffer.isBuffer(name) ? name : Buffer.from(name, 'utf8');
  if (b.length === 0) return 'empty';
  if (b.length > IFNAMSIZ - 1) return `longer than ${IFNAMSIZ - 1} bytes`;
  if (b.length <= 2 && (b.equals(Buffer.from('.')) || b.equals(Buffer.from('..')))) return 'not allowed';
  for (const c of b) {
    if (c === 0) return 'contains a NUL byte';
    if (c === 0x2f) return "contains '/'";
    if (c === 0x3a) return "contains ':'";
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0) return 'contains whitespace';
  }
  return null;
}

/** Does the kernel accept name as an interface name (dev_valid_name)? */
export function validIfName(name: string | Buffer): boolean {
  return ifNameProblem(name) === null;
}

/**
 * Return name if it is a valid interface name; otherwise throw a UsageError
 * `WHAT: invalid interface name "NAME": REASON` (exit code 100).
 */
export function checkIfName(name: string, what: string): string {
  const problem = ifNameProblem(name);
  if (problem !== null) throw new UsageError(`${what}: invalid interface name ${JSON.stringify(name)}: ${problem}`);
  return name;
}

// /etc/qemu/bridge.conf with qemu-bridge-helper's grammar and semantics:
// `allow NAME|all`, `deny NAME|all`, `include FILE`, `#` comments. Access
// needs at least one matching allow and no matching deny (deny wins
// whatever the order). A name of 16 bytes or more is a parse error
// (CVE-2019-13164). An unknown command or a missing argument fails the
// file: for the main file that refuses everything; an included file's
// error is ignored (its rules up to the error still count), as in QEMU.
// qemu-bridge-helper reads the files as the calling user, so permissions
// are the policy: here an include is read only if the peer could read it.
import { closeSync, readFileSync, type Stats } from 'node:fs';
import { InputError, IFNAMSIZ, untrustedReason, openChecked } from '@netgrant/core';

export interface Rule {
  kind: 'allow' | 'deny';
  /** A bridge name, or undefined for `all`. */
  name: string | undefined;
}

export interface PeerIds {
  uid: number;
  gids: readonly number[];
}

/** Could the peer read a file with this stat (mode bits, as the kernel would)? */
export function peerCanRead(st: Stats, peer: PeerIds): boolean {
  if (peer.uid === 0) return true;
  if (st.uid === peer.uid) return (st.mode & 0o400) !== 0;
  if (peer.gids.includes(st.gid)) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

export class AclError extends InputError {}

/** Parse one file's text; rules are pushed as they are read, so an error keeps the earlier ones. */
export function parseAcl(text: string, file: string, rules: Rule[], include: (path: string) => void): void {
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const m = line.match(/^(\S+)\s+(.*)$/);
    if (!m) throw new AclError(`${where}: missing argument in ${JSON.stringify(line)}`);
    // Case matters, as in qemu-bridge-helper: "ALLOW br0" fails the file there.
    const cmd = m[1]!;
    const arg = m[2]!.trim();
    if (cmd === 'include') return include(arg);
    if (cmd !== 'allow' && cmd !== 'deny') throw new AclError(`${where}: unknown command ${JSON.stringify(m[1])}`);
    if (Buffer.byteLength(arg) >= IFNAMSIZ) throw new AclError(`${where}: name too long (${Buffer.byteLength(arg)} bytes, the limit is ${IFNAMSIZ - 1})`);
    rules.push({ kind: cmd, name: arg === 'all' ? undefined : arg });
  });
}

/** Deny wins; otherwise an allow must match. */
export function decide(rules: readonly Rule[], bridge: string): boolean {
  const match = (r: Rule) => r.name === undefined || r.name === bridge;
  if (rules.some((r) => r.kind === 'deny' && match(r))) return false;
  return rules.some((r) => r.kind === 'allow' && match(r));
}

const MAX_DEPTH = 8;

/**
 * The rules for a peer: the main file (already opened and trusted by the
 * caller) and every include the peer can read and that is trusted
 * (root-owned, not group/world-writable); others are skipped with a warning.
 */
export function loadRules(mainText: string, mainPath: string, peer: PeerIds, warn: (msg: string) => void): Rule[] {
  const rules: Rule[] = [];
  const seen = new Set<string>();
  const include = (depth: number) => (path: string) => {
    if (depth > MAX_DEPTH) return warn(`${path}: includes nested deeper than ${MAX_DEPTH}, skipped`);
    let fd: number;
    let st: Stats;
    try {
      // Symlinks followed, as QEMU's fopen does; a FIFO or device is never opened (a FIFO would block).
      ({ fd, stat: st } = openChecked(path, 0, (s) => (s.isFile() ? null : 'not a regular file')));
    } catch (e) {
      if (e instanceof InputError) warn(`${e.message}; skipped`);
      return; // unreadable includes are skipped, as in QEMU
    }
    try {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return warn(`${path}: included twice, skipped`);
      seen.add(key);
      if (!peerCanRead(st, peer)) return;
      const why = untrustedReason(st);
      if (why) return warn(`${path}: ${why}; skipped`);
      try {
        parseAcl(readFileSync(fd, 'utf8'), path, rules, include(depth + 1));
      } catch (e) {
        if (!(e instanceof AclError)) throw e;
        warn(`${e.message} (in an included file: the rest of it is ignored)`);
      }
    } finally {
      closeSync(fd);
    }
  };
  parseAcl(mainText, mainPath, rules, include(1));
  return rules;
}

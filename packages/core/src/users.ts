// The user and group databases through libc (so NSS sources work, not
// just /etc/passwd): names to ids, a user's group list.
import { libc, koffi } from './ffi.js';
import { SysError, UsageError } from './errors.js';

const Passwd = koffi.struct('netgrant_passwd', {
  pw_name: 'const char *',
  pw_passwd: 'const char *',
  pw_uid: 'uint32_t',
  pw_gid: 'uint32_t',
  pw_gecos: 'const char *',
  pw_dir: 'const char *',
  pw_shell: 'const char *',
});
const Group = koffi.struct('netgrant_group', {
  gr_name: 'const char *',
  gr_passwd: 'const char *',
  gr_gid: 'uint32_t',
  gr_mem: 'void *',
});
const getpwnamFn = libc.func('getpwnam', koffi.pointer(Passwd), ['const char *']);
const getpwuidFn = libc.func('getpwuid', koffi.pointer(Passwd), ['uint32_t']);
const getgrnamFn = libc.func('getgrnam', koffi.pointer(Group), ['const char *']);
const getgrouplistFn = libc.func('int getgrouplist(const char *user, uint32_t group, _Inout_ uint32_t *groups, _Inout_ int *ngroups)');

export interface User {
  name: string;
  uid: number;
  gid: number;
}

const ID_RE = /^[0-9]{1,10}$/;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "no change" to the kernel

function lookup<T>(fn: () => unknown, what: string, decode: (p: unknown) => T): T | null {
  koffi.errno(0);
  const p = fn();
  if (p === null) {
    const errno = koffi.errno();
    // "not found" is NULL with errno 0 (or ENOENT/ESRCH/EBADF/EPERM per getpwnam(3)).
    if (errno === 0 || [2, 3, 9, 1].includes(errno)) return null;
    throw new SysError(what, errno);
  }
  return decode(p);
}

/** Look a user up by name; null if there is none. */
export function userByName(name: string): User | null {
  return lookup(() => getpwnamFn(name), `look up user ${name}`, (p) => {
    const pw = koffi.decode(p, Passwd) as { pw_name: string; pw_uid: number; pw_gid: number };
    return { name: pw.pw_name, uid: pw.pw_uid, gid: pw.pw_gid };
  });
}

/** Look a user up by uid; null if there is none. */
export function userById(uid: number): User | null {
  return lookup(() => getpwuidFn(uid), `look up uid ${uid}`, (p) => {
    const pw = koffi.decode(p, Passwd) as { pw_name: string; pw_uid: number; pw_gid: number };
    return { name: pw.pw_name, uid: pw.pw_uid, gid: pw.pw_gid };
  });
}

/** A group's gid by name; null if there is none. */
export function groupByName(name: string): number | null {
  return lookup(() => getgrnamFn(name), `look up group ${name}`, (p) => (koffi.decode(p, Group) as { gr_gid: number }).gr_gid);
}

/** USER or UID from a command line: a number is taken as is, a name is looked up. */
export function parseUser(text: string, what: string): number {
  if (ID_RE.test(text)) {
    const n = Number(text);
    if (n > MAX_ID) throw new UsageError(`${what}: uid out of range: ${text}`);
    return n;
  }
  const u = text === '' ? null : userByName(text);
  if (!u) throw new UsageError(`${what}: unknown user ${JSON.stringify(text)}`);
  return u.uid;
}

/** GROUP or GID from a command line. */
export function parseGroup(text: string, what: string): number {
  if (ID_RE.test(text)) {
    const n = Number(text);
    if (n > MAX_ID) throw new UsageError(`${what}: gid out of range: ${text}`);
    return n;
  }
  const g = text === '' ? null : groupByName(text);
  if (g === null) throw new UsageError(`${what}: unknown group ${JSON.stringify(text)}`);
  return g;
}

/** getgrouplist(3): the groups the database gives user (with primary gid). */
export function groupList(user: string, gid: number): number[] {
  let size = 64;
  for (let tries = 0; tries < 8; tries++) {
    const groups = new Array<number>(size).fill(0);
    const n = [size];
    const r = getgrouplistFn(user, gid, groups, n) as number;
    if (r >= 0) return groups.slice(0, n[0]);
    size = Math.max(n[0]!, size * 2);
  }
  throw new SysError(`list groups of ${user}`, 34 /* ERANGE */);
}

// netns-enter: enter a network namespace — a path, an fd, a process's, a
// named one (/run/netns/NAME) or a new one — optionally bring loopback up,
// and exec the rest. What is given is checked to be a network namespace
// before setns; a path is opened O_PATH first, so a FIFO or device is never
// opened for reading with privilege. Everything is synchronous on the main
// thread (namespaces are per thread: notes/node-syscalls.md §8).
import {
  UsageError, SysError, unshareNet, setns, openNamespaceUntrusted, checkNamespace, close, withNetlink, getLink, setLink,
  parseFd, parseUint, optString, optFlag, CLONE_NEWNET, type Program,
} from '@netgrant/core';

/** What `ip netns` would accept, narrowed: no '/', not '.' or '..', a portable charset. */
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const TARGETS = ['path', 'fd', 'target', 'name', 'new'] as const;
/** The kernel's PID_MAX_LIMIT on 64-bit. */
const PID_MAX = 4194304;

/** Open the namespace at a path without trusting it; -t turns a missing /proc/PID into ESRCH. */
function openAt(path: string, what: string): number {
  try {
    return openNamespaceUntrusted(path, CLONE_NEWNET);
  } catch (e) {
    if (what.startsWith('-t') && e instanceof SysError && e.code === 'ENOENT') throw new SysError(what, 3 /* ESRCH */);
    throw e;
  }
}

export const program: Program = {
  name: 'netns-enter',
  usage: '(-p PATH | -d FD | -t PID | -n NAME | --new) [--lo] prog...',
  options: [
    { name: 'path', short: 'p', value: true },
    { name: 'fd', short: 'd', value: true },
    { name: 'target', short: 't', value: true },
    { name: 'name', short: 'n', value: true },
    { name: 'new' },
    { name: 'lo' },
  ],
  run(chain, opts) {
    // ---- validation first: one target, well-formed.
    const given = TARGETS.filter((k) => opts[k] !== undefined && opts[k] !== false);
    if (given.length !== 1) throw new UsageError(given.length ? `give one namespace, not ${given.length}` : 'which namespace? give -p, -d, -t, -n or --new');
    const pathText = optString(opts, 'path');
    const fdText = optString(opts, 'fd');
    const pidText = optString(opts, 'target');
    const name = optString(opts, 'name');
    if (pathText === '') throw new UsageError('-p: empty path');
    if (name !== undefined && (!NAME_RE.test(name) || name === '.' || name === '..')) throw new UsageError(`-n: invalid namespace name ${JSON.stringify(name)}`);
    const pid = pidText === undefined ? undefined : parseUint(pidText, '-t', 1, PID_MAX);
    const fdNum = fdText === undefined ? undefined : parseFd(fdText, '-d');

    // ---- enter.
    if (optFlag(opts, 'new')) unshareNet();
    else if (fdNum !== undefined) {
      const fd = chain.fds.fd(fdNum, '-d');
      checkNamespace(fd, CLONE_NEWNET, `-d: fd ${fdNum}`);
      setns(fd, CLONE_NEWNET);
      // Consumed: the next program does not inherit a handle on the namespace.
      chain.fds.close(fdNum);
    } else {
      const [path, what] =
        pathText !== undefined ? [pathText, `-p ${pathText}`] : name !== undefined ? [`/run/netns/${name}`, `-n ${name}`] : [`/proc/${pid}/ns/net`, `-t ${pid}`];
      const fd = openAt(path, what);
      try {
        setns(fd, CLONE_NEWNET);
      } finally {
        close(fd);
      }
    }
    // Opened after setns, on this thread, so the socket belongs to the namespace we are now in.
    if (optFlag(opts, 'lo')) {
      withNetlink((nl) => {
        const lo = getLink(nl, 'lo');
        if (!lo) throw new SysError('bring lo up: no lo in this namespace', 19 /* ENODEV */);
        setLink(nl, lo.index, { up: true });
      });
    }
  },
};

// netns-enter: enter a network namespace — a path, an fd, a process's, a
// named one (/run/netns/NAME) or a new one — optionally bring loopback up,
// and exec the rest. What is given is checked to be a network namespace
// before setns; a path is opened O_PATH first, so a FIFO or device is never
// opened for reading with privilege.
import {
  UsageError, unshareNet, setns, openNamespaceUntrusted, checkNamespace, close, withNetlink, getLink, setLink,
  parseFd, parseUint, optString, optFlag, CLONE_NEWNET, type Program,
} from '@netgrant/core';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

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
    const given = ['path', 'fd', 'target', 'name', 'new'].filter((k) => opts[k] !== undefined && opts[k] !== false);
    if (given.length !== 1) throw new UsageError(given.length ? `give one namespace, not ${given.length}` : 'which namespace? give -p, -d, -t, -n or --new');
    const pathText = optString(opts, 'path');
    const fdText = optString(opts, 'fd');
    const pidText = optString(opts, 'target');
    const name = optString(opts, 'name');
    if (name !== undefined && (!NAME_RE.test(name) || name === '.' || name === '..')) throw new UsageError(`-n: invalid namespace name ${JSON.stringify(name)}`);
    if (optFlag(opts, 'new')) unshareNet();
    else if (fdText !== undefined) {
      const fd = chain.fds.fd(parseFd(fdText, '-d'), '-d');
      checkNamespace(fd, CLONE_NEWNET, '-d');
      setns(fd, CLONE_NEWNET);
    } else {
      const path = pathText ?? (name !== undefined ? `/run/netns/${name}` : `/proc/${parseUint(pidText!, '-t', 1, 4194304)}/ns/net`);
      const fd = openNamespaceUntrusted(path, CLONE_NEWNET);
      try {
        setns(fd, CLONE_NEWNET);
      } finally {
        close(fd);
      }
    }
    // Opened after setns, so the socket belongs to the namespace we are now in.
    if (optFlag(opts, 'lo')) withNetlink((nl) => setLink(nl, getLink(nl, 'lo')!.index, { up: true }));
  },
};

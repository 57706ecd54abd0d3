// fd-send: send fds and KEY=VALUE metadata over a unix socket in one framed
// message (or one byte + one fd with --byte), then exec the rest or exit 0.
import {
  UsageError, InputError, isUnnamedPair, setPassCred, encodeEnv, sendMessage, sendByte,
  parseFd, parseFdList, parseUint, optString, optList, optFlag, requireString, type Program,
} from '@netgrant/core';

const VAR_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const program: Program = {
  name: 'fd-send',
  usage: '-s SOCKFD [-d FD[,FD...]] [-e VAR]... [-k] [--byte C] [prog...]',
  options: [
    { name: 'socket', short: 's', value: true },
    { name: 'fds', short: 'd', value: true },
    { name: 'env', short: 'e', value: true, multi: true },
    { name: 'keep', short: 'k' },
    { name: 'byte', value: true },
  ],
  resident: () => null,
  run(chain, opts) {
    const sockNum = parseFd(requireString(opts, 'socket', '-s'), '-s');
    const fdText = optString(opts, 'fds');
    const nums = fdText === undefined ? [] : parseFdList(fdText, '-d');
    const names = optList(opts, 'env').flatMap((v) => v.split(','));
    for (const n of names) if (!VAR_RE.test(n)) throw new UsageError(`-e: invalid variable name ${JSON.stringify(n)}`);
    const byteText = optString(opts, 'byte');
    const byte = byteText === undefined ? undefined : parseUint(byteText, '--byte', 0, 255);
    if (byte !== undefined && (nums.length !== 1 || names.length)) throw new UsageError('--byte sends exactly one fd (-d FD) and no variables');
    if (nums.includes(sockNum)) throw new UsageError(`-d: fd ${sockNum} is the socket`);
    const sock = chain.fds.socket(sockNum, '-s');
    const fds = nums.map((n) => chain.fds.fd(n, '-d'));
    const vars = names.map((n) => {
      const v = chain.env.get(n);
      if (v === undefined) throw new InputError(`-e: variable ${n} is not set`);
      return [n, v] as const;
    });
    // On a socketpair the receiver learns who we are from SCM_CREDENTIALS,
    // which the kernel records only if an end has SO_PASSCRED at send time.
    if (isUnnamedPair(sock)) setPassCred(sock, true);
    if (byte !== undefined) sendByte(sock, byte, fds[0]!);
    else sendMessage(sock, encodeEnv(vars), fds);
    // The peer holds them now; the next program must not (a lease lives as long as its fd).
    for (const n of nums) {
      if (optFlag(opts, 'keep')) chain.fds.keep(n);
      else chain.fds.close(n);
    }
  },
};

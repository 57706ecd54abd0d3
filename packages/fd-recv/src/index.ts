// fd-recv: receive one framed message (or one byte + one fd with --byte),
// place its fds at fixed numbers, export the allowed metadata, exec the rest.
import {
  UsageError, InputError, ProtocolError, closeAll, recvMessage, recvByte, decodeEnv,
  parseFd, parseFdList, parseUint, optString, optList, optFlag, requireString, choosesCode, MAX_FDS_PER_MESSAGE, type Program,
} from '@netgrant/core';

const VAR_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** What trusted links say about the peer (super-server, peer-check, bridge-acl): with -E never taken from the peer itself. */
const IDENTITY_RE = /^(PROTO|PEERUID|PEERGID|PEERPID|ACLBRIDGE|[A-Z0-9]+(REMOTE|LOCAL)[A-Z0-9]*)$/;

export const program: Program = {
  name: 'fd-recv',
  usage: '-s SOCKFD [-d FD[,FD...]] [-m MIN] [-e VAR]... [-E] [-t MS] [-z BYTES] [--byte C] prog...',
  options: [
    { name: 'socket', short: 's', value: true },
    { name: 'fds', short: 'd', value: true },
    { name: 'min', short: 'm', value: true },
    { name: 'env', short: 'e', value: true, multi: true },
    { name: 'any-env', short: 'E' },
    { name: 'timeout', short: 't', value: true },
    { name: 'max-size', short: 'z', value: true },
    { name: 'byte', value: true },
  ],
  resident: () => null,
  async run(chain, opts) {
    const sockNum = parseFd(requireString(opts, 'socket', '-s'), '-s');
    const listed = optString(opts, 'fds');
    const byteText = optString(opts, 'byte');
    const byte = byteText === undefined ? undefined : parseUint(byteText, '--byte', 0, 255);
    // Without -d: whatever arrives goes to 3, 4, ... (at most 64 fds).
    const targets = listed !== undefined ? parseFdList(listed, '-d') : byte !== undefined ? [3] : null;
    const maxFds = targets ? targets.length : 64;
    const minText = optString(opts, 'min');
    const min = minText === undefined ? (targets ? targets.length : 0) : parseUint(minText, '-m', 0, maxFds);
    const timeoutText = optString(opts, 'timeout');
    const timeoutMs = timeoutText === undefined ? -1 : parseUint(timeoutText, '-t', 0, 2147483647);
    const sizeText = optString(opts, 'max-size');
    const maxPayload = sizeText === undefined ? 65536 : parseUint(sizeText, '-z', 0, 1 << 28);
    const allowAll = optFlag(opts, 'any-env');
    const allowed = new Set(optList(opts, 'env').flatMap((v) => v.split(',')));
    for (const n of allowed) if (!VAR_RE.test(n)) throw new UsageError(`-e: invalid variable name ${JSON.stringify(n)}`);
    for (const n of allowed) if (choosesCode(n)) throw new UsageError(`-e: ${n} is never taken from a peer (it chooses the code the next program runs)`);
    if (byte !== undefined && (targets!.length !== 1 || allowed.size || allowAll)) throw new UsageError('--byte receives exactly one fd and no variables');
    if (targets?.includes(sockNum)) throw new UsageError(`-d: fd ${sockNum} is the socket`);
    if (targets && targets.length > MAX_FDS_PER_MESSAGE) throw new UsageError(`-d: at most ${MAX_FDS_PER_MESSAGE} fds`);
    const sock = chain.fds.socket(sockNum, '-s');

    if (byte !== undefined) {
      const fd = await recvByte(sock, byte, timeoutMs, chain.fds.wait);
      chain.fds.place([fd], targets!);
      return;
    }
    const msg = await recvMessage(sock, { maxFds, maxPayload, timeoutMs, wait: chain.fds.wait });
    let vars: [string, string][];
    try {
      if (msg.fds.length < min) throw new ProtocolError('receive message', `expected at least ${min} fd${min === 1 ? '' : 's'}, got ${msg.fds.length}`);
      vars = decodeEnv(msg.payload);
      // Even from a trusted sender (-E), a peer never chooses the code the
      // chain runs next, nor says who it is (name those with -e if meant).
      for (const [k] of allowAll ? vars : []) {
        if (choosesCode(k)) throw new ProtocolError('receive message', `variable ${k} refused: it chooses the code the next program runs`, 1 /* EPERM */);
        if (IDENTITY_RE.test(k)) throw new ProtocolError('receive message', `variable ${k} refused: it names the peer, which only a trusted link may do (-e ${k} to take it from a trusted sender)`, 1);
      }
    } catch (e) {
      closeAll(msg.fds);
      throw e;
    }
    const places = targets ? targets.slice(0, msg.fds.length) : msg.fds.map((_, i) => 3 + i);
    if (!targets && places.includes(sockNum)) {
      closeAll(msg.fds);
      throw new InputError(`fds would be placed on the socket fd ${sockNum}: use -d`);
    }
    chain.fds.place(msg.fds, places);
    // Only variables the administrator allowed reach the next program.
    for (const [k, v] of vars) if (allowAll || allowed.has(k)) chain.env.set(k, v);
  },
};

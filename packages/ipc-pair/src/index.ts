// ipc-pair: run a chain on one end of a socketpair (its fds 0 and 1) and
// exec the rest with the other end at fds 6 and 7, like a UCSPI client.
import { UsageError, spawnOnSocketpair, dupCloexec, parseFd, optString, type Program } from '@netgrant/core';
import { splitBlock } from './block.js';

export const program: Program = {
  name: 'ipc-pair',
  usage: "[-d FD] { server-prog... } client-prog...   (raw argv: ' word'... '' client-prog...)",
  options: [{ name: 'fd', short: 'd', value: true }],
  async run(chain, opts) {
    const fdText = optString(opts, 'fd');
    const targets = fdText === undefined ? [6, 7] : [parseFd(fdText, '-d')];
    const { block, rest } = splitBlock(chain.rest);
    if (block.length === 0) throw new UsageError('empty server block');
    if (rest.length === 0) throw new UsageError('no client program');
    const pair = await spawnOnSocketpair(block);
    // Our end, at 6 and 7 (a UCSPI client's read and write fds) or at -d.
    chain.fds.place(targets.map(() => dupCloexec(pair.fd, 3)), targets);
    chain.rest = rest;
  },
};

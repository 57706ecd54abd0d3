// netgrant-serve: the resident server. Listens on a unix socket and runs the
// chain for every connection inside this process: no process start per
// lease. Only links that change no process state are accepted, checked
// before anything is served.
import {
  UsageError, InputError, checkResidentChain, parseUint, optString, optFlag, say, type Program,
} from '@netgrant/core';
import { writeSync, unlinkSync } from 'node:fs';
import { openListener, type ListenFrom } from './listener.js';
import { serve } from './serve.js';
import { startServerReaper } from './reap.js';

export const program: Program = {
  name: 'netgrant-serve',
  usage: '[-1] [-v] [--no-reap] [-c MAXCONN] [-C MAXPERUID] [-t MS] [-a MODE] [-b BACKLOG] (PATH | -0 | -L) prog...',
  options: [
    { name: 'ready', short: '1' },
    { name: 'verbose', short: 'v' },
    { name: 'maxconn', short: 'c', value: true },
    { name: 'maxperuid', short: 'C', value: true },
    { name: 'timeout', short: 't', value: true },
    { name: 'mode', short: 'a', value: true },
    { name: 'backlog', short: 'b', value: true },
    { name: 'stdin', short: '0' },
    { name: 'systemd', short: 'L' },
    { name: 'no-reap' },
  ],
  async run(chain, opts) {
    if (!chain.resolveOwn) throw new InputError('the resident server runs from the netgrant bundle only');
    const maxConn = parseUint(optString(opts, 'maxconn') ?? '40', '-c', 1, 10000);
    const maxPerUid = parseUint(optString(opts, 'maxperuid') ?? String(Math.min(8, maxConn)), '-C', 1, maxConn);
    const timeoutMs = parseUint(optString(opts, 'timeout') ?? '10000', '-t', 1, 3600000);
    const modeText = optString(opts, 'mode') ?? '0777';
    if (!/^0?[0-7]{3}$/.test(modeText)) throw new UsageError(`-a: not an octal mode: ${modeText}`);
    const backlog = parseUint(optString(opts, 'backlog') ?? '64', '-b', 1, 65535);
    let from: ListenFrom;
    let words = chain.rest;
    if (optFlag(opts, 'stdin') && optFlag(opts, 'systemd')) throw new UsageError('-0 and -L exclude each other');
    if (optFlag(opts, 'stdin')) from = { kind: 'stdin' };
    else if (optFlag(opts, 'systemd')) from = { kind: 'systemd' };
    else {
      if (words.length === 0) throw new UsageError('no socket path');
      from = { kind: 'path', path: words[0]!.toString(), mode: parseInt(modeText, 8), backlog };
      words = words.slice(1);
    }
    // Refuse any chain that would change process state or exec, before listening.
    const resident = checkResidentChain(words, chain.resolveOwn);
    const listener = openListener(from, chain.env);
    const cleanup = () => {
      if (from.kind === 'path') {
        try {
          unlinkSync(from.path);
        } catch {
          /* already gone */
        }
      }
      process.exit(0);
    };
    process.on('SIGTERM', cleanup);
    process.on('SIGINT', cleanup);
    if (!optFlag(opts, 'no-reap')) startServerReaper(optFlag(opts, 'verbose'));
    if (optFlag(opts, 'ready')) {
      try {
        writeSync(1, '\n');
      } catch {
        say('netgrant-serve', 'warning', 'could not write the readiness notification on fd 1');
      }
    }
    await serve({ listener, chain: resident, maxConn, maxPerUid, timeoutMs, verbose: optFlag(opts, 'verbose') });
  },
};

// The single executable's entry (tools/build/sea.mjs): one file holding
// every program, run as the program its argv[0] names (a link to it), or
// as `netgrant PROGRAM ...`. It may hold file capabilities and be run by
// anyone (docs/single-executable.md): only the launchers that know how to
// use them (each raised around its calls, dropped after its last use) run
// with them; every other program starts by dropping them all.
import './sea-env.js';
import { runProgram, say, rawArgs, capGet, capSet } from '@netgrant/core';
import { basename } from 'node:path';
import { programs } from './programs.js';
import { singleExecutableResolver } from './resolve.js';

const CAPABILITY_AWARE = new Set(['mkipvlan', 'mkmacvlan', 'mkveth']);

function fatal(name: string, msg: string): never {
  say(name, 'fatal', msg);
  process.exit(100);
}

// Node's copy of argv[0] (the kernel's, as exec'd: a link's name).
let name = basename(process.argv[1] ?? 'netgrant');
let words = rawArgs();
if (name === 'netgrant') {
  if (words.length === 0) fatal('netgrant', `usage: netgrant PROGRAM [ARGS...] (PROGRAM: ${[...programs.keys()].join(', ')})`);
  name = words[0]!.toString();
  words = words.slice(1);
}
const prog = programs.get(name) ?? fatal('netgrant', `unknown program ${JSON.stringify(name)}`);
// NODE_CHANNEL_FD: Node has already opened an IPC channel on the caller's fd (and removed the variable).
if (process.channel) fatal(name, 'refused: started with a Node IPC channel (NODE_CHANNEL_FD)');
if (!CAPABILITY_AWARE.has(name) && process.geteuid?.() !== 0) {
  const c = capGet();
  if (c.permitted | c.effective | c.inheritable) capSet({ effective: 0n, permitted: 0n, inheritable: 0n });
}
void runProgram(prog, words, singleExecutableResolver(programs, process.execPath));

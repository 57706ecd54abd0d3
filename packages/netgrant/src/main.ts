// The bundle's entry: bin/<name> calls main('<name>').
// @netgrant/core must be imported first (it records stdio and fd state at load).
import { runProgram, say } from '@netgrant/core';
import { join } from 'node:path';
import { programs } from './programs.js';
import { ownProgramResolver } from './resolve.js';

export function main(name: string): void {
  const prog = programs.get(name);
  if (!prog) {
    say('netgrant', 'fatal', `unknown program ${name}`);
    process.exit(100);
  }
  // argv is read inside runProgram, where a failure is a one-line error.
  void runProgram(prog, undefined, ownProgramResolver(programs, join(__dirname, '..', 'bin')));
}

// The bundle's entry: bin/<name> calls main('<name>').
// @netgrant/core must be imported first (it records stdio state at load).
import { runProgram, say } from '@netgrant/core';
import { programs } from './programs.js';

export function main(name: string): void {
  const prog = programs.get(name);
  if (!prog) {
    say('netgrant', 'fatal', `unknown program ${name}`);
    process.exit(100);
  }
  void runProgram(prog);
}

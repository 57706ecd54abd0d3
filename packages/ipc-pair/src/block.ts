// execline's block syntax in raw argv (as execline's `pipeline` and
// `foreground` take it): the block's words each begin with one space, which
// is removed; an empty word ends the block. Nested blocks keep their extra
// spaces. In an execlineb script this is written `{ words... }`.
import { UsageError } from '@netgrant/core';

export function splitBlock(argv: readonly Buffer[]): { block: Buffer[]; rest: Buffer[] } {
  const block: Buffer[] = [];
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w.length === 0) return { block, rest: argv.slice(i + 1) };
    if (w[0] !== 0x20) throw new UsageError(`expected a block: word ${JSON.stringify(w.toString())} does not begin with a space`);
    block.push(w.subarray(1));
  }
  throw new UsageError('unterminated block (the block ends with an empty word)');
}

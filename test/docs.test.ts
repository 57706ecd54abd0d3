// Every program has a man page in docs/ with the sections the project
// promises, and its OPTIONS section names every option the program accepts
// (from the program's own option table, so a new option cannot go
// undocumented), and its SYNOPSIS starts with the program's name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../tools/test/lib/harness.js';
import { programs } from '../packages/netgrant/src/programs.js';

const SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'ENVIRONMENT', 'EXIT STATUS', 'EXAMPLES', 'SECURITY'];

/** The text of section `name` (up to the next `## `). */
function section(page: string, name: string): string {
  const m = page.match(new RegExp(`^## ${name}\\n([\\s\\S]*?)(?=^## |$(?![\\s\\S]))`, 'm'));
  return m ? m[1]! : '';
}

/** A program's manual section: 8 for the root-run servers and creators, 1 for the rest (docs/netgrant.7.md, MANUAL SECTIONS). */
function manSection(name: string): string {
  return existsSync(join(ROOT, 'docs', `${name}.8.md`)) ? '8' : '1';
}

test('every program package is in the bundle and has a man page', () => {
  const packages = readdirSync(join(ROOT, 'packages')).filter((p) => p !== 'core' && p !== 'netgrant' && p !== 'lease').sort();
  assert.equal([...programs.keys()].sort(), packages);
  for (const p of packages) readFileSync(join(ROOT, 'docs', `${p}.${manSection(p)}.md`), 'utf8');
  for (const p of packages) assert.ok(!(existsSync(join(ROOT, 'docs', `${p}.1.md`)) && existsSync(join(ROOT, 'docs', `${p}.8.md`))), `${p} has one man page`);
});

for (const [name, prog] of programs) {
  const sec = manSection(name);
  test(`${name}(${sec}): the sections, the synopsis, every option`, () => {
    const page = readFileSync(join(ROOT, 'docs', `${name}.${sec}.md`), 'utf8');
    assert.ok(page.startsWith(`# ${name}(${sec})\n`), 'title');
    for (const s of SECTIONS) assert.ok(section(page, s).trim() !== '', `section ${s} is missing or empty`);
    assert.ok(section(page, 'SYNOPSIS').includes(`    ${name} `) || section(page, 'SYNOPSIS').includes(`    ${name}\n`), 'the synopsis shows the program');
    const options = section(page, 'OPTIONS');
    for (const o of prog.options) {
      const spelled = [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])];
      assert.ok(spelled.some((s) => new RegExp(`\`${s}[\\s=\`]`).test(options)), `${spelled.join(' / ')} is not documented under OPTIONS`);
    }
  });
}

test.run();

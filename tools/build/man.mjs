#!/usr/bin/env node
// Build the man pages: docs/<name>.<section>.md (sections 1, 7, 8) ->
// packages/netgrant/dist/man/<name>.<section>, roff, through marked-man
// (kapouer/marked-man: marked with a roff renderer, ronn's conventions).
// The section is the file's (docs/netgrant.7.md, MANUAL SECTIONS); each
// page's own `## NAME` section is kept as written. The date is the page's
// last commit (SOURCE_DATE_EPOCH wins), so rebuilding changes nothing.
import { spawnSync } from 'node:child_process';
import { Marked } from 'marked';
import markedMan from 'marked-man';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'packages', 'netgrant', 'dist', 'man');
const version = JSON.parse(readFileSync(join(root, 'packages', 'netgrant', 'package.json'), 'utf8')).version;

/** The man page sources: [file, name, section]. */
export function manSources() {
  return readdirSync(join(root, 'docs'))
    .map((f) => /^(.+)\.([178])\.md$/.exec(f))
    .filter(Boolean)
    .map((m) => [join(root, 'docs', m[0]), m[1], m[2]])
    .sort((a, b) => a[0].localeCompare(b[0]));
}

function dateOf(file) {
  if (process.env.SOURCE_DATE_EPOCH) return new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000);
  const r = spawnSync('git', ['log', '-1', '--format=%ct', '--', file], { cwd: root, encoding: 'utf8' });
  const t = Number(r.stdout?.trim());
  return r.status === 0 && t > 0 ? new Date(t * 1000) : new Date();
}

/** Convert one page; its roff text. */
export function toRoff(file, name, section) {
  const page = readFileSync(file, 'utf8');
  if (!page.startsWith(`# ${name}(${section})\n`)) throw new Error(`${file}: the first line must be "# ${name}(${section})"`);
  // marked-man's own options, as its CLI sets them (marked-man --no-breaks --name ... --section ...).
  const marked = new Marked().use({ ...markedMan, breaks: false, name, section, manVersion: version, manual: 'netgrant', date: dateOf(file).getTime() });
  const roff = marked.parse(page, { async: false });
  if (!roff.startsWith('.TH ')) throw new Error(`marked-man failed on ${file}: ${roff.slice(0, 200)}`);
  return roff;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Built beside, renamed into place whole: a reader sees the old set or the new.
  const tmp = `${out}.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [file, name, section] of manSources()) writeFileSync(join(tmp, `${name}.${section}`), toRoff(file, name, section));
  rmSync(`${out}.old`, { recursive: true, force: true });
  try {
    renameSync(out, `${out}.old`);
  } catch {
    /* first build */
  }
  renameSync(tmp, out);
  rmSync(`${out}.old`, { recursive: true, force: true });
}

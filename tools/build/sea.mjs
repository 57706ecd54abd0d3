#!/usr/bin/env node
// npm run build-sea: the single executable (docs/single-executable.md).
// npm test's pretest runs it with --if-possible (see below).
//   packages/netgrant/dist/sea/netgrant     Node with every program in it
//                                           (a single executable application,
//                                           with V8's code cache of its code)
//   packages/netgrant/dist/sea/koffi.node   koffi's native module, which it
//                                           loads from beside itself
//   packages/netgrant/dist/sea/bin/<prog>   a link to it per program (the
//                                           bench puts them on PATH)
// --out DIR: into DIR instead (a test's build).
// Built from the Node running this script, which is the Node inside the
// executable: by `node --build-sea` (Node >= 25.5: the main line), or by
// `node --experimental-sea-config` and postject (22.20 and later 22s,
// 24.7 and later 24s: the first with `execArgvExtension`); any other Node
// is refused (its executable would run its caller's NODE_OPTIONS). Either
// way the new executable is started once with NODE_OPTIONS and
// --node-options= naming a script, and refused if the script ran (or if it
// did not reach its own code). It does
// not setcap: that is the install's last step (a later write to the file
// would clear the capabilities anyway).
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOptions, copyNative, nativePkg } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outAt = process.argv.indexOf('--out');
const out = outAt > 0 && process.argv[outAt + 1] ? resolve(process.argv[outAt + 1]) : join(root, 'packages', 'netgrant', 'dist', 'sea');
const work = join(root, '.build', `sea-${process.pid}`);
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function fatal(msg, code) {
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(`build-sea: fatal: ${msg}\n`);
  process.exit(code);
}

/** How this Node builds a single executable that never takes Node's options from its caller: 'build-sea', 'postject', or null. */
function route([major, minor]) {
  if (major > 25 || (major === 25 && minor >= 5)) return 'build-sea';
  // execArgvExtension: 24.7.0 and 22.20.0 (PRs #59314, #59560). Without it Node ignores the field: NODE_OPTIONS would be honoured.
  if ((major === 24 && minor >= 7) || (major === 22 && minor >= 20)) return 'postject';
  return null;
}
const how = route(process.versions.node.split('.').map(Number));
if (!how) {
  const why = `Node ${process.version} has no execArgvExtension (22.20, 24.7 or later; --build-sea from 25.5): its single executable would run its caller's NODE_OPTIONS`;
  // --if-possible (npm test's pretest): under such a Node, say so and leave the executable as it is.
  if (process.argv.includes('--if-possible')) {
    process.stderr.write(`build-sea: ${why}; the single executable is not (re)built; its tests need it (npm run build-sea under Node 26)\n`);
    process.exit(0);
  }
  fatal(why, 100);
}

/** The ELF type of file (2 ET_EXEC, 3 ET_DYN: a PIE). */
function elfType(file) {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(18);
  readSync(fd, b, 0, 18, 0);
  closeSync(fd);
  return b.toString('latin1', 0, 4) === '\x7fELF' ? b.readUInt16LE(16) : -1;
}

const started = Date.now();
mkdirSync(work, { recursive: true });
mkdirSync(out, { recursive: true });
const options = bundleOptions();
await build({
  ...options,
  entryPoints: [join(root, 'packages', 'netgrant', 'src', 'sea.ts')],
  outfile: join(work, 'main.cjs'),
  minifySyntax: true,
  alias: { ...options.alias, [nativePkg]: join(root, 'tools', 'build', 'koffi-sea.cjs') },
});
const config = join(work, 'sea-config.json');
const tmp = join(out, `netgrant.${process.pid}`);
const blob = join(work, 'sea.blob');
writeFileSync(config, JSON.stringify({
  main: join(work, 'main.cjs'),
  // --build-sea writes the executable; --experimental-sea-config the blob postject injects.
  output: how === 'build-sea' ? tmp : blob,
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  // Node's options never come from the caller: not from NODE_OPTIONS, not from argv.
  execArgvExtension: 'none',
}, null, 2));
/** Run argv; on failure, fatal with the last line of its stderr. */
function step(what, argv) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    fatal(`${what} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').pop()}`, 111);
  }
}
if (how === 'build-sea') {
  step('node --build-sea', [process.execPath, '--build-sea', config]);
} else {
  // postject vendors LIEF 0.13, which corrupts a PIE's dynamic symbols (LIEF #1241): official builds are not PIE.
  if (elfType(process.execPath) !== 2) fatal(`${process.execPath} is not an ET_EXEC ELF file (a PIE?): postject's LIEF 0.13 corrupts those; use an official Node build`, 100);
  const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
  if (!existsSync(postject)) fatal(`${postject} is missing (a devDependency: npm ci)`, 100);
  step('node --experimental-sea-config', [process.execPath, '--experimental-sea-config', config]);
  copyFileSync(process.execPath, tmp);
  step('postject', [process.execPath, postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
}
// The check: a script named by NODE_OPTIONS or --node-options= never runs.
const probe = join(work, 'probe.cjs');
const marker = join(work, 'probe-ran');
writeFileSync(probe, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, '');\n`);
const tried = spawnSync(tmp, [`--node-options=--require=${probe}`], { env: { PATH: process.env.PATH, NODE_OPTIONS: `--require=${probe}` }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 60000 });
if (existsSync(marker)) {
  rmSync(tmp, { force: true });
  fatal('the new executable ran a script its caller named in NODE_OPTIONS or --node-options=: refused', 111);
}
// And it did start: its own one fatal line (named netgrant.PID, it is no program; or koffi.node is not beside it yet).
if (!/^netgrant[.0-9]*: fatal: /.test(tried.stderr ?? '')) {
  rmSync(tmp, { force: true });
  fatal(`the new executable did not start (exit ${tried.status ?? tried.signal}): ${(tried.stderr ?? '').trim().split('\n').pop()}`, 111);
}
chmodSync(tmp, 0o755);
// koffi.node first, then the executable: a new executable never meets an old native module.
copyNative(out);
chmodSync(join(out, 'koffi.node'), 0o644);
renameSync(tmp, join(out, 'netgrant'));
const links = join(out, 'bin');
rmSync(links, { recursive: true, force: true });
mkdirSync(links);
for (const name of Object.keys(JSON.parse(readFileSync(join(root, 'packages', 'netgrant', 'package.json'), 'utf8')).bin)) symlinkSync('../netgrant', join(links, name));
rmSync(work, { recursive: true, force: true });
process.stderr.write(`build-sea: ${join(out, 'netgrant')} (${how}, Node ${process.version}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

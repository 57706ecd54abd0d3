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
// Built by `node --build-sea` (Node >= 25.5) with the Node running this
// script, which is the Node inside the executable: the main line. It does
// not setcap: that is the install's last step (a later write to the file
// would clear the capabilities anyway).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOptions, copyNative, nativePkg } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'packages', 'netgrant', 'dist', 'sea');
const work = join(root, '.build', 'sea');
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 25 || (major === 25 && minor < 5)) {
  // --if-possible (npm test's pretest): under an older Node, say so and leave the executable as it is.
  if (process.argv.includes('--if-possible')) {
    process.stderr.write(`build-sea: Node ${process.version} has no --build-sea (25.5 or later): the single executable is not (re)built; its tests need it (run npm test under Node 26 once, or npm run build-sea with it)\n`);
    process.exit(0);
  }
  process.stderr.write(`build-sea: fatal: Node ${process.version} has no --build-sea (25.5 or later): build with the main line\n`);
  process.exit(100);
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
writeFileSync(config, JSON.stringify({
  main: join(work, 'main.cjs'),
  output: tmp,
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  // Node's options never come from the caller: not from NODE_OPTIONS, not from argv.
  execArgvExtension: 'none',
}, null, 2));
const made = spawnSync(process.execPath, ['--build-sea', config], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (made.status !== 0) {
  process.stderr.write(`build-sea: fatal: node --build-sea failed (exit ${made.status ?? made.signal}): ${made.stderr.trim().split('\n').pop()}\n`);
  process.exit(111);
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
process.stderr.write(`build-sea: ${join(out, 'netgrant')} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

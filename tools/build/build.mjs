#!/usr/bin/env node
// Bundle the toolkit: packages/netgrant/src/main.ts -> packages/netgrant/dist/netgrant.cjs
// with koffi's JS inlined and its native module copied beside the bundle,
// the loader the entry points use (load.cjs) and V8's code cache of the
// bundle (netgrant.cjs.cache).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));
const out = join(root, 'packages', 'netgrant', 'dist');
const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
if (!arch) throw new Error(`unsupported architecture ${process.arch}`);
export const nativePkg = `@koromix/koffi-linux-${arch}`;

// koffi's require('node:util') gets tools/build/koffi-util.cjs (see there).
const koffiUtil = {
  name: 'koffi-util',
  setup(b) {
    b.onResolve({ filter: /^(node:)?util$/ }, (args) =>
      /[\\/]node_modules[\\/]koffi[\\/]/.test(args.importer) ? { path: join(root, 'tools', 'build', 'koffi-util.cjs') } : undefined);
  },
};

/** esbuild options shared by the toolkit bundle and the test bundles. */
export function bundleOptions() {
  return {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    // koffi's CommonJS entry (its ESM one needs import.meta.url), and its
    // native module loaded from beside the bundle.
    alias: {
      koffi: join(root, 'node_modules', 'koffi', 'index.cjs'),
      [nativePkg]: join(root, 'tools', 'build', 'koffi-native.cjs'),
    },
    // koffi probes every platform package inside try/catch; only ours exists.
    external: ['@koromix/*'],
    plugins: [koffiUtil],
  };
}

/**
 * Copy koffi's native module for this machine into dir. Through a new file
 * renamed into place: running programs have the old one mapped, and
 * rewriting that file in place would crash them (SIGBUS/SIGSEGV).
 */
export function copyNative(dir) {
  mkdirSync(dir, { recursive: true });
  const pkgDir = dirname(require.resolve(`${nativePkg}/package.json`));
  replace(join(dir, 'koffi.node'), readFileSync(join(pkgDir, `linux_${arch}`, 'koffi.node')));
}

/** Write a file through a new one renamed into place. */
function replace(path, contents) {
  writeFileSync(`${path}.${process.pid}`, contents);
  renameSync(`${path}.${process.pid}`, path);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // The build's id ties the code cache to this bundle (tools/build/load.cjs).
  const id = randomBytes(16).toString('hex');
  const { outputFiles } = await build({
    ...bundleOptions(),
    entryPoints: [join(root, 'packages', 'netgrant', 'src', 'main.ts')],
    outfile: join(out, 'netgrant.cjs'),
    banner: { js: `// netgrant build ${id}` },
    minifySyntax: true,
    write: false,
  });
  // Renamed into place too: a program starting meanwhile reads the old bundle or the new, never half of one.
  mkdirSync(out, { recursive: true });
  for (const f of outputFiles) replace(f.path, f.contents);
  replace(join(out, 'load.cjs'), readFileSync(join(root, 'tools', 'build', 'load.cjs')));
  copyNative(out);
  // V8's code cache of the bundle, made by this Node after running the
  // bundle's module body (so the functions that ran are in it too).
  const made = spawnSync(process.execPath, ['-e', 'process.stdout.write(require(process.argv[1]).makeCache())', join(out, 'load.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (made.status !== 0) throw new Error(`making the code cache failed (exit ${made.status ?? made.signal})`);
  replace(join(out, 'netgrant.cjs.cache'), made.stdout);
}

#!/usr/bin/env node
// npm run install-prefix -- PREFIX: install the built toolkit into PREFIX
// (docs/install.md):
//   PREFIX/lib/netgrant/{bin,dist}   the entry points and the bundle, with
//                                    koffi's native module beside it (needs
//                                    nothing from node_modules)
//   PREFIX/bin/netgrant              the single executable (npm run build-sea),
//                                    koffi.node beside it (docs/single-executable.md)
//   PREFIX/bin/<prog>                a symlink per program, to netgrant
//   (PREFIX/lib/netgrant also runs under any supported Node:
//    node PREFIX/lib/netgrant/bin/<prog>)
//   PREFIX/share/man/man{1,7,8}      the man pages (roff, built by tools/build/man.mjs)
//   PREFIX/share/netgrant/{s6,systemd}  example service definitions, with
//                                    @BINDIR@ replaced by PREFIX/bin
// Every file is written beside its target and renamed into place, so a
// program running from PREFIX meanwhile (koffi.node is mapped) is never
// rewritten under it. Failures: one line `install-prefix: fatal: ...`, exit
// 100 (usage, not built) or 111 (a file operation failed). The file
// capabilities are the administrator's step after it (SETCAP below): a new
// executable has none.
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkgDir = join(root, 'packages', 'netgrant');
const PROG = 'install-prefix';
/** The install step that follows, for PREFIX/bin/netgrant. */
export const SETCAP = 'setcap cap_dac_override,cap_sys_admin,cap_net_admin+p';

function fatal(msg, code) {
  process.stderr.write(`${PROG}: fatal: ${msg}\n`);
  process.exit(code);
}

/** Write contents to path through a new file renamed into place. */
function put(path, contents, mode) {
  const tmp = `${path}.install-${process.pid}`;
  writeFileSync(tmp, contents, { mode });
  chmodSync(tmp, mode); // the umask does not decide
  renameSync(tmp, path);
}

/** Copy src to path through a new file renamed into place. */
function copy(src, path, mode) {
  const tmp = `${path}.install-${process.pid}`;
  copyFileSync(src, tmp);
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function dir(path) {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  return path;
}

/** A relative symlink at path to target, renamed into place. */
function link(path, target) {
  const rel = relative(dirname(path), target);
  try {
    if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === rel) return;
  } catch {
    /* absent */
  }
  const tmp = `${path}.install-${process.pid}`;
  symlinkSync(rel, tmp);
  renameSync(tmp, path);
}

/** Copy the tree src to dst, substituting @BINDIR@ in every file; run scripts stay executable. */
function copyTree(src, dst, bindir, out) {
  dir(dst);
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) copyTree(s, d, bindir, out);
    else {
      const text = readFileSync(s, 'utf8').replaceAll('@BINDIR@', bindir);
      put(d, text, lstatSync(s).mode & 0o111 ? 0o755 : 0o644);
      out.push(d);
    }
  }
}

export function install(prefix) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const dist = join(pkgDir, 'dist');
  const bundle = ['netgrant.cjs', 'load.cjs', 'koffi.node'];
  for (const f of [...bundle, 'man']) {
    if (!existsSync(join(dist, f))) fatal(`${join(dist, f)} is missing: build first (npm ci, or npm run build)`, 100);
  }
  const sea = join(dist, 'sea');
  for (const f of ['netgrant', 'koffi.node']) {
    if (!existsSync(join(sea, f))) fatal(`${join(sea, f)} is missing: build it first (npm run build-sea)`, 100);
  }
  const lib = dir(join(prefix, 'lib', 'netgrant'));
  const bindir = dir(join(prefix, 'bin'));
  // The bundle first, the entry points after: a new entry point never loads an old bundle.
  dir(join(lib, 'dist'));
  for (const f of [...bundle, 'netgrant.cjs.cache']) {
    if (existsSync(join(dist, f))) put(join(lib, 'dist', f), readFileSync(join(dist, f)), 0o644);
  }
  dir(join(lib, 'bin'));
  // The single executable's native module first, then the executable, then the links to it.
  copy(join(sea, 'koffi.node'), join(bindir, 'koffi.node'), 0o644);
  copy(join(sea, 'netgrant'), join(bindir, 'netgrant'), 0o755);
  const programs = [];
  for (const [name, rel] of Object.entries(pkg.bin)) {
    const src = join(pkgDir, rel);
    if (!existsSync(src)) continue; // declared by a package still being written
    put(join(lib, 'bin', name), readFileSync(src), 0o755);
    link(join(bindir, name), join(bindir, 'netgrant'));
    programs.push(name);
  }
  const mans = [];
  for (const f of readdirSync(join(dist, 'man')).sort()) {
    const m = /^.+\.([178])$/.exec(f);
    if (!m) continue;
    const d = join(dir(join(prefix, 'share', 'man', `man${m[1]}`)), f);
    put(d, readFileSync(join(dist, 'man', f)), 0o644);
    mans.push(d);
  }
  const services = [];
  copyTree(join(pkgDir, 'share'), join(prefix, 'share', 'netgrant'), bindir, services);
  return { programs, mans, services };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0].startsWith('-')) fatal('usage: npm run install-prefix -- PREFIX (an absolute directory)', 100);
  if (!isAbsolute(args[0])) fatal(`PREFIX must be an absolute path: ${JSON.stringify(args[0])}`, 100);
  let r;
  try {
    r = install(resolve(args[0]));
  } catch (e) {
    fatal(`${e.message.split('\n')[0]}`, 111);
  }
  const prefix = resolve(args[0]);
  process.stderr.write(`${PROG}: installed ${r.programs.length} programs, ${r.mans.length} man pages and ${r.services.length} service files into ${prefix}\n`);
  process.stderr.write(`${PROG}: for mkipvlan, mkmacvlan and mkveth without root, as root now: ${SETCAP} ${join(prefix, 'bin', 'netgrant')}\n`);
}

// Installing the toolkit outside a checkout (docs/install.md): the npm
// package from `npm pack`, installed with `npm install -g` into a fresh
// prefix, and `npm run install-prefix -- PREFIX` (tools/install/install.mjs).
// The installed programs are run with the checkout hidden (an empty tmpfs
// mounted over it in a mount namespace of their own), so nothing from the
// workspace can be what makes them work.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): what is installed and that
// the installed programs run; how links reach each other is the program
// files' subject.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run, sh, tempDir, ROOT, NOBODY, NODE } from '../tools/test/lib/harness.js';

const { dir, cleanup } = tempDir('netgrant-install-');
chmodSync(dir, 0o755);
const PKG = join(ROOT, 'packages', 'netgrant');
const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as {
  private?: boolean; bin: Record<string, string>; man: string[]; dependencies: Record<string, string>; devDependencies: Record<string, string>; files: string[];
};
const programs = Object.keys(pkg.bin).filter((p) => existsSync(join(PKG, pkg.bin[p]!))).sort();
const HOME = process.env.HOME ?? '/root';
// The machine's CA bundle, proxies and registry pass through: npm may have to fetch koffi's metadata.
const passed = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'npm_config_registry'];
const npmEnv = {
  HOME, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false',
  ...Object.fromEntries(passed.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]]))),
};

/** argv run in a mount namespace where the checkout is an empty directory, with only PREFIX/bin and the system on PATH. */
const hidden = (prefix: string, script: string) =>
  run(['unshare', '--mount', 'sh', '-c', `mount --make-rprivate / && mount -t tmpfs -o ro,mode=0755 hidden "$0" && exec sh -c "$1"`, ROOT, script],
    { env: { PATH: `${prefix}/bin:/usr/sbin:/usr/bin:/sbin:/bin` }, cwd: '/' });

/** What a chain of the installed programs must do: a tap made, held, sent over a socketpair to uid nobody, and gone after. */
function exercise(prefix: string, tag: string) {
  const b = `${prefix}/bin`;
  const block = (words: string[]) => [...words.map((w) => `' ${w}'`), "''"].join(' ');
  const script = [
    'set -e',
    // mktap creates and holds a tap while its next program runs.
    `mktap -n ${tag}a -o ${NOBODY} sh -c 'ip -o link show ${tag}a | grep -q ${tag}a && echo held $TAPNAME'`,
    `ip link show ${tag}a 2>/dev/null && exit 9 || true`,
    // A chain on a socketpair: peer-check admits nobody only, mktap, fd-send; the client (nobody) fd-recv's the tap.
    `ipc-pair ${block([`${b}/peer-check`, '-u', String(NOBODY), `${b}/mktap`, '-n', `${tag}b`, '-o', String(NOBODY), `${b}/fd-send`, '-s', '1', '-d', '3', '-e', 'TAPNAME'])} ` +
      `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${b}/fd-send -s 7 ${b}/fd-recv -s 6 -d 3 -e TAPNAME sh -c 'echo got $TAPNAME; readlink /proc/self/fd/3'`,
    // peer-check refuses root on the same socketpair: exit 1, nothing created.
    `if ipc-pair ${block([`${b}/peer-check`, '-u', String(NOBODY), `${b}/mktap`, '-n', `${tag}c`, `${b}/fd-send`, '-s', '1', '-d', '3'])} ${b}/fd-send -s 7 ${b}/fd-recv -s 6 -d 3 true 2>/dev/null; then exit 8; fi`,
    `ip link show ${tag}c 2>/dev/null && exit 7 || true`,
    'echo done',
  ].join('\n');
  const r = hidden(prefix, script);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^held ${tag}a\\ngot ${tag}b\\n/dev/net/tun\\n`));
  assert.match(r.stdout, /done\n$/);
  // Each failure is one line from the program.
  const bad = hidden(prefix, 'mktap -q x true');
  assert.is(bad.status, 100);
  assert.match(bad.stderr, /^mktap: fatal: -q: not a number: "x"[^\n]*\n$/);
}

/** Every symlink under dir points inside within. */
function linksInside(d: string, within: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isSymbolicLink()) {
      const t = resolve(d, readlinkSync(p));
      if (relative(within, t).startsWith('..')) out.push(`${p} -> ${t}`);
    } else if (e.isDirectory()) out.push(...linksInside(p, within));
  }
  return out;
}

/** Check a man page file renders with its title, NAME and SYNOPSIS. */
function rendersMan(file: string, name: string, section: string) {
  const r = run(['man', '-l', file], { env: { MANWIDTH: '100', MAN_KEEP_FORMATTING: '', PATH: '/usr/bin:/bin' } });
  assert.is(r.status, 0, `${file}: ${r.stderr}`);
  const text = r.stdout.replace(/.\x08/g, '');
  assert.ok(text.startsWith(`${name.toUpperCase()}(${section})`), `${file}: title line: ${text.slice(0, 80)}`);
  assert.match(text, /^NAME\n {7}\S/m, `${file}: NAME`);
  if (section !== '7') assert.match(text, new RegExp(`^SYNOPSIS\\n\\s+${name.replace(/[-]/g, '\\-')}( |\\n)`, 'm'), `${file}: SYNOPSIS shows the program`);
  else assert.match(text, /^SYNOPSIS\n/m);
  assert.not.match(text, /\\f[BIRP]|^\.[A-Z]{2} /m, `${file}: raw roff in the output`);
}

const manSources = readdirSync(join(ROOT, 'docs')).map((f) => /^(.+)\.([178])\.md$/.exec(f)).filter((m): m is RegExpExecArray => !!m).map((m) => [m[1]!, m[2]!] as const);

test('the package: not private, koffi the only dependency at the version the bundle inlines, every program and man page listed', () => {
  assert.is(pkg.private, undefined);
  const koffi = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'koffi', 'package.json'), 'utf8')).version;
  assert.equal(pkg.dependencies, { koffi });
  assert.ok(Object.keys(pkg.devDependencies).every((d) => d.startsWith('@netgrant/')), 'workspace packages are bundled: devDependencies');
  for (const p of programs) assert.ok(pkg.devDependencies[`@netgrant/${p}`], `@netgrant/${p} is bundled`);
  assert.equal(pkg.man.slice().sort(), manSources.map(([n, s]) => `dist/man/${n}.${s}`).sort(), 'package.json man lists every docs/<name>.<section>.md');
});

let tarball = '';
test('npm pack: the tarball holds the entry points, the bundle, the man pages and the service examples, and no workspace source', () => {
  const out = join(dir, 'pack');
  sh(`mkdir -p ${out}`);
  // --ignore-scripts: pack the tree as built (npm ci built it); the test does not rebuild a shared checkout.
  const r = run(['npm', 'pack', '-w', 'packages/netgrant', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: ROOT, env: npmEnv, timeout: 120000 });
  assert.is(r.status, 0, r.stderr);
  const [info] = JSON.parse(r.stdout) as [{ filename: string; files: { path: string }[]; size: number; unpackedSize: number }];
  tarball = join(out, info.filename);
  const files = info.files.map((f) => f.path).sort();
  for (const p of programs) assert.ok(files.includes(`bin/${p}`), `bin/${p}`);
  for (const f of ['dist/netgrant.cjs', 'dist/load.cjs', 'package.json', ...pkg.man]) assert.ok(files.includes(f), f);
  for (const s of ['netgrant-tap', 'netgrant-bridge-helper', 'netgrant-macvlan', 'netgrant-ipvlan']) assert.ok(files.includes(`share/s6/${s}/run`), `share/s6/${s}/run`);
  assert.ok(!files.some((f) => f.startsWith('src/') || f.endsWith('.ts') || f === 'dist/koffi.node'), `no sources, no koffi.node: ${files.join(' ')}`);
  console.log(`  tarball ${(info.size / 1024).toFixed(0)} KiB, unpacked ${(info.unpackedSize / 1024).toFixed(0)} KiB, ${files.length} files`);
});

test('npm install -g into a fresh prefix: every program on PATH, man pages linked, run with the checkout hidden', () => {
  assert.ok(tarball, 'packed');
  const prefix = join(dir, 'npm-prefix');
  // Online, through the runner's network namespace (tools/test/run.mjs), when the file runs in one of its own.
  const hostNet = process.env.NETGRANT_TEST_HOST_NETNS;
  const install = (offline: boolean) => run([...(offline || !hostNet ? [] : ['nsenter', `--net=${hostNet}`, '--']), 'npm', 'install', '-g', offline ? '--offline' : '--prefer-offline', '--prefix', prefix, tarball],
    { env: npmEnv, cwd: '/', timeout: 300000 });
  const started = Date.now();
  // From npm's cache if it has koffi's metadata; else through the host's network namespace (the test's own has no route out).
  let r = install(true);
  if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) r = install(false);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const du = run(['du', '-sk', prefix]).stdout.split('\t')[0];
  console.log(`  npm install -g: ${((Date.now() - started) / 1000).toFixed(1)} s, ${(Number(du) / 1024).toFixed(1)} MiB installed`);
  for (const p of programs) {
    const st = statSync(join(prefix, 'bin', p));
    assert.ok(st.isFile() && (st.mode & 0o111) !== 0, `${p} on PATH`);
  }
  const which = hidden(prefix, `for p in ${programs.join(' ')}; do command -v $p; done`);
  assert.is(which.stdout, programs.map((p) => `${prefix}/bin/${p}\n`).join(''));
  assert.equal(linksInside(prefix, prefix), [], 'no symlink leaves the prefix');
  // npm links the package's man pages into PREFIX/share/man.
  const w = run(['man', '-w', 'mktap'], { env: { MANPATH: join(prefix, 'share', 'man'), PATH: '/usr/bin:/bin' } });
  assert.is(w.status, 0, w.stderr);
  assert.ok(lstatSync(join(prefix, 'share', 'man', 'man8', 'mktap.8')).isSymbolicLink(), 'npm linked the page');
  assert.is(realpathSync(w.stdout.trim()), realpathSync(join(prefix, 'share', 'man', 'man8', 'mktap.8')));
  rendersMan(join(prefix, 'share', 'man', 'man8', 'mktap.8'), 'mktap', '8');
  exercise(prefix, 'np');
});

test('npm run install-prefix: the single executable and a link to it per program, bundle, man pages (man -l, man -w) and example services', () => {
  const prefix = join(dir, 'prefix');
  const started = Date.now();
  const r = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^install-prefix: installed ${programs.length} programs, ${manSources.length} man pages and \\d+ service files into ${prefix}\\ninstall-prefix: for mkipvlan, mkmacvlan and mkveth without root, as root now: setcap cap_dac_override,cap_sys_admin,cap_net_admin\\+p ${prefix}/bin/netgrant\\n$`));
  console.log(`  install-prefix: ${((Date.now() - started) / 1000).toFixed(1)} s, ${(Number(run(['du', '-sk', prefix]).stdout.split('\t')[0]) / 1024).toFixed(1)} MiB`);
  for (const p of programs) {
    assert.is(readlinkSync(join(prefix, 'bin', p)), 'netgrant');
    assert.is(statSync(join(prefix, 'lib', 'netgrant', 'bin', p)).mode & 0o777, 0o755);
  }
  for (const f of ['netgrant.cjs', 'load.cjs', 'koffi.node']) assert.is(statSync(join(prefix, 'lib', 'netgrant', 'dist', f)).mode & 0o777, 0o644);
  assert.is(statSync(join(prefix, 'bin', 'netgrant')).mode & 0o777, 0o755);
  assert.is(statSync(join(prefix, 'bin', 'koffi.node')).mode & 0o777, 0o644);
  for (const [name, section] of manSources) {
    const file = join(prefix, 'share', 'man', `man${section}`, `${name}.${section}`);
    rendersMan(file, name, section);
    const w = run(['man', '-w', name], { env: { MANPATH: join(prefix, 'share', 'man'), PATH: '/usr/bin:/bin' } });
    assert.is(w.stdout.trim(), file, `man -w ${name}`);
  }
  const share = join(prefix, 'share', 'netgrant');
  const svc = run(['grep', '-rl', '@BINDIR@', share]);
  assert.is(svc.stdout, '', 'every @BINDIR@ is replaced');
  assert.match(readFileSync(join(share, 's6', 'netgrant-tap', 'run'), 'utf8'), new RegExp(`^${prefix}/bin/mktap `, 'm'));
  assert.is(lstatSync(join(share, 's6', 'netgrant-tap', 'run')).mode & 0o777, 0o755);
  assert.equal(linksInside(prefix, prefix), []);
  exercise(prefix, 'ip');
  // Installing again over a prefix in use: the same result, nothing left beside.
  const again = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
  assert.is(again.status, 0, again.stderr);
  assert.is(run(['find', prefix, '-name', '*.install-*']).stdout, '');
  exercise(prefix, 'ir');
});

test('install-prefix refuses a relative or missing PREFIX in one line', () => {
  for (const args of [[], ['rel/dir'], ['-x']]) {
    const r = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), ...args]);
    assert.is(r.status, 100, r.stderr);
    assert.match(r.stderr, /^install-prefix: fatal: [^\n]+\n$/);
  }
});

test.after(cleanup);
test.run();

// The single executable as an administrator deploys it: installed by
// install-prefix into a root-owned prefix, then setcap (docs/single-executable.md);
// or, where a file only probes the executable, a plain copy of the built one.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { run, ROOT, NODE } from './harness.js';

/** The file capabilities a launcher needs, as setcap(8) takes them. */
export const LAUNCHER_FILE_CAPS = 'cap_dac_override,cap_sys_admin,cap_net_admin+p';

/** Where tools/build/sea.mjs leaves the executable, koffi.node and bin/<prog> links. */
export const SEA_BUILD = join(ROOT, 'packages', 'netgrant', 'dist', 'sea');

/** Install into prefix (made 0755) and setcap its executable; its bin directory. */
export function installCapable(prefix: string): string {
  const r = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
  assert.is(r.status, 0, r.stderr);
  chmodSync(prefix, 0o755);
  const bin = join(prefix, 'bin');
  setcapLauncher(join(bin, 'netgrant'));
  return bin;
}

/**
 * The built executable and koffi.node copied into dir (made: root's, 0755;
 * every directory above must be root's and not writable by others, or
 * sticky), setcap'd, with dir/bin/<prog> a link to it for every program;
 * dir/bin. Cheaper than installCapable (no prefix: two files and links).
 */
export function copyCapable(dir: string): string {
  assert.ok(existsSync(join(SEA_BUILD, 'netgrant')), `${join(SEA_BUILD, 'netgrant')} is not built: npm run build-sea (npm test's pretest builds it)`);
  mkdirSync(join(dir, 'bin'), { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  copyFileSync(join(SEA_BUILD, 'koffi.node'), join(dir, 'koffi.node'));
  chmodSync(join(dir, 'koffi.node'), 0o644);
  copyFileSync(join(SEA_BUILD, 'netgrant'), join(dir, 'netgrant'));
  chmodSync(join(dir, 'netgrant'), 0o755);
  for (const name of readdirSync(join(SEA_BUILD, 'bin'))) symlinkSync('../netgrant', join(dir, 'bin', name));
  setcapLauncher(join(dir, 'netgrant'));
  return join(dir, 'bin');
}

/** setcap LAUNCHER_FILE_CAPS exe. */
export function setcapLauncher(exe: string): void {
  const s = run(['setcap', LAUNCHER_FILE_CAPS, exe]);
  assert.is(s.status, 0, s.stderr);
}

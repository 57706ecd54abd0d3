// The single executable as an administrator deploys it: installed by
// install-prefix into a root-owned prefix, then setcap (docs/single-executable.md).
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { run, ROOT, NODE } from './harness.js';

/** The file capabilities a launcher needs, as setcap(8) takes them. */
export const LAUNCHER_FILE_CAPS = 'cap_dac_override,cap_sys_admin,cap_net_admin+p';

/** Install into prefix (made 0755) and setcap its executable; its bin directory. */
export function installCapable(prefix: string): string {
  const r = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
  assert.is(r.status, 0, r.stderr);
  chmodSync(prefix, 0o755);
  const bin = join(prefix, 'bin');
  const s = run(['setcap', LAUNCHER_FILE_CAPS, join(bin, 'netgrant')]);
  assert.is(s.status, 0, s.stderr);
  return bin;
}

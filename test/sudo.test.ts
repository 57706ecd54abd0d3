// s6-sudo / s6-sudod: a client's command runs on the server side through
// `peer-check ... s6-sudod cap-drop --from-peer --`, as the client's uid with
// no capabilities, and its exit status comes back. s6-sudod appends the
// client's words after the chain's final `--`, so they can never be read as
// cap-drop options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, NOBODY } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const sock = join(dir, 'sudo.sock');
const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

test('the client\'s command runs as the client, without capabilities, and its status comes back', async () => {
  const s = await startServer(['s6-ipcserver', sock, 'peer-check', '-u', String(NOBODY), 's6-sudod', 'cap-drop', '--from-peer', '--'], sock);
  try {
    const r = run([...asUid(NOBODY), 's6-sudo', sock, 'sh', '-c', 'id -u; grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/self/status; exit 42']);
    assert.is(r.status, 42, r.stderr + s.output());
    const lines = r.stdout.trim().split('\n');
    assert.is(lines[0], String(NOBODY));
    for (const l of lines.slice(1, 4)) assert.match(l, /:\s+0000000000000000$/);
    assert.match(lines[4]!, /NoNewPrivs:\s+1/);
    const denied = run([...asUid(4242), 's6-sudo', sock, 'true']);
    assert.is.not(denied.status, 0);
    // Smuggling options: the client's "-k all -u 0" are the program's words, not cap-drop's.
    for (const words of [['-k', 'all', 'sh', '-c', 'id -u'], ['-u', '0', 'id', '-u'], ['--from-peer', 'id']]) {
      const x = run([...asUid(NOBODY), 's6-sudo', sock, ...words]);
      assert.is(x.status, 127, `${words.join(' ')}: ${x.stdout}${x.stderr}`);
      assert.match(x.stderr, new RegExp(`cap-drop: fatal: unable to exec ${words[0]}: No such file or directory`));
      assert.is(x.stdout, '');
    }
  } finally {
    await s.stop();
  }
});

test.after(cleanup);
test.run();

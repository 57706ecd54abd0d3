// s6-sudo / s6-sudod: a client's command runs on the server side through
// `peer-check ... s6-sudod cap-drop --from-peer --`, as the client's uid with
// no capabilities, and its exit status comes back. s6-sudod appends the
// client's words after the chain's final `--` (notes/ucspi-s6.md §4.3), so
// they can never be read as cap-drop options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, NOBODY, BASE_ENV } from '../tools/test/lib/harness.js';
import { startServer, type Server } from '../tools/test/lib/service.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
const CHAIN = ['peer-check', '-u', String(NOBODY), 's6-sudod', 'cap-drop', '--from-peer', '--'];
const STATUS = 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status';

async function server(name: string, env: Record<string, string> = {}): Promise<Server> {
  const sock = join(dir, name);
  const s = await startServer(['s6-ipcserver', '-1', sock, ...CHAIN], sock, env);
  assert.ok(await s.waitForOutput(/\n/), `no readiness line: ${s.output()}`);
  return s;
}

test('the client\'s command runs as the client, without capabilities, and its status comes back', async () => {
  const s = await server('plain.sock');
  try {
    const r = run([...asUid(NOBODY), 's6-sudo', s.path, 'sh', '-c', `id -u; id -G; ${STATUS}; exit 42`]);
    assert.is(r.status, 42, r.stderr + s.output());
    const lines = r.stdout.trim().split('\n');
    assert.is(lines[0], String(NOBODY));
    assert.is(lines[1], String(NOBODY), 'the database groups of nobody: only its primary group');
    for (const l of lines.slice(2, 7)) assert.match(l, /^Cap\w+:\s+0000000000000000$/);
    assert.match(lines[7]!, /^NoNewPrivs:\s+1$/);
    assert.is(r.stderr, '');
  } finally {
    await s.stop();
  }
});

test('a denied uid gets a non-zero exit and nothing runs', async () => {
  const s = await server('deny.sock');
  try {
    for (const uid of [4242, 0]) {
      const denied = run([...asUid(uid), 's6-sudo', s.path, 'sh', '-c', 'echo RAN; exit 0']);
      assert.is.not(denied.status, 0, `uid ${uid}`);
      assert.is(denied.stdout, '');
    }
    assert.ok(await s.waitForOutput(/peer-check: fatal: peer uid 4242 gid 4242 pid \d+ is not allowed/), s.output());
  } finally {
    await s.stop();
  }
});

test('smuggling: the client\'s "-k all", "-u 0", "--from-peer" are the program\'s words, never cap-drop options', async () => {
  const s = await server('smuggle.sock');
  try {
    for (const words of [['-k', 'all', 'sh', '-c', 'id -u'], ['-u', '0', 'id', '-u'], ['--from-peer', 'id'], ['--', 'id']]) {
      const x = run([...asUid(NOBODY), 's6-sudo', s.path, ...words]);
      assert.is(x.status, 127, `${words.join(' ')}: ${x.stdout}${x.stderr}`);
      assert.is(x.stderr, `cap-drop: fatal: unable to exec ${words[0]}: No such file or directory (ENOENT)\n`);
      assert.is(x.stdout, '');
    }
    // The environment does not smuggle either: s6-sudod passes a client's
    // variable only where the server has it present but empty, and peer-check
    // set PEERUID/PEERGID.
    const e = run([...asUid(NOBODY), 's6-sudo', s.path, 'id', '-u'], { env: { PEERUID: '0', PEERGID: '0' } });
    assert.is(e.status, 0, e.stderr);
    assert.is(e.stdout, `${NOBODY}\n`);
  } finally {
    await s.stop();
  }
});

test('smuggling, shown from the other side: programs named "-k" and "-u" get the words as arguments, as the client, with nothing', async () => {
  // Programs called "-k" and "-u" on the server's PATH: what cap-drop execs
  // when a client sends those words.
  const bin = join(dir, 'bin');
  run(['mkdir', '-m', '755', bin]);
  for (const name of ['-k', '-u']) {
    const p = join(bin, name);
    writeFileSync(p, `#!/bin/sh\nprintf '%s|' "\${0##*/}" "$@"; echo; id -u; ${STATUS}\n`);
    chmodSync(p, 0o755);
  }
  const s = await server('shim.sock', { PATH: `${bin}:${BASE_ENV.PATH}` });
  try {
    for (const [words, argv] of [
      [['-k', 'all', 'sh', '-c', 'id -u'], '-k|all|sh|-c|id -u|'],
      [['-u', '0', 'id'], '-u|0|id|'],
    ] as const) {
      const x = run([...asUid(NOBODY), 's6-sudo', s.path, ...words]);
      assert.is(x.status, 0, x.stderr + s.output());
      const lines = x.stdout.trim().split('\n');
      assert.is(lines[0], argv);
      assert.is(lines[1], String(NOBODY), 'never uid 0');
      for (const l of lines.slice(2, 7)) assert.match(l, /^Cap\w+:\s+0000000000000000$/, 'never a capability');
      assert.match(lines[7]!, /^NoNewPrivs:\s+1$/);
    }
  } finally {
    await s.stop();
  }
});

test.after(cleanup);
test.run();

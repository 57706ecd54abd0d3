// DESIGN.md's local-service model end to end, with a stand-in resource (a
// file fd) until mktap exists: a root super-server runs
// `peer-check ... <open resource on fd 3> fd-send -s 1 -d 3`, an unprivileged
// client runs `fd-recv -s 6 -d 3 prog`. Against programs this project did
// not write: s6-ipcserver/s6-ipcclient, s6-ipcserver-access, ucspi-unix
// unixserver/unixclient, systemd-socket-activate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, NOBODY } from '../tools/test/lib/harness.js';
import { startServer, type Server } from '../tools/test/lib/service.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const resource = join(dir, 'resource');
writeFileSync(resource, 'the granted resource\n');
const STRANGER = 4242;
const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
const serverChain = (sock: number, ...check: string[]) => ['peer-check', '-s', String(sock), ...check, 'redirfd', '-r', '3', resource, 'fd-send', '-s', String(sock === 0 ? 1 : sock), '-d', '3', '-e', 'PEERUID'];
const CLIENT = ['fd-recv', '-s', '6', '-d', '3', '-e', 'PEERUID', 'sh', '-c', 'echo "uid=$(id -u) peer=$PEERUID"; cat <&3'];

async function withServer(argv: string[], path: string, body: (s: Server) => void | Promise<void>) {
  const s = await startServer(argv, path);
  try {
    await body(s);
  } finally {
    await s.stop();
  }
}

test('s6-ipcserver + s6-ipcclient: an allowed uid gets the fd; a denied one gets nothing', async () => {
  const sock = join(dir, 's6.sock');
  await withServer(['s6-ipcserver', '-1', sock, ...serverChain(0, '-u', String(NOBODY))], sock, async (s) => {
    const ok = run([...asUid(NOBODY), 's6-ipcclient', sock, ...CLIENT]);
    assert.is(ok.status, 0, ok.stderr + s.output());
    assert.is(ok.stdout, `uid=${NOBODY} peer=${NOBODY}\nthe granted resource\n`);
    const no = run([...asUid(STRANGER), 's6-ipcclient', sock, ...CLIENT]);
    assert.is(no.status, 111);
    assert.is(no.stdout, '', 'nothing exec\'d on the client');
    assert.match(no.stderr, /fd-recv: fatal: receive message: .*closed the connection before sending/);
    assert.ok(await s.waitForOutput(new RegExp(`peer-check: fatal: peer uid ${STRANGER} gid ${STRANGER} pid \\d+ is not allowed`)), s.output());
  });
});

test('s6-ipcserver-access in front of peer-check', async () => {
  const sock = join(dir, 'access.sock');
  const rules = join(dir, 'rules');
  mkdirSync(join(rules, 'uid', String(NOBODY)), { recursive: true });
  writeFileSync(join(rules, 'uid', String(NOBODY), 'allow'), '');
  await withServer(['s6-ipcserver', '-1', sock, 's6-ipcserver-access', '-v2', '-i', rules, ...serverChain(0, '-u', String(NOBODY), '-u', String(STRANGER))], sock, (s) => {
    const ok = run([...asUid(NOBODY), 's6-ipcclient', sock, ...CLIENT]);
    assert.is(ok.status, 0, ok.stderr + s.output());
    assert.match(ok.stdout, 'the granted resource');
    // peer-check would allow STRANGER; s6-ipcserver-access denies it first.
    const no = run([...asUid(STRANGER), 's6-ipcclient', sock, ...CLIENT]);
    assert.is(no.status, 111);
    assert.not.match(s.output(), /peer-check: fatal/);
  });
});

test('ucspi-unix unixserver + unixclient (UNIX* environment, leaked fd 3 overwritten)', async () => {
  const sock = join(dir, 'unix.sock');
  await withServer(['unixserver', '-p', '0777', '--', sock, ...serverChain(0, '-g', String(NOBODY))], sock, (s) => {
    const ok = run([...asUid(NOBODY), 'unixclient', sock, ...CLIENT]);
    assert.is(ok.status, 0, ok.stderr + s.output());
    assert.is(ok.stdout, `uid=${NOBODY} peer=${NOBODY}\nthe granted resource\n`);
    const no = run([...asUid(STRANGER), 'unixclient', sock, ...CLIENT]);
    assert.is(no.status, 111);
  });
  // -E trusts UNIXREMOTEEUID as unixserver set it.
  const sock2 = join(dir, 'unix-env.sock');
  await withServer(['unixserver', '-p', '0777', '--', sock2, 'peer-check', '-E', '-u', String(NOBODY), 'redirfd', '-r', '3', resource, 'fd-send', '-s', '1', '-d', '3', '-e', 'PEERUID'], sock2, (s) => {
    const ok = run([...asUid(NOBODY), 'unixclient', sock2, ...CLIENT]);
    assert.is(ok.status, 0, ok.stderr + s.output());
  });
});

test('systemd-socket-activate --inetd and --accept', async () => {
  const inetd = join(dir, 'inetd.sock');
  await withServer(['systemd-socket-activate', '-l', inetd, '--inetd', '-a', ...serverChain(0, '-u', String(NOBODY))], inetd, (s) => {
    chmodSync(inetd, 0o777); // systemd would apply SocketMode=; the tool leaves the umask's mode
    const ok = run([...asUid(NOBODY), 's6-ipcclient', inetd, ...CLIENT]);
    assert.is(ok.status, 0, ok.stderr + s.output());
    assert.match(ok.stdout, 'the granted resource');
  });
  // --accept without --inetd: the connection is fd 3 (LISTEN_FDS=1); the resource goes to fd 4.
  const accept = join(dir, 'accept.sock');
  const chain = ['peer-check', '-s', '3', '-u', String(NOBODY), 'redirfd', '-r', '4', resource, 'fd-send', '-s', '3', '-d', '4'];
  await withServer(['systemd-socket-activate', '-l', accept, '--accept', ...chain], accept, (s) => {
    chmodSync(accept, 0o777);
    const ok = run([...asUid(NOBODY), 's6-ipcclient', accept, 'fd-recv', '-s', '6', '-d', '3', 'sh', '-c', 'cat <&3']);
    assert.is(ok.status, 0, ok.stderr + s.output());
    assert.is(ok.stdout, 'the granted resource\n');
    const no = run([...asUid(STRANGER), 's6-ipcclient', accept, 'fd-recv', '-s', '6', '-d', '3', 'true']);
    assert.is(no.status, 111);
  });
});

test('a Python client speaks the protocol to the service (independent framing)', async () => {
  const sock = join(dir, 'py.sock');
  await withServer(['s6-ipcserver', '-1', sock, ...serverChain(0, '-u', String(NOBODY))], sock, (s) => {
    const py = `
import socket, struct, os, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(${JSON.stringify(sock)})
hdr, fds, _, _ = socket.recv_fds(s, 6, 4)
ln, nf = struct.unpack('>IH', hdr)
payload = s.recv(ln, socket.MSG_WAITALL)
print(json.dumps({'nf': nf, 'env': payload.decode(), 'data': os.read(fds[0], 100).decode()}))
`;
    const r = run([...asUid(NOBODY), '/usr/bin/python3', '-c', py]);
    assert.is(r.status, 0, r.stderr + s.output());
    assert.equal(JSON.parse(r.stdout), { nf: 1, env: `PEERUID=${NOBODY}\0`, data: 'the granted resource\n' });
  });
});

test.after(cleanup);
test.run();

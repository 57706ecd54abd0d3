// The unixmessage framing under random and defective input, over real
// socketpairs: core's recvMessage, the fd-recv program, and the resident
// server running fd-recv for many connections. A well-formed message always
// arrives whole (payload, fds, nothing read past it); every defect —
// truncated, oversized, wrong fd count, too many fds (control data
// truncated), fds after the first byte, garbage — is an error of the
// protocol class, and no fd is left open anywhere. Half the fd-recv runs
// are uid 65534 running the setcap'd single executable
// (docs/single-executable.md).
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the framing is core's
// recvMessage and fd-recv's use of it, the same in both modes; fd-
// recv.test.ts runs its chains in both.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { openSync, readdirSync, fstatSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import {
  socketpair, close, sendAll, recvmsg, recvMessage, recvByte, closeAll, isCloexec, listOpenFds, unixSocket, connectUnix, decodeEnv, SysError, MSG_DONTWAIT,
} from '@netgrant/core';
import { runWithFds, tempDir, SHOW_FDS, NOBODY } from '../../tools/test/lib/harness.js';
import { copyCapable } from '../../tools/test/lib/single-executable.js';
import { startServer } from '../../tools/test/lib/service.js';
import { frames, envPayload, params, type Frame } from '../../tools/test/lib/arbitraries.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Send a frame on sock (fresh /dev/null fds on the chunks that carry some), then the trailer; returns the inodes sent. */
function sendFrame(sock: number, f: Frame): number[] {
  const inodes: number[] = [];
  f.chunks.forEach((chunk, i) => {
    const fds = Array.from({ length: f.fdsPerChunk[i]! }, () => openSync('/dev/null', 'r'));
    inodes.push(...fds.map((fd) => fstatSync(fd).ino));
    try {
      sendAll(sock, chunk, fds);
    } finally {
      closeAll(fds);
    }
  });
  if (f.trailer.length) sendAll(sock, f.trailer);
  return inodes;
}

/** Everything still unread on sock (its peer is closed). */
function drain(sock: number): Buffer {
  const parts: Buffer[] = [];
  for (;;) {
    let r;
    try {
      r = recvmsg(sock, 4096, 0, MSG_DONTWAIT);
    } catch {
      break;
    }
    closeAll(r.fds);
    if (r.data.length === 0) break;
    parts.push(r.data);
  }
  return Buffer.concat(parts);
}

const EXPECTED_ERRNO: Partial<Record<Frame['defect'], RegExp>> = {
  truncated: /^(EPROTO|EPIPE)$/,
  oversized: /^EMSGSIZE$/,
  'fd-count': /^EPROTO$/,
  'too-many-fds': /^EPROTO$/,
  'late-fds': /^EPROTO$/,
};

test('core recvMessage: a well-formed message arrives whole, every defect is a protocol error, no fd leaks', async () => {
  const MAX_FDS = 4;
  const MAX_PAYLOAD = 256;
  const before = listOpenFds();
  await fc.assert(
    fc.asyncProperty(frames(MAX_FDS, MAX_PAYLOAD), async (f) => {
      const [a, b] = socketpair();
      try {
        const sent = sendFrame(a, f);
        close(a);
        let msg;
        try {
          msg = await recvMessage(b, { maxFds: MAX_FDS, maxPayload: MAX_PAYLOAD, timeoutMs: 2000 });
        } catch (e) {
          if (!(e instanceof SysError)) throw new Error(`not a system/protocol error: ${String(e)}`);
          if (f.defect === 'none') throw new Error(`a well-formed message was refused: ${e.message}`);
          const want = EXPECTED_ERRNO[f.defect];
          if (want && !want.test(e.code)) throw new Error(`${f.defect}: ${e.code} (${e.message})`);
          return;
        }
        try {
          if (f.defect !== 'none' && f.defect !== 'garbage') throw new Error(`a ${f.defect} message was accepted`);
          for (const fd of msg.fds) if (!isCloexec(fd)) throw new Error(`received fd ${fd} is not close-on-exec`);
          if (f.defect === 'none') {
            assert.equal(msg.payload, f.payload);
            assert.equal(msg.fds.map((fd) => fstatSync(fd).ino), sent);
            assert.equal(drain(b), f.trailer, 'nothing read past the message');
          }
        } finally {
          closeAll(msg.fds);
        }
      } finally {
        close(b);
      }
    }),
    params(400),
  );
  assert.equal(listOpenFds(), before, 'no fd left open in this process');
});

test('core recvByte (the one-byte protocol): exactly the expected byte with exactly one fd, anything else refused, no fd leaks', async () => {
  const before = listOpenFds();
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 12 }), fc.constantFrom(0, 7), async (data, nfds, expected) => {
      const [a, b] = socketpair();
      try {
        const sent = sendFrame(a, { defect: 'garbage', chunks: [Buffer.from(data)], fdsPerChunk: [nfds], payload: Buffer.alloc(0), trailer: Buffer.alloc(0) });
        close(a);
        const good = data[0] === expected && nfds === 1;
        let fd: number;
        try {
          fd = await recvByte(b, expected, 2000);
        } catch (e) {
          if (!(e instanceof SysError) || e.code !== 'EPROTO') throw new Error(`not EPROTO: ${String(e)}`);
          if (good) throw new Error(`refused a good one: ${e.message}`);
          return;
        }
        assert.ok(good, `accepted byte ${data[0]} with ${nfds} fds`);
        assert.is(fstatSync(fd).ino, sent[0]);
        assert.ok(isCloexec(fd));
        close(fd);
      } finally {
        close(b);
      }
    }),
    params(300),
  );
  assert.equal(listOpenFds(), before, 'no fd left open in this process');
});

test('fd-recv (and the setcap single executable\'s, run by uid 65534): a well-formed message places its fds and exports its variables; a defective one exits 111, one line, nothing exec\'d', () => {
  const sea = tempDir();
  const seaFdRecv = [`/usr/bin/setpriv`, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', join(copyCapable(sea.dir), 'fd-recv')];
  const before = listOpenFds();
  fc.assert(
    fc.property(frames(3, 65536, envPayload), fc.boolean(), (f, viaSea) => {
      const [a, b] = socketpair();
      let r;
      try {
        sendFrame(a, f);
        close(a);
        r = runWithFds([...(viaSea ? seaFdRecv : ['fd-recv']), '-s', '6', '-d', '3,4,5', '-m', '0', '-E', '/bin/sh', '-c', `${SHOW_FDS}; env -0`], { 6: b });
      } finally {
        close(b);
      }
      if (r.status === 0) {
        if (f.defect !== 'none' && f.defect !== 'garbage') throw new Error(`${viaSea ? 'single executable: ' : ''}a ${f.defect} message was accepted`);
        if (f.defect === 'garbage') return;
        const n = f.fdsPerChunk[0]!;
        const [fdLine, env] = [r.stdout.slice(0, r.stdout.indexOf('\n')), r.stdout.slice(r.stdout.indexOf('\n') + 1)];
        assert.is(fdLine, ['0 1 2', ...[3, 4, 5].slice(0, n), 6].join(' ') + ' ');
        const got = new Map(env.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
        for (const [k, v] of decodeEnv(f.payload)) assert.is(got.get(k), v, k);
        return;
      }
      if (f.defect === 'none') throw new Error(`${viaSea ? 'single executable: ' : ''}a well-formed message was refused: ${r.stderr}`);
      if (r.status !== 111 || r.stdout !== '' || !/^fd-recv: fatal: [^\n]+\n$/.test(r.stderr)) throw new Error(`${viaSea ? 'single executable: ' : ''}${f.defect}: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
    }),
    params(40),
  );
  assert.equal(listOpenFds(), before, 'no fd left open in this process');
  sea.cleanup();
});

test('the resident server: defective messages from many clients leave its fd count flat, and it still serves', async () => {
  const { dir, cleanup } = tempDir();
  chmodSync(dir, 0o755);
  const path = join(dir, 'frames.sock');
  const s = await startServer(['netgrant-serve', '-t', '1000', path, 'fd-recv', '-s', '0', '-d', '3,4', '-m', '0', '-e', 'K'], path);
  const fdCount = () => readdirSync(`/proc/${s.proc.pid}/fd`).length;
  const connect = () => {
    const c = unixSocket();
    connectUnix(c, path);
    return c;
  };
  /** Send f, then wait until the server closes the connection (its chain ended). */
  const session = async (f: Frame) => {
    const c = connect();
    try {
      try {
        sendFrame(c, f);
      } catch (e) {
        // The server may judge a message and hang up before the rest of what we send.
        if (!(e instanceof SysError && (e.code === 'EPIPE' || e.code === 'ECONNRESET'))) throw e;
      }
      for (let i = 0; i < 500; i++) {
        let r;
        try {
          r = recvmsg(c, 64, 0, MSG_DONTWAIT);
        } catch (e) {
          if (e instanceof SysError && e.code === 'EAGAIN') {
            await sleep(10);
            continue;
          }
          return; // ECONNRESET: gone
        }
        if (r.data.length === 0) return;
      }
      throw new Error('the server kept a connection open for 5 s (its -t is 1 s)');
    } finally {
      close(c);
    }
  };
  try {
    await session({ defect: 'none', chunks: [Buffer.from([0, 0, 0, 0, 0, 0])], fdsPerChunk: [0], payload: Buffer.alloc(0), trailer: Buffer.alloc(0) });
    const baseline = fdCount();
    await fc.assert(fc.asyncProperty(frames(2, 65536, envPayload), session), params(60));
    await sleep(100);
    assert.is(fdCount(), baseline, `server fds: ${baseline} before, ${fdCount()} after; output: ${s.output()}`);
    assert.is(s.proc.exitCode, null, 'the server is still running');
  } finally {
    await s.stop();
    cleanup();
  }
});

test.run();

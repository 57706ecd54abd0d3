// Readiness on the event loop (core poll.ts, mapfds.ts's waitAsync) over
// real socketpairs: a promise that readiness settles resumes at once, not
// at the next timer (under Node 26 koffi's native callback does not drain
// the microtask queue: the resident server ended each connection a timer
// late); a stopped or closed watch calls nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { socketpair, sendAll, close, watchReadable, waitAsync } from '@netgrant/core';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('waitAsync: readiness resumes the awaiting code at once, with no other timer due', async () => {
  const [a, b] = socketpair();
  // Bounds the test: without the fix the await resumed only when this fired.
  const bound = setTimeout(() => undefined, 3000);
  try {
    setTimeout(() => sendAll(a, Buffer.from('x')), 20);
    const t0 = Date.now();
    assert.is(await waitAsync(b, 10000), true);
    const ms = Date.now() - t0;
    assert.ok(ms < 1000, `resumed after ${ms} ms`);
    assert.is(await waitAsync(b, 50), true, 'still readable: level-triggered');
  } finally {
    clearTimeout(bound);
    close(a);
    close(b);
  }
});

test('waitAsync: a timeout resolves false; watchReadable: nothing runs once stopped or closed, and again once started', async () => {
  const [a, b] = socketpair();
  try {
    assert.is(await waitAsync(b, 30), false);
    let calls = 0;
    const w = watchReadable(b, () => calls++);
    w.stop();
    sendAll(a, Buffer.from('x'));
    await sleep(100);
    assert.is(calls, 0, 'stopped');
    w.start();
    await sleep(100);
    assert.ok(calls > 0, 'started again (level-triggered: the byte is still unread)');
    w.close();
    const after = calls;
    await sleep(100);
    assert.is(calls, after, 'closed');
  } finally {
    close(a);
    close(b);
  }
});

test.run();

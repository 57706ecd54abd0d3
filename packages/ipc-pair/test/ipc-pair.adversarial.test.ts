// ipc-pair when the client program cannot be executed while the server
// chain exits: found by test/adversarial/argv.test.ts. ipc-pair places its
// socket end at 6 and 7; with fds 3, 4 and 6 inherited, Node's own event-loop
// fds sit there, and libuv's SIGCHLD handler then wrote to a socket in their
// place: with SIGPIPE already back at default for the exec, about one run in
// two died of SIGPIPE, often before saying why. Every run must end in 127
// with one line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync } from 'node:fs';
import { socketpair, close } from '@netgrant/core';
import { runWithFds, failsWith } from '../../../tools/test/lib/harness.js';

test('a client that cannot be executed, the server chain exiting meanwhile: always 127 and one line, never a signal', () => {
  const devnull = openSync('/dev/null', 'r');
  const [gone, sock] = socketpair();
  close(gone);
  try {
    for (let i = 0; i < 30; i++) {
      for (const client of ['', 'no-such-program-x']) {
        const r = runWithFds(['ipc-pair', ' true', '', client, 'x'], { 3: devnull, 4: devnull, 6: sock });
        assert.is(failsWith(r, 'ipc-pair', 127, /unable to exec .*No such file or directory \(ENOENT\)/), null, `run ${i}, client ${JSON.stringify(client)}: ${r.stderr}`);
      }
    }
  } finally {
    [devnull, sock].forEach(close);
  }
});

test.run();

// guix.scm must at least parse as Scheme: Guile reads every form, with the
// gexp reader syntax (#~ #$ #$@) that (guix gexp) registers, and the last
// form is a package named "netgrant" whose installed programs match ours.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { run, ROOT } from '../tools/test/lib/harness.js';

const READER = `
(read-hash-extend #\\~ (lambda (c port) (list 'gexp (read port))))
(read-hash-extend #\\$ (lambda (c port)
  (if (eqv? (peek-char port) #\\@)
      (begin (read-char port) (list 'ungexp-splicing (read port)))
      (list 'ungexp (read port)))))
(define forms
  (call-with-input-file (cadr (command-line))
    (lambda (p) (let loop ((acc '())) (let ((x (read p))) (if (eof-object? x) (reverse acc) (loop (cons x acc))))))))
(define pkg (car (last-pair forms)))
(write (list (length forms) (car pkg) (cadr (assq 'name (cdr pkg)))))
(newline)
`;

test('guix.scm parses and defines the netgrant package', () => {
  const r = run(['guile', '--no-auto-compile', '-c', READER, join(ROOT, 'guix.scm')]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\(\d+ package "netgrant"\)\n$/);
});

test('the description lists every program the toolkit ships', () => {
  const bins = Object.keys(JSON.parse(readFileSync(join(ROOT, 'packages', 'netgrant', 'package.json'), 'utf8')).bin);
  const scm = readFileSync(join(ROOT, 'guix.scm'), 'utf8');
  for (const b of bins) assert.ok(scm.includes(b), `guix.scm mentions ${b}`);
});

test('it installs what install-prefix does: bundle, programs, man pages by section, example services', () => {
  const scm = readFileSync(join(ROOT, 'guix.scm'), 'utf8');
  for (const dest of ['lib/netgrant/dist/', 'lib/netgrant/bin/', 'share/man/man1/', 'share/man/man7/', 'share/man/man8/', 'share/netgrant/']) {
    assert.ok(scm.includes(`"${dest}"`), `the install plan has ${dest}`);
  }
  assert.ok(scm.includes('"@BINDIR@"'), 'the services get their bin directory');
});

test.run();

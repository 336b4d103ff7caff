import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputWatch } from '../../src/pod/output-watch.js';

describe('the pod process\'s output watch (what start waits for before poststart hooks)', () => {
  it('answers output once the first output was written, before or after the question', async () => {
    const watch = new OutputWatch();
    const waiting = watch.firstOutput('c', 'c', 5000);
    watch.outputWritten('c', 'c');
    assert.equal(await waiting, 'output');
    assert.equal(await watch.firstOutput('c', 'c', 0), 'output', 'remembered until the process is over');
    assert.equal(await watch.firstOutput('c', 'other-exec', 10), 'timeout', 'per process');
  });

  it('answers exited for a process that ended silent, and timeout for one still silent', async () => {
    const watch = new OutputWatch();
    const silent = watch.firstOutput('c', 'c', 30);
    const started = Date.now();
    assert.equal(await silent, 'timeout');
    assert.ok(Date.now() - started >= 25);
    const ending = watch.firstOutput('c', 'c', 5000);
    watch.exited('c', 'c');
    assert.equal(await ending, 'exited');
  });
});

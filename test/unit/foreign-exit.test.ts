import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { repoRoot } from '../helpers/fixtures.js';

/**
 * The agent, as the guest's PID 1, learns of a container init's exit from
 * SIGCHLD, not from polling (which kept an idle guest's CPU awake): played by
 * node as PID 1 of a pid namespace, without a VM.
 */
describe('waitForeignExit as PID 1', () => {
  it('an orphan\'s exit status arrives on SIGCHLD, before the 2 s safety poll and without polling, and the zombie is reaped', { timeout: 60_000 }, async () => {
    const script = path.join(repoRoot, 'test', 'fixtures', 'foreign-exit-as-pid1.ts');
    const r = await execa('unshare', ['--fork', '--pid', '--mount-proc', process.execPath, '--import', 'tsx', script], { cwd: repoRoot, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as { pid1: boolean; status: number; ms: number; reads: number; gone: boolean };
    assert.equal(seen.pid1, true);
    assert.equal(seen.status, 7);
    assert.ok(seen.ms >= 900 && seen.ms < 1900, `seen after ${seen.ms} ms (the exit came at 1000 ms; the safety poll comes at 2000)`);
    // Polling every 50 ms would have read it about 20 times.
    assert.ok(seen.reads <= 3, `/proc/<pid>/stat read ${seen.reads} times while waiting`);
    assert.equal(seen.gone, true, 'reaped');
  });
});

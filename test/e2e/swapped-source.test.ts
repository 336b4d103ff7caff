import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { tempDir } from '../helpers/fixtures.js';
import { eventually } from '../helpers/eventually.js';
import { runUntil } from '../helpers/fault-point.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

/**
 * A bind source swapped for a symlink to a host path between create's check
 * and its mount (create is stopped at that point, the test swaps, create goes
 * on): what gets mounted is what was checked, the original directory, never
 * the symlink's target.
 */
describe('bad input: a mount source swapped between check and use', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-swap-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
  });
  after(async () => {
    await kata(['delete', '--force', 'swapped']);
    await cleanup();
  });

  it('the container sees the checked directory, not /etc', { timeout: 120_000 }, async () => {
    const vmDirsBefore = await vmDirs();
    const data = path.join(dir, 'data');
    await mkdir(data);
    await writeFile(path.join(data, 'marker'), 'the checked directory\n');
    const bundle = await makeBundle(path.join(dir, 'bundle'), {
      args: ['sh', '-c', 'cat /data/marker 2>&1; test -e /data/passwd && echo "host /etc is visible"; true'],
      mounts: [{ destination: '/data', source: data, type: 'bind', options: ['rbind', 'ro'] }],
    });
    const output = path.join(dir, 'out');
    const fd = openSync(output, 'w');
    const create = await runUntil(root, 'create:after-source-check', ['create', 'swapped', '--bundle', bundle], fd);
    closeSync(fd);
    // The swap: the checked directory moves away, and its path becomes a symlink to the host's /etc.
    await rename(data, `${data}.moved`);
    await symlink('/etc', data);
    create.child.kill('SIGCONT');
    assert.equal(await create.exited, 0, await readFile(output, 'utf8'));
    const started = await kata(['start', 'swapped']);
    assert.equal(started.exitCode, 0, started.stderr);
    assert.equal(await eventually(() => readFile(output, 'utf8'), '\n', 30_000), 'the checked directory\n');
    assert.equal((await kata(['delete', '--force', 'swapped'])).exitCode, 0);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });
});

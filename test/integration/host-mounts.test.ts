import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { bindMount, mountPointsUnder, unmount } from '../../src/util/host-mounts.js';
import { tempDir } from '../helpers/fixtures.js';

/** The share's bind mounts, on this host's real mount table (root only; no VM). */
describe('host bind mounts for the 9p share', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-mounts-int-'));
    await mkdir(path.join(dir, 'src', 'sub'), { recursive: true });
    await mkdir(path.join(dir, 'target'));
    // A submount in the source: rbind brings it along.
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path.join(dir, 'src', 'sub')]);
  });
  after(async () => {
    await unmount(path.join(dir, 'target'));
    await unmount(path.join(dir, 'src', 'sub'));
    await cleanup();
  });

  it('rbind + ro leaves no read-write submount: the top and the tmpfs under it are both read-only', async () => {
    await bindMount(path.join(dir, 'src'), path.join(dir, 'target'), true);
    assert.deepEqual(await mountPointsUnder(path.join(dir, 'target')), [path.join(dir, 'target', 'sub'), path.join(dir, 'target')]);
    await assert.rejects(writeFile(path.join(dir, 'target', 'top'), 'x'), { code: 'EROFS' });
    await assert.rejects(writeFile(path.join(dir, 'target', 'sub', 'below'), 'x'), { code: 'EROFS' });
    // The source itself stays writable.
    await writeFile(path.join(dir, 'src', 'sub', 'below'), 'x');
    await unmount(path.join(dir, 'target'));
    assert.deepEqual(await mountPointsUnder(path.join(dir, 'target')), []);
  });
});

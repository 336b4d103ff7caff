import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

/** Bind mounts as runtime-spec and runc have them: relative sources, propagation options, read-only. */
describe('OCI bind mounts', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-mounts-')));
  after(() => cleanup());

  it('a relative source is the bundle\'s; shared, slave, private and unbindable binds appear; ro stays ro', { timeout: 120_000 }, async () => {
    const vmDirsBefore = await vmDirs();
    const bundle = await makeBundle(path.join(dir, 'b'), {
      args: ['sh', '-c', 'cat /mnt/rel/file; for m in shared slave private unb; do cat /mnt/etc-$m/marker; done; touch /mnt/rel/x 2>&1 | grep -c "Read-only"'],
      mounts: [
        { destination: '/mnt/rel', source: 'data', type: 'bind', options: ['rbind', 'ro'] },
        { destination: '/mnt/etc-shared', source: path.join(dir, 'etc'), type: 'bind', options: ['rbind', 'rshared'] },
        { destination: '/mnt/etc-slave', source: path.join(dir, 'etc'), type: 'bind', options: ['rbind', 'rslave'] },
        { destination: '/mnt/etc-private', source: path.join(dir, 'etc'), type: 'bind', options: ['bind', 'private'] },
        { destination: '/mnt/etc-unb', source: path.join(dir, 'etc'), type: 'bind', options: ['rbind', 'runbindable'] },
      ],
    });
    await mkdir(path.join(bundle, 'data'));
    await writeFile(path.join(bundle, 'data', 'file'), 'relative to the bundle\n');
    await mkdir(path.join(dir, 'etc'));
    await writeFile(path.join(dir, 'etc', 'marker'), 'm\n');
    // run from another directory: the relative source must not follow the working directory.
    const run = await kataTs(path.join(dir, 'root'))(['run', '--bundle', bundle, 'mounts'], { timeoutMs: 120_000 });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'relative to the bundle\nm\nm\nm\nm\n1');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
    assert.deepEqual(await kataTsProcesses(), []);
  });
});

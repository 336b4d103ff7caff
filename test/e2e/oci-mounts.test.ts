import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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

  it('a mount with no type whose options are only a propagation or "bind" is a bind mount, as runc takes it', { timeout: 120_000 }, async () => {
    const kinds = [['shared'], ['rslave'], ['private'], ['unbindable'], ['rprivate'], ['bind']];
    await mkdir(path.join(dir, 'typeless'));
    await writeFile(path.join(dir, 'typeless', 'marker'), 'here\n');
    const bundle = await makeBundle(path.join(dir, 'typeless-bundle'), {
      args: ['sh', '-c', `for i in ${kinds.map((_k, i) => i).join(' ')}; do cat /mnt/t$i/marker || echo "t$i missing"; done`],
      mounts: kinds.map((options, i) => ({ destination: `/mnt/t${i}`, source: path.join(dir, 'typeless'), options })),
    });
    const run = await kataTs(path.join(dir, 'root'))(['run', '--bundle', bundle, 'typeless'], { timeoutMs: 120_000 });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, kinds.map(() => 'here').join('\n'));
  });
});

/** process.rlimits as runc applies them: soft and hard each as given, RLIM_INFINITY included. */
describe('OCI rlimits', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-rlimits-')));
  after(() => cleanup());

  it('soft and hard limits read back as given in the container and in an exec; "unlimited" stays unlimited', { timeout: 120_000 }, async () => {
    const kata = kataTs(path.join(dir, 'root'));
    const bundle = await makeBundle(path.join(dir, 'b'), {
      args: ['sleep', '600'],
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 3000, hard: 4000 }, { type: 'RLIMIT_CORE', soft: 1, hard: 12345 }],
    });
    // RLIM_INFINITY as callers write it: the exact uint64, which JSON.parse cannot hold as a safe integer.
    const configFile = path.join(bundle, 'config.json');
    await writeFile(configFile, (await readFile(configFile, 'utf8')).replace('12345', '18446744073709551615'));
    try {
      // The carrier keeps create's stdout and stderr: a file, not a pipe the test would wait on.
      const output = path.join(dir, 'limits.out');
      assert.equal((await kata(['create', '--bundle', bundle, 'limits'], { outputFile: output })).exitCode, 0, await readFile(output, 'utf8'));
      assert.equal((await kata(['start', 'limits'])).exitCode, 0);
      const limits = await kata(['exec', 'limits', 'sh', '-c', 'grep -E "^Max (open files|core file size)" /proc/1/limits; ulimit -Sn; ulimit -Hn']);
      assert.equal(limits.exitCode, 0, limits.stderr);
      const lines = limits.stdout.split('\n').map((l) => l.split(/\s{2,}/).slice(0, 3).join('|'));
      assert.deepEqual(lines, ['Max core file size|1|unlimited', 'Max open files|3000|4000', '3000', '4000'], 'the container\'s init, and an exec that inherits its limits');
      const processFile = path.join(dir, 'process.json');
      await writeFile(processFile, JSON.stringify({ args: ['sh', '-c', 'ulimit -Sn; ulimit -Hn'], cwd: '/', env: ['PATH=/bin'], rlimits: [{ type: 'RLIMIT_NOFILE', soft: 300, hard: 400 }] }));
      const own = await kata(['exec', '--process', processFile, 'limits']);
      assert.equal(own.stdout, '300\n400', own.stderr);
    } finally {
      await kata(['delete', '--force', 'limits']);
    }
  });
});

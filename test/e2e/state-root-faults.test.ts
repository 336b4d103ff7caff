import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

/**
 * An unwritable or full --root during create: one line naming the problem,
 * exit 1, and nothing half made (no state, no VM dir, no QEMU, pod process
 * or carrier, no mount).
 */
describe('faults: an unwritable or full state root', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let bundle: string;
  let vmDirsBefore: string[];
  const mounted: string[] = [];

  /** A tmpfs of the test's own, so that only it is read-only or full. */
  async function smallTmpfs(name: string, options: string): Promise<string> {
    const target = path.join(dir, name);
    await mkdir(target);
    await execa('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', target]);
    mounted.push(target);
    return target;
  }

  async function assertNothingLeft(root: string, id: string): Promise<void> {
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), [], 'no QEMU, pod process or carrier is left');
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no VM dir is left');
    assert.deepEqual(await mountPointsUnder(sandboxDir(root, id)), []);
  }

  /** create of `victim` that must fail with one line: returns that line. */
  async function failedCreate(root: string, name: string): Promise<string> {
    // Output to a file, not a pipe: a carrier, had one been left, would hold a pipe open.
    const outputFile = path.join(dir, `${name}.out`);
    const r = await kataTs(root)(['create', 'victim', '--bundle', bundle], { outputFile });
    const stderr = await readFile(outputFile, 'utf8');
    assert.equal(r.exitCode, 1, stderr);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    return stderr;
  }

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-root-faults-'));
    await buildImage();
    bundle = await makeBundle(path.join(dir, 'bundle'), { args: ['sleep', '1000'] });
    vmDirsBefore = await vmDirs();
  });
  after(async () => {
    for (const target of mounted) await execa('umount', [target]).catch(() => undefined);
    await cleanup();
  });

  it('a read-only --root: create fails at once with one line naming the root', { timeout: 60_000 }, async () => {
    const readOnly = await smallTmpfs('ro', 'ro,size=64k');
    for (const [n, root] of [path.join(readOnly, 'state'), readOnly].entries()) {
      const stderr = await failedCreate(root, `ro-${n}`);
      assert.match(stderr, /^kata-ts: cannot create (the state root )?\S+: EROFS: read-only file system/);
      await assertNothingLeft(root, 'victim');
    }
  });

  it('a --root that fills up during create: the final state write fails, the booted VM goes, nothing is left', { timeout: 120_000 }, async () => {
    // 4 pages: a filler takes 3, the first state takes the last, and the final one finds no room.
    const full = await smallTmpfs('full', 'size=16k');
    await writeFile(path.join(full, 'filler'), Buffer.alloc(12288));
    const root = path.join(full, 'root');
    const stderr = await failedCreate(root, 'full');
    assert.match(stderr, /^kata-ts: cannot write state of container victim: ENOSPC/);
    assert.deepEqual(await readdir(root), [], 'no state of the container is left');
    await assertNothingLeft(root, 'victim');
  });
});

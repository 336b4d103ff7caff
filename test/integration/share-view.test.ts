import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shareMounter } from '../../src/hypervisor/vm-mounts.js';
import { vmLayout } from '../../src/hypervisor/vm-layout.js';
import { shareContainerFiles, unshareContainerFiles } from '../../src/share/container-files.js';
import { makeShareDirs, mountShareView, shareMountsDir } from '../../src/share/share-view.js';
import { unmountAllUnder, mountPointsUnder } from '../../src/util/host-mounts.js';
import { loadNativeAddon } from '../../src/util/native-addon.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/fixtures.js';

/**
 * The share on this host's real mount table (root; no VM): what the guest can
 * do to it through QEMU's export (shared/), and what the host does there.
 * The guest's writes are played by this process writing into shared/.
 */
describe('the share: a read-only view of the host-only mounts dir', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let layout: ReturnType<typeof vmLayout>;
  let canary: string;
  let bundle: string;
  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-share-'));
    layout = vmLayout(path.join(dir, 'vm'));
    await mkdir(layout.dir, { mode: 0o700 });
    await makeShareDirs(layout);
    await mountShareView(layout);
    canary = path.join(dir, 'canary');
    await writeFile(canary, 'untouched\n');
    bundle = path.join(dir, 'bundle');
    await mkdir(path.join(bundle, 'rootfs', 'etc'), { recursive: true });
    await mkdir(path.join(dir, 'volume'));
    await writeFile(path.join(dir, 'hosts'), '127.0.0.1 localhost\n');
  });
  after(async () => {
    await unmountAllUnder(layout.dir);
    await cleanup();
  });

  it('the guest cannot create, plant or rename at the top or in a container\'s dir; the rootfs and rw volumes stay writable, ro ones not', async () => {
    const shared = await shareContainerFiles(layout, shareMounter(undefined), 'c1', path.join(bundle, 'rootfs'), [
      { destination: '/etc/hosts', source: path.join(dir, 'hosts'), type: 'bind', options: ['rbind', 'ro'] },
      { destination: '/data', source: path.join(dir, 'volume'), type: 'bind', options: ['rbind', 'rw'] },
    ], bundle, silentLogger);
    const guest = (p: string): string => path.join(layout.sharedDir, p);
    await assert.rejects(symlink(canary, guest('c2')), { code: 'EROFS' }, 'no new container dir');
    await assert.rejects(symlink(canary, guest('c1/mounts/9')), { code: 'EROFS' }, 'no planted mount point');
    await assert.rejects(rm(guest('c1/mounts/1'), { recursive: true }), (err: NodeJS.ErrnoException) => ['EROFS', 'EBUSY'].includes(err.code ?? ''), 'no removed mount point');
    await assert.rejects(writeFile(guest('c1/mounts/0'), 'x'), { code: 'EROFS' }, 'a ro volume stays ro');
    await writeFile(guest('c1/rootfs/etc/written-by-guest'), 'x');
    await writeFile(guest('c1/mounts/1/written-by-guest'), 'x');
    assert.equal(await readFile(path.join(bundle, 'rootfs', 'etc', 'written-by-guest'), 'utf8'), 'x', 'the rootfs bind is rw');
    assert.equal(await readFile(path.join(dir, 'volume', 'written-by-guest'), 'utf8'), 'x');
    assert.ok(shared.hostMounts.every((p) => p.startsWith(shareMountsDir(layout))), 'the host mounts only in its own dir');

    await unshareContainerFiles(layout, shareMounter(undefined), 'c1', shared.hostMounts);
    assert.deepEqual(await mountPointsUnder(path.join(layout.sharedDir, 'c1')), [], 'the view lost the binds with the host dir');
    assert.deepEqual(await readdir(shareMountsDir(layout)), []);
    assert.equal(await readFile(canary, 'utf8'), 'untouched\n');
    assert.deepEqual((await readdir(path.join(bundle, 'rootfs', 'etc'))), ['written-by-guest'], 'the sources are intact');
  });

  it('a link planted where the host makes a mount point (CVE-2020-2026\'s class) fails the create, and is not followed', async () => {
    // The guest cannot reach mounts/; were it ever able to, the host still would not follow what it left.
    await mkdir(path.join(shareMountsDir(layout), 'c3'));
    await symlink(canary, path.join(shareMountsDir(layout), 'c3', 'rootfs'));
    await assert.rejects(shareContainerFiles(layout, shareMounter(undefined), 'c3', path.join(bundle, 'rootfs'), [
      { destination: '/etc/hosts', source: path.join(dir, 'hosts'), type: 'bind', options: ['rbind'] },
    ], bundle, silentLogger), /EEXIST/);
    assert.equal(await readFile(canary, 'utf8'), 'untouched\n', 'the canary is not truncated');
    assert.deepEqual(await mountPointsUnder(path.join(layout.dir)), [shareMountsDir(layout), layout.sharedDir].sort((a, b) => b.length - a.length), 'nothing was mounted on it');
    loadNativeAddon().removeTree(path.join(shareMountsDir(layout), 'c3'));
    assert.equal(await readFile(canary, 'utf8'), 'untouched\n', 'removing the leftover removed the link, not its target');
  });
});

/** A racer that swaps two entries with renameat2(RENAME_EXCHANGE) as fast as it can, as root in the guest could. */
async function exchangeRacer(a: string, b: string): Promise<{ stop(): Promise<void> }> {
  const script = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
libc.renameat2(-100, a, -100, b, 2)
print("racing", flush=True)
while True:
    libc.renameat2(-100, a, -100, b, 2)
`;
  const child = spawn('python3', ['-c', script, a, b], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  return {
    stop: () => new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}

describe('removing a container\'s share that someone swaps entries in', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-share-race-')));
  after(() => cleanup());

  it('no file outside the tree goes, however a directory and a symlink to the outside are exchanged meanwhile', { timeout: 120_000 }, async () => {
    const layout = vmLayout(path.join(dir, 'vm'));
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    const outsideFiles = Array.from({ length: 50 }, (_, i) => `keep-${i}`);
    for (const f of outsideFiles) await writeFile(path.join(outside, f), 'x');
    for (let round = 0; round < 30; round++) {
      const tree = path.join(shareMountsDir(layout), 'c1');
      await mkdir(path.join(tree, 'sub'), { recursive: true });
      for (let i = 0; i < 50; i++) await writeFile(path.join(tree, 'sub', `keep-${i}`), 'x');
      await symlink(outside, path.join(tree, 'link'));
      const racer = await exchangeRacer(path.join(tree, 'sub'), path.join(tree, 'link'));
      await unshareContainerFiles(layout, shareMounter(undefined), 'c1', []).catch(() => undefined);
      await racer.stop();
      assert.deepEqual((await readdir(outside)).sort(), [...outsideFiles].sort(), `round ${round}: the outside is whole`);
      loadNativeAddon().removeTree(tree);
    }
  });
});

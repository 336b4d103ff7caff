import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir, vmRoot } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, sandboxProcesses } from '../helpers/oci-e2e.js';
import { eventually } from '../helpers/eventually.js';
import { runCli } from '../helpers/run-cli.js';

/** mountinfo lines as [mount point, per-mount options]. */
async function mountsOf(pid: number | 'self'): Promise<Array<[string, string]>> {
  const text = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  return text.split('\n').filter(Boolean).map((line) => {
    const fields = line.split(' ');
    return [fields[4] ?? '', fields[5] ?? ''];
  });
}

/**
 * QEMU in a mount namespace of its own (private_mount_namespace, the
 * default): it sees no other sandbox's VM dir, the share's mounts exist
 * only there (read-only ones read-only down to every submount), the host has
 * none, and the container works as before. With the key off, the mounts are
 * the host's.
 */
describe('confined QEMU: its own mount namespace', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let vmDirsBefore: string[];
  let data: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-mountns-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    vmDirsBefore = await vmDirs();
    // A read-only bind source with a submount of its own (a tmpfs): both must be read-only for QEMU.
    data = path.join(dir, 'data');
    await mkdir(path.join(data, 'sub'), { recursive: true });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', path.join(data, 'sub')]);
    await writeFile(path.join(data, 'sub', 'file'), 'in the submount\n');
  });
  after(async () => {
    for (const id of ['one', 'two']) await kata(['delete', '--force', id]);
    await execa('umount', [path.join(data, 'sub')]).catch(() => undefined);
    await cleanup();
  });

  it('two sandboxes: each QEMU sees only its own VM dir and holds the share mounts; the host holds none', { timeout: 180_000 }, async () => {
    const sandboxes = [];
    for (const id of ['one', 'two']) {
      const bundle = await makeBundle(path.join(dir, id), {
        args: ['sh', '-c', 'cat /data/sub/file; touch /data/sub/x 2>&1 | grep -c Read-only; exec sleep 1000'],
        mounts: [{ destination: '/data', source: data, type: 'bind', options: ['rbind', 'ro'] }],
      });
      const created = await kata(['run', '--detach', id, '--bundle', bundle], { outputFile: path.join(dir, `${id}.out`) });
      assert.equal(created.exitCode, 0, created.stderr);
      sandboxes.push(await sandboxProcesses(root, id));
    }
    for (const [index, sandbox] of sandboxes.entries()) {
      const qemu = sandbox.qemu!.pid;
      assert.notEqual(await readlink(`/proc/${qemu}/ns/mnt`), await readlink('/proc/self/ns/mnt'), 'QEMU has a mount namespace of its own');
      assert.deepEqual(await readdir(`/proc/${qemu}/root${vmRoot}`), [path.basename(sandbox.dir)], 'the other sandbox\'s VM dir is hidden');
      const mounts = new Map(await mountsOf(qemu));
      const shared = path.join(sandbox.dir, 'shared', index === 0 ? 'one' : 'two');
      assert.ok(mounts.has(path.join(shared, 'rootfs')), 'the rootfs is bound in QEMU\'s namespace');
      // The spec's last mount is /data: its bind sits at mounts/<its index>.
      const dataBind = [...mounts.keys()].filter((p) => /\/mounts\/\d+$/.test(p) && p.startsWith(shared)).pop() ?? '';
      assert.match(mounts.get(dataBind) ?? '', /^ro,/, 'the ro bind is read-only for QEMU');
      assert.match(mounts.get(path.join(dataBind, 'sub')) ?? '', /^ro,/, 'and so is its submount');
      assert.deepEqual(await mountPointsUnder(sandbox.dir), [], 'the host has no mount in the share');
    }
    // The containers read through the mounts and cannot write to the read-only one.
    for (const id of ['one', 'two']) {
      const out = await eventually(() => readFile(path.join(dir, `${id}.out`), 'utf8'), '\n1\n', 30_000);
      assert.equal(out, 'in the submount\n1\n', out);
    }
    for (const id of ['one', 'two']) assert.equal((await kata(['delete', '--force', id])).exitCode, 0);
    for (const sandbox of sandboxes) await assertSandboxGone(sandbox);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('private_mount_namespace = false: QEMU shares the host\'s namespace, and the mounts are the host\'s while it runs', { timeout: 120_000 }, async () => {
    const config = await writeConfig(dir, await bundledConfigText({ private_mount_namespace: 'false' }), 'shared-ns.toml');
    const bundle = await makeBundle(path.join(dir, 'host-ns'), { args: ['sh', '-c', 'cat /data/sub/file; exec sleep 1000'], mounts: [{ destination: '/data', source: data, type: 'bind', options: ['rbind', 'ro'] }] });
    const hostRoot = path.join(dir, 'root-host-ns');
    const run = (args: string[]): ReturnType<typeof runCli> => runCli(['--root', hostRoot, '--kata-config', config, ...args], { outputFile: path.join(dir, 'host-ns.out'), timeoutMs: 120_000 });
    assert.equal((await run(['run', '--detach', 'plain', '--bundle', bundle])).exitCode, 0);
    const sandbox = await sandboxProcesses(hostRoot, 'plain');
    assert.equal(await readlink(`/proc/${sandbox.qemu!.pid}/ns/mnt`), await readlink('/proc/self/ns/mnt'));
    const hostMounts = await mountPointsUnder(sandboxDir(hostRoot, 'plain'));
    assert.ok(hostMounts.some((p) => p.endsWith('/shared/plain/rootfs')), hostMounts.join(', '));
    await eventually(() => readFile(path.join(dir, 'host-ns.out'), 'utf8'), 'in the submount\n', 30_000);
    assert.equal((await run(['delete', '--force', 'plain'])).exitCode, 0);
    await assertSandboxGone(sandbox);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), []);
  });
});

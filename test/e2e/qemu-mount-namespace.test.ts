import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir, vmRoot } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import { readProcStat } from '../../src/util/process-identity.js';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
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

/** The uid a process runs as (real, from /proc/PID/status). */
async function uidOf(pid: number): Promise<number> {
  return Number(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/**
 * rootless = true: QEMU runs as nobody, the share is served by QEMU's
 * virtfs-proxy-helper as root inside QEMU's mount namespace, the container
 * works, a disk nobody may not open is refused with one line, one it may
 * open is hot-plugged, and delete leaves no QEMU or helper.
 */
describe('confined QEMU: rootless', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let run: (args: string[]) => ReturnType<typeof runCli>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-rootless-'));
    await buildImage();
    const config = await writeConfig(dir, await bundledConfigText({ rootless: 'true', shared_fs: '"virtio-9p"' }), 'rootless.toml');
    const root = path.join(dir, 'root');
    run = (args) => runCli(['--root', root, '--kata-config', config, ...args], { outputFile: path.join(dir, 'out'), timeoutMs: 120_000 });
  });
  after(async () => {
    await run(['delete', '--force', 'nobody']);
    await cleanup();
  });

  it('QEMU runs as nobody; 9p, exec and hot-plug work within what nobody may open; nothing is left', { timeout: 180_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'bundle'), { args: ['sh', '-c', 'echo written > /w; exec sleep 1000'] });
    assert.equal((await run(['run', '--detach', 'nobody', '--bundle', bundle])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    const sandbox = await sandboxProcesses(path.join(dir, 'root'), 'nobody');
    const qemu = sandbox.qemu!.pid;
    assert.equal(await uidOf(qemu), 65534, 'QEMU runs as nobody');
    const helpers = [];
    for (const pid of await processesMatching(path.join(sandbox.dir, 'shared'))) {
      if ((await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('/usr/lib/qemu/virtfs-proxy-helper')) helpers.push(pid);
    }
    assert.equal(helpers.length, 1, 'one 9p proxy helper serves the share');
    assert.equal(await uidOf(helpers[0]!), 0);
    assert.equal(await readlink(`/proc/${helpers[0]}/ns/mnt`), await readlink(`/proc/${qemu}/ns/mnt`), 'in QEMU\'s mount namespace');
    await eventually(() => readFile(path.join(bundle, 'rootfs', 'w'), 'utf8'), 'written');

    const disk = path.join(dir, 'disk.img');
    await writeFile(disk, Buffer.alloc(4 * 1024 * 1024), { mode: 0o600 });
    const plug = ['block-volume', 'hot-plug', '--sandbox', 'nobody', '--container', 'nobody', '--block-volume', disk, '--device-path', '/dev/vdz'];
    await writeFile(path.join(dir, 'out'), '');
    assert.equal((await run(plug)).exitCode, 1);
    const refused = (await readFile(path.join(dir, 'out'), 'utf8')).trim().split('\n').filter((l) => !l.includes('warning'));
    assert.equal(refused.length, 1, refused.join('\n'));
    assert.match(refused[0] ?? '', /Permission denied \(rootless = true: QEMU runs as nobody, which must be able to open/);
    // nobody's rights: the disk its own, and the test's dir (0700) made traversable.
    await execa('chown', ['65534:65534', disk]);
    await chmod(dir, 0o711);
    assert.equal((await run(plug)).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    await writeFile(path.join(dir, 'out'), '');
    await run(['exec', 'nobody', 'sh', '-c', 'test -b /dev/vdz && echo block']);
    assert.equal((await readFile(path.join(dir, 'out'), 'utf8')).trim(), 'block');

    assert.equal((await run(['delete', '--force', 'nobody'])).exitCode, 0);
    await assertSandboxGone(sandbox);
    // It sees EOF when QEMU ends (its parent is gone, so init reaps it: a zombie meanwhile counts as ended).
    const helperLeft = async (): Promise<number[]> => (await Promise.all(helpers.map(async (pid) => ((await readProcStat(pid))?.state ?? 'Z') !== 'Z' ? [pid] : []))).flat();
    assert.deepEqual(await untilNoneLeft(helperLeft, 10_000), [], 'the helper ended with QEMU');
  });
});

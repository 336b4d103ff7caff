import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { QmpClient } from '../../src/hypervisor/qmp-client.js';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { bundledConfigText, tempDir } from '../helpers/fixtures.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, sandboxProcesses } from '../helpers/oci-e2e.js';
import { runCli } from '../helpers/run-cli.js';

const forever = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];
const mountCaps = ['CAP_SYS_ADMIN', 'CAP_MKNOD'];

for (const driver of ['virtio-blk', 'virtio-scsi'] as const) {
  describe(`block-volume hot-plug and hot-unplug with ${driver}`, () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    let root: string;
    let kata: (args: string[]) => ReturnType<typeof runCli>;
    let loop = '';
    let image = '';

    before(async () => {
      ({ dir, cleanup } = await tempDir('kata-ts-volumes-'));
      root = path.join(dir, 'root');
      const config = path.join(dir, 'configuration.toml');
      const text = await bundledConfigText({ block_device_driver: `"${driver}"` });
      await writeFile(config, text);
      kata = (args) => runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 120_000 });
      await buildImage();
      const loopFile = path.join(dir, 'loop.img');
      await truncate(loopFile, 16 * 1024 * 1024).catch(async () => writeFile(loopFile, Buffer.alloc(16 * 1024 * 1024)));
      loop = (await execa('losetup', ['--find', '--show', loopFile])).stdout.trim();
      image = path.join(dir, 'volume.img');
      await writeFile(image, Buffer.alloc(16 * 1024 * 1024));
      for (const [id, annotations] of [['pod', {}], ['other', joinSandbox('pod')]] as const) {
        await makeBundle(path.join(dir, id), { args: forever, capabilities: mountCaps, annotations });
        const out = path.join(dir, `${id}.out`);
        const created = await runCli(['--root', root, '--kata-config', config, 'create', id, '--bundle', path.join(dir, id)], { outputFile: out, timeoutMs: 120_000 });
        assert.equal(created.exitCode, 0, await readFile(out, 'utf8'));
        assert.equal((await kata(['start', id])).exitCode, 0);
      }
    });

    after(async () => {
      for (const id of ['other', 'pod']) await kata(['delete', '--force', id]);
      if (loop) await execa('losetup', ['-d', loop], { reject: false });
      await cleanup();
    });

    const plug = (container: string, volume: string, devicePath: string): ReturnType<typeof runCli> =>
      kata(['block-volume', 'hot-plug', '--sandbox', 'pod', '--container', container, '--block-volume', volume, '--device-path', devicePath]);
    const unplug = (container: string, devicePath: string): ReturnType<typeof runCli> =>
      kata(['block-volume', 'hot-unplug', '--sandbox', 'pod', '--container', container, '--device-path', devicePath]);
    const shell = (container: string, script: string): ReturnType<typeof runCli> => kata(['exec', container, 'sh', '-c', script]);

    it('hot-plugs a loop device and an image file: mkfs, mount, write, umount inside the container', { timeout: 120_000 }, async () => {
      const plugged = await plug('pod', loop, '/dev/xvdb');
      assert.equal(plugged.exitCode, 0, plugged.stderr);
      assert.equal((await plug('pod', image, '/dev/xvdc')).exitCode, 0);
      const listed = JSON.parse((await kata(['block-volume', 'list', '--sandbox', 'pod', '--format', 'json'])).stdout) as Array<{ devicePath: string; guestAddress: string }>;
      assert.deepEqual(listed.map((v) => v.devicePath), ['/dev/xvdb', '/dev/xvdc']);
      assert.match(listed[0]?.guestAddress ?? '', driver === 'virtio-blk' ? /^02\/01$/ : /^0:0$/);
      for (const [device, text] of [['/dev/xvdb', 'on the loop device'], ['/dev/xvdc', 'in the image file']] as const) {
        const r = await shell('pod', `test -b ${device} && mke2fs -q ${device} && mkdir -p /mnt && mount -t ext4 ${device} /mnt && echo "${text}" > /mnt/data && umount /mnt && echo ok`);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, /ok$/);
      }
    });

    /** What QEMU and the guest hold: block nodes, user-created devices, and the guest's partitions. */
    async function snapshot(): Promise<{ nodes: string[]; devices: string[]; partitions: string }> {
      const record = JSON.parse(await readFile(path.join(sandboxDir(root, 'pod'), 'sandbox.json'), 'utf8')) as { vm: { layout: { qmpSocket: string } } };
      const qmp = await QmpClient.connect(record.vm.layout.qmpSocket);
      try {
        const nodes = (await qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes')).map((n) => n['node-name']).filter((n) => n.startsWith('drive-'));
        const devices = (await qmp.execute<Array<{ name: string }>>('qom-list', { path: '/machine/peripheral' })).map((p) => p.name).filter((n) => n.startsWith('vol-'));
        const partitions = (await shell('other', 'cat /proc/partitions')).stdout;
        return { nodes: nodes.sort(), devices: devices.sort(), partitions };
      } finally {
        qmp.close();
      }
    }

    it('refuses bad requests with one line: missing host path, device path in use, volume attached twice, unknown container, unplug of a path never plugged, a /dev symlink the container planted', { timeout: 120_000 }, async () => {
      // A hostile container points a dir of its /dev outside (resolved in the guest, /etc would be the guest's).
      assert.equal((await shell('other', 'ln -sf /etc /dev/evil')).exitCode, 0);
      const evil = path.join(dir, 'evil.img');
      await writeFile(evil, Buffer.alloc(1024 * 1024));
      const before = await snapshot();
      assert.equal(before.nodes.length, 2);
      const cases: Array<[Promise<Awaited<ReturnType<typeof runCli>>>, RegExp]> = [
        [plug('pod', path.join(dir, 'missing.img'), '/dev/xvdz'), /block volume .*missing.img does not exist/],
        [plug('pod', image, '/dev/xvdb'), /already attached to sandbox pod/],
        [plug('other', path.join(dir, 'loop.img'), '/dev/null'), /\/dev\/null already exists in container other/],
        [plug('ghost', image, '/dev/xvdy'), /container ghost does not exist/],
        [plug('pod', image, 'relative'), /must be an absolute, normalized path under \/dev/],
        [unplug('pod', '/dev/xvdq'), /no volume is hot-plugged at \/dev\/xvdq in container pod/],
        [plug('other', evil, '/dev/evil/xvdz'), /\/dev\/evil\/xvdz: \/dev\/evil is a symbolic link in the container/],
      ];
      for (const [result, pattern] of cases) {
        const r = await result;
        assert.equal(r.exitCode, 1, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, pattern);
      }
      // The plug into "other" failed in the guest after blockdev-add and device_add: QEMU was rolled back.
      assert.deepEqual(await snapshot(), before, 'QEMU and the guest are as they were');
      const listed = JSON.parse((await kata(['block-volume', 'list', '--sandbox', 'pod', '--format', 'json'])).stdout) as unknown[];
      assert.equal(listed.length, 2);
    });

    it('hot-unplugs, then plugs the same volumes into another container, which reads the data back', { timeout: 120_000 }, async () => {
      for (const device of ['/dev/xvdb', '/dev/xvdc']) assert.equal((await unplug('pod', device)).exitCode, 0);
      assert.notEqual((await shell('pod', 'test -e /dev/xvdb')).exitCode, 0, 'the node is gone from the container');
      assert.equal((await kata(['block-volume', 'list', '--sandbox', 'pod'])).stdout.split('\n').length, 1, 'only the header');
      assert.equal((await plug('other', loop, '/dev/vol1')).exitCode, 0);
      assert.equal((await plug('other', image, '/dev/vol2')).exitCode, 0);
      const r = await shell('other', 'mkdir -p /mnt && for d in /dev/vol1 /dev/vol2; do mount -t ext4 $d /mnt && cat /mnt/data && umount /mnt; done');
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, 'on the loop device\nin the image file');
    });

    it('deleting the containers unplugs their volumes and stops the VM', { timeout: 120_000 }, async () => {
      const vm = await sandboxProcesses(root, 'pod');
      assert.equal((await kata(['delete', '--force', 'other'])).exitCode, 0);
      assert.equal((await kata(['delete', '--force', 'pod'])).exitCode, 0);
      await assertSandboxGone(vm);
      // QEMU let go of the loop device: it can be detached.
      assert.equal((await execa('losetup', ['-d', loop], { reject: false })).exitCode, 0);
      loop = '';
    });
  });
}

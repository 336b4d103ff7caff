import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import type { ProcessIdentity } from '../../src/util/process-identity.js';
import { bundledConfigText, debianKernelEdits, fullInitrdEdits, tempDir } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, sandboxProcesses, waitForStatus } from '../helpers/oci-e2e.js';

/** Containers with a VM of their own: run end to end, and a VM that dies under its container. */
describe('OCI lifecycle: a VM per container', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-oci-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
  });

  after(async () => {
    await kata(['delete', '--force', 'victim']);
    await cleanup();
  });

  it('run: boots a VM, relays stdout, exits with the container status, and leaves nothing', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'hello'), { args: ['sh', '-c', 'echo hello from $(uname -r); exit 7'] });
    const r = await kata(['run', 'hello', '--bundle', bundle]);
    assert.equal(r.exitCode, 7, r.stderr);
    assert.match(r.stdout, /^hello from \d+\.\d+\.\d+/, 'a kernel release');
    assert.notEqual(r.stdout.replace('hello from ', ''), os.release(), 'the guest kernel, not the host one');
    assert.equal(r.stderr, '');
    assert.equal(existsSync(sandboxDir(root, 'hello')), false, 'the VM dir is gone');
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });

  it('run on the other guest setups: the Debian kernel with its boot initrd and the image; the bzImage with the full initrd', { timeout: 240_000 }, async () => {
    // One on each shared filesystem: the default (virtio-fs) and virtio-9p.
    const setups = [
      { name: 'debian', edits: debianKernelEdits, root: 'erofs', fs: 'virtiofs' },
      { name: 'initrd', edits: { ...fullInitrdEdits, shared_fs: '"virtio-9p"' }, root: 'rootfs', fs: '9p' },
    ];
    for (const setup of setups) {
      const config = path.join(dir, `${setup.name}.toml`);
      await writeFile(config, await bundledConfigText(setup.edits));
      // The container's root is the share; the VM's own root shows in /proc/1/mounts (the agent's view).
      const bundle = await makeBundle(path.join(dir, setup.name), { args: ['sh', '-c', 'echo container root is $(grep " / " /proc/mounts | cut -d" " -f3); uname -r'] });
      const r = await runCli(['--root', root, '--kata-config', config, 'run', setup.name, '--bundle', bundle], { timeoutMs: 120_000 });
      assert.equal(r.exitCode, 0, `${setup.name}: ${r.stderr}`);
      const [rootLine, release] = r.stdout.split('\n');
      assert.equal(rootLine, `container root is ${setup.fs}`);
      assert.match(release ?? '', /-amd64$/, 'the Debian kernel');
      assert.equal(existsSync(sandboxDir(root, setup.name)), false);
    }
  });

  it('ids of 230 and 255 characters create, start, exec and delete; 300 characters is one clear line at create', { timeout: 240_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'long'), { args: ['sleep', '600'] });
    for (const length of [230, 255]) {
      const id = `${length}-${'x'.repeat(length - 4)}`;
      const out = path.join(dir, `long-${length}.out`);
      const created = await kata(['create', id, '--bundle', bundle], { outputFile: out });
      assert.equal(created.exitCode, 0, `${length}: ${await readFile(out, 'utf8')}`);
      try {
        assert.equal((await kata(['start', id])).exitCode, 0);
        const exec = await kata(['exec', id, 'echo', `exec in a ${length}-character id`]);
        assert.equal(exec.stdout, `exec in a ${length}-character id`, exec.stderr);
        assert.match((await kata(['list', '-q'])).stdout, new RegExp(`^${id}$`, 'm'));
      } finally {
        assert.equal((await kata(['delete', '--force', id])).exitCode, 0);
      }
      assert.equal(existsSync(sandboxDir(root, id)), false);
    }
    const tooLong = await kata(['create', 'y'.repeat(300), '--bundle', bundle]);
    assert.equal(tooLong.exitCode, 1);
    assert.equal(tooLong.stderr, 'kata-ts: container id is 300 bytes long: the state directory holds names of at most 255 bytes');
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });

  it('QEMU killed with SIGKILL mid-run: the container shows stopped, and delete cleans everything up', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'victim'), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
    const out = path.join(dir, 'victim.out');
    const log = path.join(dir, 'victim.log');
    assert.equal((await kata(['--log', log, 'create', 'victim', '--bundle', bundle], { outputFile: out })).exitCode, 0, await readFile(out, 'utf8').catch(() => ''));
    assert.equal((await kata(['start', 'victim'])).exitCode, 0);
    const vm = await sandboxProcesses(root, 'victim');
    assert.ok(vm.qemu);
    // create used the accelerator that check prints, said why in its log, and QEMU ran with it.
    const check = JSON.parse((await kata(['check', '--json'])).stdout) as { accelerator: string };
    assert.match(await readFile(log, 'utf8'), new RegExp(`level=info msg="accelerator ${check.accelerator}: `));
    const cmdline = (await readFile(`/proc/${vm.qemu.pid}/cmdline`, 'utf8')).split('\0');
    assert.equal(cmdline[cmdline.indexOf('-accel') + 1]?.split(',')[0], check.accelerator);
    const carrier = (JSON.parse(await readFile(path.join(root, 'victim', 'state.json'), 'utf8')) as { carrier: ProcessIdentity }).carrier;
    process.kill(vm.qemu.pid, 'SIGKILL');
    await waitForStatus(kata, 'victim', 'stopped');
    const kill = await kata(['kill', 'victim']);
    assert.equal(kill.exitCode, 1);
    assert.equal(kill.stderr.split('\n').length, 1, 'one line');
    const exec = await kata(['exec', 'victim', 'true']);
    assert.equal(exec.exitCode, 1);
    assert.match(exec.stderr, /container not running/);
    const del = await kata(['delete', 'victim']);
    assert.equal(del.exitCode, 0, del.stderr);
    await assertSandboxGone(vm, [carrier]);
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });
});

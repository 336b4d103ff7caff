import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import type { ProcessIdentity } from '../../src/util/process-identity.js';
import { bundledConfigText, fullInitrdEdits, tempDir } from '../helpers/fixtures.js';
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
    assert.match(r.stdout, /^hello from \d+\.\d+\.\d+-\d+-amd64$/, 'the guest kernel, not the host one');
    assert.equal(r.stderr, '');
    assert.equal(existsSync(sandboxDir(root, 'hello')), false, 'the VM dir is gone');
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });

  it('run on the other guest setup: the bzImage and the full initrd (initrd = ..., no image)', { timeout: 120_000 }, async () => {
    const config = path.join(dir, 'full-initrd.toml');
    await writeFile(config, await bundledConfigText(fullInitrdEdits));
    const bundle = await makeBundle(path.join(dir, 'initrd'), { args: ['sh', '-c', 'echo root is $(grep " / " /proc/mounts | cut -d" " -f3)'] });
    const r = await runCli(['--root', root, '--kata-config', config, 'run', 'initrd', '--bundle', bundle], { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'root is 9p', 'the container runs from the 9p share');
    assert.equal(existsSync(sandboxDir(root, 'initrd')), false);
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
    const shim = (JSON.parse(await readFile(path.join(root, 'victim', 'state.json'), 'utf8')) as { shim: ProcessIdentity }).shim;
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
    await assertSandboxGone(vm, [shim]);
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });
});

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, sandboxProcesses } from '../helpers/oci-e2e.js';
import { runCli } from '../helpers/run-cli.js';

/**
 * OnlineCPUMem made real: a container whose limits ask for more than the VM
 * has grows it (QMP device_add of vCPUs and a pc-dimm, the agent bringing
 * them online), at create and at update, within default_maxvcpus; and a
 * deleted container's vCPUs come out again where QEMU can unplug them (KVM).
 */
describe('vCPU and memory hot-plug for a container\'s limits', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: (args: string[]) => ReturnType<typeof runCli>;
  let root: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-grow-'));
    await buildImage();
    const config = await writeConfig(dir, await bundledConfigText({ default_vcpus: '1', default_maxvcpus: '4' }), 'grow.toml');
    root = path.join(dir, 'root');
    kata = (args) => runCli(['--root', root, '--kata-config', config, ...args], { outputFile: path.join(dir, 'out'), timeoutMs: 120_000 });
  });
  after(async () => {
    for (const id of ['grow', 'burst', 'steady']) await kata(['delete', '--force', id]);
    await cleanup();
  });

  async function inGuest(script: string, container = 'grow'): Promise<string> {
    await writeFile(path.join(dir, 'out'), '');
    const r = await kata(['exec', container, 'sh', '-c', script]);
    const out = await readFile(path.join(dir, 'out'), 'utf8');
    assert.equal(r.exitCode, 0, out);
    return out.trim();
  }

  it('create with a 2-CPU quota and 256 MiB: 3 vCPUs online and 256 MiB more; update to 3 CPUs: 4; more: capped at 4', { timeout: 240_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'grow'), { args: ['sleep', '1000'] });
    const configFile = path.join(bundle, 'config.json');
    const spec = JSON.parse(await readFile(configFile, 'utf8')) as { linux: { resources?: unknown } };
    spec.linux.resources = { cpu: { quota: 200000, period: 100000 }, memory: { limit: 256 * 1024 * 1024 } };
    await writeFile(configFile, JSON.stringify(spec));
    assert.equal((await kata(['run', '--detach', 'grow', '--bundle', bundle])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    const sandbox = await sandboxProcesses(root, 'grow');

    assert.equal(await inGuest('cat /sys/devices/system/cpu/online'), '0-2', 'default_vcpus 1 + ceil(200000/100000)');
    const memTotalKb = Number(/MemTotal:\s+(\d+)/.exec(await inGuest('cat /proc/meminfo'))?.[1]);
    assert.ok(memTotalKb > 640 * 1024, `MemTotal ${memTotalKb} kB: the 512 MiB VM got a 256 MiB DIMM`);
    const record = JSON.parse(await readFile(path.join(sandboxDir(root, 'grow'), 'sandbox.json'), 'utf8')) as { resources: Record<string, number> };
    assert.deepEqual([record.resources.vcpus, record.resources.memoryMiB, record.resources.dimms], [3, 768, 1]);

    assert.equal((await kata(['update', '--cpu-quota', '300000', '--cpu-period', '100000', 'grow'])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    assert.equal(await inGuest('cat /sys/devices/system/cpu/online'), '0-3');
    await writeFile(path.join(dir, 'out'), '');
    assert.equal((await kata(['update', '--cpu-quota', '900000', 'grow'])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    assert.match(await readFile(path.join(dir, 'out'), 'utf8'), /asks? for more than the VM may have \(4 vCPUs/);
    assert.equal(await inGuest('cat /sys/devices/system/cpu/online'), '0-3', 'no more than default_maxvcpus');

    assert.equal((await kata(['delete', '--force', 'grow'])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    await assertSandboxGone(sandbox);
  });

  it('deleting a container gives back the vCPUs it added under KVM (device_del, the guest ejects them); under TCG the VM keeps them (QEMU 7.2 aborts there)', { timeout: 240_000 }, async () => {
    const steady = await makeBundle(path.join(dir, 'steady'), { args: ['sleep', '1000'], annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    assert.equal((await kata(['run', '--detach', 'steady', '--bundle', steady])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    const sandbox = await sandboxProcesses(root, 'steady');
    const record = async (): Promise<{ accelerator: string; resources: { vcpus: number } }> => JSON.parse(await readFile(path.join(sandboxDir(root, 'steady'), 'sandbox.json'), 'utf8')) as { accelerator: string; resources: { vcpus: number } };
    const unplugs = (await record()).accelerator === 'kvm';
    const burst = await makeBundle(path.join(dir, 'burst'), { args: ['sleep', '1000'], annotations: joinSandbox('steady') });
    const configFile = path.join(burst, 'config.json');
    const spec = JSON.parse(await readFile(configFile, 'utf8')) as { linux: { resources?: unknown } };
    spec.linux.resources = { cpu: { quota: 200000, period: 100000 } };
    await writeFile(configFile, JSON.stringify(spec));
    for (const round of [1, 2]) {
      assert.equal((await kata(['run', '--detach', 'burst', '--bundle', burst])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
      assert.equal(await inGuest('cat /sys/devices/system/cpu/online', 'steady'), '0-2', `round ${round}: 1 + 2 vCPUs`);
      assert.equal((await record()).resources.vcpus, 3);
      assert.equal((await kata(['delete', '--force', 'burst'])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
      // The sandbox lives on either way (an unplug that crashed QEMU would end it).
      const after = await inGuest('cat /sys/devices/system/cpu/online; ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l', 'steady');
      assert.equal(after, unplugs ? '0\n1' : '0-2\n3', `round ${round}: ${unplugs ? 'the two hot-plugged vCPUs are out of the guest' : 'TCG keeps them'}`);
      assert.equal((await record()).resources.vcpus, unplugs ? 1 : 3);
    }
    assert.equal((await kata(['delete', '--force', 'steady'])).exitCode, 0, await readFile(path.join(dir, 'out'), 'utf8'));
    await assertSandboxGone(sandbox);
  });
});

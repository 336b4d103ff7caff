import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { parseCgroupMounts } from '../../src/cgroups/host-cgroups.js';
import { tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, sandboxProcesses } from '../helpers/oci-e2e.js';

/**
 * linux.cgroupsPath on the host: QEMU and the pod process go into the spec's
 * cgroup in every mounted hierarchy (this host: cgroup v1 controllers plus a
 * v2 unified tree), the container's CPU limits are set there, and delete
 * removes what it made.
 */
describe('host cgroups: the sandbox in the spec\'s cgroupsPath', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;
  const parent = `kata-ts-test-${process.pid}`;
  const cgroupsPath = `/${parent}/pod`;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-cgroups-'));
    kata = kataTs(path.join(dir, 'root'));
    await buildImage();
  });
  after(async () => {
    await kata(['delete', '--force', 'cg']);
    await cleanup();
  });

  it('QEMU and the pod process are in it, with the CPU quota and shares; delete removes it', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'b'), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
    const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as { linux: Record<string, unknown> };
    spec.linux.cgroupsPath = cgroupsPath;
    spec.linux.resources = { cpu: { quota: 50000, period: 100000, shares: 512 } };
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const created = await kata(['create', 'cg', '--bundle', bundle], { outputFile: path.join(dir, 'cg.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'cg.out'), 'utf8'));
    const pod = await sandboxProcesses(path.join(dir, 'root'), 'cg');
    assert.ok(pod.qemu && pod.pod);
    for (const pid of [pod.qemu.pid, pod.pod.pid]) {
      const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).trim().split('\n');
      // Every hierarchy line (v1 "N:controllers:path", v2 "0::path") names the spec's path.
      assert.ok(lines.length > 0 && lines.every((l) => l.endsWith(`:${cgroupsPath}`)), `${pid}: ${lines.join(' | ')}`);
    }
    const hierarchies = parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8'));
    const cpu = hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpu'));
    if (cpu) {
      assert.equal((await readFile(path.join(cpu.mountPoint, cgroupsPath, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
      assert.equal((await readFile(path.join(cpu.mountPoint, cgroupsPath, 'cpu.shares'), 'utf8')).trim(), '512');
    }
    assert.equal((await kata(['delete', '--force', 'cg'])).exitCode, 0);
    await assertSandboxGone(pod);
    for (const h of hierarchies) assert.equal(existsSync(path.join(h.mountPoint, parent)), false, `${h.mountPoint}/${parent} removed`);
  });
});

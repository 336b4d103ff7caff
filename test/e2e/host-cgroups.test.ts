import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { parseCgroupMounts } from '../../src/cgroups/host-cgroups.js';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, sandboxProcesses } from '../helpers/oci-e2e.js';
import { isSameProcessAlive } from '../../src/util/process-identity.js';
import { runCli } from '../helpers/run-cli.js';

/** The cgroup path of a process or thread in each hierarchy line of /proc/.../cgroup, by controllers ("" for v2). */
async function cgroupsOf(procDir: string): Promise<Map<string, string>> {
  const lines = (await readFile(path.join(procDir, 'cgroup'), 'utf8')).trim().split('\n');
  return new Map(lines.map((l) => {
    const [, controllers = '', ...rest] = l.split(':');
    return [controllers, rest.join(':')];
  }));
}

/**
 * linux.cgroupsPath on the host, both of Kata's placements (design/host-cgroups.md):
 * sandbox_cgroup_only = true puts QEMU and the pod process in
 * <parent>/kata-sandbox-<id> in every hierarchy, unlimited; false (the default)
 * puts only QEMU's vCPU threads, hot-plugged ones included, in <parent>/kata_<name>
 * of the cpu and cpuset hierarchies, with the sandbox container's CPU limits.
 * Delete removes what it made.
 */
describe('host cgroups: the sandbox in the spec\'s cgroupsPath', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const parent = `kata-ts-test-${process.pid}`;
  const cgroupsPath = `/${parent}/pod`;
  let hierarchies: ReturnType<typeof parseCgroupMounts>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-cgroups-'));
    await buildImage();
    hierarchies = parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8'));
  });
  // A failed case must not leave its VM to the next tests.
  const created: Array<(args: string[]) => ReturnType<typeof runCli>> = [];
  after(async () => {
    for (const kata of created) await kata(['delete', '--force', 'cg']);
    await cleanup();
  });

  async function createIn(mode: boolean): Promise<{ kata: (args: string[]) => ReturnType<typeof runCli>; pod: Awaited<ReturnType<typeof sandboxProcesses>> }> {
    const root = path.join(dir, `root-${mode}`);
    const config = await writeConfig(dir, await bundledConfigText({ sandbox_cgroup_only: String(mode) }), `cg-${mode}.toml`);
    const kata = (args: string[]): ReturnType<typeof runCli> => runCli(['--root', root, '--kata-config', config, ...args], { outputFile: path.join(dir, `cg-${mode}.out`), timeoutMs: 120_000 });
    const bundle = await makeBundle(path.join(dir, `b-${mode}`), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
    const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as { linux: Record<string, unknown> };
    spec.linux.cgroupsPath = cgroupsPath;
    spec.linux.resources = { cpu: { quota: 50000, period: 100000, shares: 512 }, memory: { limit: 192 * 1024 * 1024 }, pids: { limit: 77 } };
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    created.push(kata);
    const result = await kata(['create', 'cg', '--bundle', bundle]);
    assert.equal(result.exitCode, 0, await readFile(path.join(dir, `cg-${mode}.out`), 'utf8'));
    return { kata, pod: await sandboxProcesses(root, 'cg') };
  }

  it('sandbox_cgroup_only = true: QEMU and the pod process in <parent>/kata-sandbox-<id>, everywhere, unlimited; delete removes it', { timeout: 120_000 }, async () => {
    const { kata, pod } = await createIn(true);
    assert.ok(pod.qemu && pod.pod);
    const expected = `/${parent}/kata-sandbox-cg`;
    for (const pid of [pod.qemu.pid, pod.pod.pid]) {
      const placed = await cgroupsOf(`/proc/${pid}`);
      assert.ok(placed.size > 0 && [...placed.values()].every((p) => p === expected), `${pid}: ${JSON.stringify([...placed])}`);
    }
    const cpu = hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpu'));
    if (cpu) assert.equal((await readFile(path.join(cpu.mountPoint, expected, 'cpu.cfs_quota_us'), 'utf8')).trim(), '-1', 'no limit: the caller sizes the parent');
    assert.equal((await kata(['delete', '--force', 'cg'])).exitCode, 0);
    await assertSandboxGone(pod);
    for (const h of hierarchies) assert.equal(existsSync(path.join(h.mountPoint, parent)), false, `${h.mountPoint}/${parent} removed`);
  });

  it('sandbox_cgroup_only = false: only QEMU\'s vCPU threads in <parent>/kata_<name>, with the CPU limits', { timeout: 120_000 }, async () => {
    const { kata, pod } = await createIn(false);
    assert.ok(pod.qemu && pod.pod);
    const expected = `/${parent}/kata_pod`;
    const cpu = hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpu'));
    if (cpu) {
      const controllers = cpu.controllers.filter((c) => !c.startsWith('name=')).join(',');
      const tasks = (await readFile(path.join(cpu.mountPoint, expected, 'tasks'), 'utf8')).trim().split('\n').map(Number);
      // The quota asks for 1 vCPU beyond default_vcpus: the VM has 2 (the host has 2 CPUs). Under TCG
      // (thread=single) both run on one thread; under KVM each has its own.
      assert.ok(tasks.length >= 1 && tasks.length <= 2, `vCPU threads: ${tasks.join(' ')}`);
      const threads = await readdir(`/proc/${pod.qemu.pid}/task`);
      assert.ok(tasks.every((t) => threads.includes(String(t))), 'they are QEMU\'s threads');
      assert.ok(threads.length > tasks.length, 'and only some of them');
      assert.notEqual((await cgroupsOf(`/proc/${pod.qemu.pid}`)).get(controllers), expected, 'QEMU\'s main thread stays where the caller runs it');
      assert.notEqual((await cgroupsOf(`/proc/${pod.pod.pid}`)).get(controllers), expected, 'so does the pod process');
      assert.equal((await readFile(path.join(cpu.mountPoint, expected, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
      assert.equal((await readFile(path.join(cpu.mountPoint, expected, 'cpu.shares'), 'utf8')).trim(), '512');
    }
    // The pid callers wait on, and read the cgroup of (containerd's runc shim: stats, OOM): in cgroupsPath, with the spec's limits.
    const carrier = (JSON.parse(await readFile(path.join(dir, 'root-false', 'cg', 'state.json'), 'utf8')) as { carrier: { pid: number } }).carrier.pid;
    const carrierCgroups = await cgroupsOf(`/proc/${carrier}`);
    assert.ok([...carrierCgroups.values()].every((p) => p === cgroupsPath), `the carrier is in ${cgroupsPath} everywhere: ${JSON.stringify([...carrierCgroups])}`);
    const v1 = (controller: string) => hierarchies.find((h) => h.version === 1 && h.controllers.includes(controller));
    const limit = async (controller: string, file: string): Promise<string | undefined> => {
      const h = v1(controller);
      return h && (await readFile(path.join(h.mountPoint, cgroupsPath, file), 'utf8')).trim();
    };
    if (v1('memory')) assert.equal(await limit('memory', 'memory.limit_in_bytes'), String(192 * 1024 * 1024));
    if (v1('pids')) assert.equal(await limit('pids', 'pids.max'), '77');
    if (v1('cpu')) assert.deepEqual([await limit('cpu', 'cpu.cfs_quota_us'), await limit('cpu', 'cpu.shares')], ['50000', '512']);
    // An exec's carrier joins it, as runc's exec joins the container's cgroup.
    assert.equal((await kata(['start', 'cg'])).exitCode, 0);
    const execPidFile = path.join(dir, 'exec.pid');
    assert.equal((await kata(['exec', '--detach', '--pid-file', execPidFile, 'cg', 'sleep', '30'])).exitCode, 0);
    const execCarrier = Number(await readFile(execPidFile, 'utf8'));
    assert.ok([...(await cgroupsOf(`/proc/${execCarrier}`)).values()].every((p) => p === cgroupsPath), 'the exec\'s carrier is there too');
    // A container that stopped keeps its VM (and its cgroup) until delete.
    assert.equal((await kata(['kill', 'cg', 'KILL'])).exitCode, 0);
    const stateNow = async (): Promise<string> => JSON.parse((await runCli(['--root', path.join(dir, 'root-false'), 'state', 'cg'])).stdout).status as string;
    for (let i = 0; i < 100 && (await stateNow()) !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await stateNow(), 'stopped');
    assert.ok(await isSameProcessAlive(pod.qemu), 'the VM stays until delete');
    assert.equal((await kata(['delete', 'cg'])).exitCode, 0);
    await assertSandboxGone(pod);
    for (const h of hierarchies) assert.equal(existsSync(path.join(h.mountPoint, parent)), false, `${h.mountPoint}/${parent} removed`);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { silentLogger } from '../../src/util/logger.js';
import { bundledConfigText, repoRoot, tempDir, writeConfig } from '../helpers/fixtures.js';
import { findKata1, kata1Config, kataAgentInitrd, prepareHostForKataRuntime, qemuForKata1 } from '../helpers/kata1.js';
import { cgroupDirs, kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { runCli, runTool, type CliResult } from '../helpers/run-cli.js';

/**
 * Kata Containers 1.x's own components against kata-ts, both ways: kata-ts
 * driving Kata's Go agent, and Kata's kata-runtime (with its proxy and shim)
 * driving the kata-ts agent. Kata 1.x is not on Debian's mirrors, so this runs
 * only where KATA1_DIR names its binaries (test/bench/build-kata1.sh builds
 * them from the sources); CI, without them, skips it.
 */
const found = await findKata1(process.env.KATA1_DIR);
const skip = 'missing' in found ? `Kata 1.x components not here (${found.missing}; see test/bench/build-kata1.sh)` : false;
const kata1Dir = 'dir' in found ? found.dir : '';

/** A bundle whose container idles, in a cgroup of its own (Kata's agent resizes its cpuset on vCPU hot-plug). */
async function idleBundle(dir: string, name: string, annotations?: Record<string, string>): Promise<string> {
  const bundle = await makeBundle(path.join(dir, name), { args: ['sh', '-c', 'while :; do sleep 1; done'], ...(annotations ? { annotations } : {}) });
  const configFile = path.join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(configFile, 'utf8')) as { linux: { cgroupsPath?: string } };
  spec.linux.cgroupsPath = `/kata-ts-interop/${name}`;
  await writeFile(configFile, JSON.stringify(spec, null, 2));
  return bundle;
}

describe('Kata 1.x components and kata-ts, both ways', { skip }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let undoHostPrep: () => Promise<void> = async () => undefined;
  let kataAgentImage: string;
  let qemu: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-kata1-'));
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    kataAgentImage = await kataAgentInitrd(path.join(kata1Dir, 'kata-agent'), dir);
    qemu = await qemuForKata1(config.hypervisor.path, await sandboxAccelerator(config, silentLogger), dir);
    undoHostPrep = await prepareHostForKataRuntime(dir);
  });
  after(async () => {
    await undoHostPrep();
    // Kata 1.x's runtime leaves empty dirs under the cgroupsPath it was given: the test asked for them, so it removes them.
    for (const cgroup of (await cgroupDirs('/kata-ts-interop')).reverse()) await rmdir(cgroup).catch(() => undefined);
    await cleanup();
  });

  it('kata-ts drives Kata\'s Go agent: run, whole exec output, vCPU hot-plug, a pod\'s second container deleted by force', { timeout: 300_000 }, async () => {
    const config = await writeConfig(dir, await bundledConfigText({ initrd: `"${kataAgentImage}"`, image: '""', enable_template: 'false' }), 'kata-agent.toml');
    const root = path.join(dir, 'root');
    // create's carrier stays, holding what it was given as stdout: a file, not a pipe to wait on.
    const kata = (args: string[]): Promise<CliResult> =>
      runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 120_000, ...(args[0] === 'create' ? { outputFile: path.join(dir, `${args.at(-1)}.out`) } : {}) });
    const vmDirsBefore = await vmDirs();
    const hi = await makeBundle(path.join(dir, 'hi'), { args: ['sh', '-c', 'echo hi'] });
    const run = await kata(['run', '--bundle', hi, 'hi']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'hi');

    const podBundle = await idleBundle(dir, 'pod', { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': 'pod' });
    assert.equal((await kata(['create', '--bundle', podBundle, 'pod'])).exitCode, 0);
    assert.equal((await kata(['start', 'pod'])).exitCode, 0);
    try {
      // Kata's agent forgets a process once waited for, unread output and all: output is read to EOF first.
      for (let i = 0; i < 5; i++) {
        const exec = await kata(['exec', 'pod', 'sh', '-c', 'echo a; echo b; cat /sys/devices/system/cpu/online; echo c']);
        assert.equal(exec.stdout, 'a\nb\n0\nc', `exec ${i}: ${exec.stderr}`);
      }
      const update = await kata(['update', '--cpu-quota', '200000', '--cpu-period', '100000', 'pod']);
      assert.equal(update.exitCode, 0, update.stderr);
      assert.equal((await kata(['exec', 'pod', 'nproc'])).stdout.trim(), '2', 'Kata\'s agent onlined the hot-plugged vCPU (OnlineCPUMem)');

      const second = await idleBundle(dir, 'second', joinSandbox('pod'));
      assert.equal((await kata(['create', '--bundle', second, 'second'])).exitCode, 0);
      assert.equal((await kata(['start', 'second'])).exitCode, 0);
      // Kata's agent refuses to remove a container whose init has not exited yet; delete waits for it.
      const removed = await kata(['delete', '--force', 'second']);
      assert.equal(removed.exitCode, 0, removed.stderr);
      assert.equal(removed.stderr, '', 'no warning: the guest removed it');
      assert.equal((await kata(['exec', 'pod', 'echo', 'still here'])).stdout, 'still here');
    } finally {
      assert.equal((await kata(['delete', '--force', 'pod'])).exitCode, 0);
    }
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 15_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
    assert.deepEqual(await cgroupDirs('/kata-ts-interop'), [], 'kata-ts removed every host cgroup dir it made');
  });

  it('Kata\'s kata-runtime, proxy and shim drive the kata-ts agent: run, exec, vCPU hot-plug, kill, delete', { timeout: 300_000 }, async () => {
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    const kataConfig = await kata1Config(path.join(dir, 'kata1.toml'), kata1Dir, { qemu, kernel: config.hypervisor.kernel, initrd: path.join(repoRoot, 'guest', 'kata-ts-initrd.img') }, config.hypervisor);
    const kataRuntime = (args: string[]): Promise<CliResult> => runTool(path.join(kata1Dir, 'kata-runtime'), ['--kata-config', kataConfig, ...args], { timeoutMs: 120_000 });
    const hi = await makeBundle(path.join(dir, 'hi1'), { args: ['sh', '-c', 'echo hi'] });
    for (let i = 0; i < 3; i++) {
      const run = await kataRuntime(['run', '--bundle', hi, `hi${i}`]);
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal(run.stdout, 'hi');
    }
    const bundle = await idleBundle(dir, 'k1');
    // Its shim keeps the container's stdio, which is create's: a file, not a pipe to wait on.
    const output = openSync(path.join(dir, 'k1.out'), 'a');
    const create = spawn(path.join(kata1Dir, 'kata-runtime'), ['--kata-config', kataConfig, 'create', '--bundle', bundle, 'k1'], { stdio: ['ignore', output, output] });
    const created = await new Promise<number | null>((resolve) => create.once('exit', resolve)).finally(() => closeSync(output));
    assert.equal(created, 0, await readFile(path.join(dir, 'k1.out'), 'utf8'));
    assert.equal((await kataRuntime(['start', 'k1'])).exitCode, 0);
    const inContainer = async (script: string, file: string): Promise<string> => {
      // kata-runtime 1.x's attached exec returns before its process runs here (with its own agent too); a detached one writes a file in the shared rootfs.
      assert.equal((await kataRuntime(['exec', '-d', 'k1', 'sh', '-c', `${script} > /${file}.tmp && mv /${file}.tmp /${file}`])).exitCode, 0);
      for (let i = 0; i < 100; i++) {
        const text = await readFile(path.join(bundle, 'rootfs', file), 'utf8').catch(() => undefined);
        if (text !== undefined) return text.trim();
        await sleep(100);
      }
      throw new Error(`the exec did not write ${file}`);
    };
    try {
      assert.equal(await inContainer('nproc', 'before'), '1');
      assert.equal((await kataRuntime(['update', '--cpu-quota', '200000', '--cpu-period', '100000', 'k1'])).exitCode, 0);
      assert.equal(await inContainer('nproc', 'after'), '2', 'the kata-ts agent onlined the vCPU Kata hot-plugged');
      assert.match((await kataRuntime(['ps', 'k1'])).stdout, /sleep/);
      assert.equal((await kataRuntime(['kill', 'k1', 'KILL'])).exitCode, 0);
    } finally {
      await sleep(1000);
      assert.equal((await kataRuntime(['delete', '--force', 'k1'])).exitCode, 0);
    }
    assert.deepEqual(await readdir('/run/vc/sbs'), [], 'kata-runtime removed its sandbox');
    assert.deepEqual(await untilNoneLeft(async () => [...(await processesMatching(kata1Dir)), ...(await processesMatching('sandbox-k1'))], 15_000), [], 'no QEMU, kata-proxy or kata-shim left');
  });
});

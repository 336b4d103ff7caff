import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { vmRoot } from '../../src/runtime/sandbox-record.js';
import { busyboxImage, criPluginConfig, importPodImages, pauseImage, startContainerd, type ContainerdDaemon } from '../helpers/containerd-daemon.js';
import { connectCri, type CriClient, type ExecSyncResponse } from '../helpers/cri-client.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, vmDirs } from '../helpers/leaks.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';
import { runCli } from '../helpers/run-cli.js';

const busybox = busyboxImage;
const pause = pauseImage;

/**
 * The kubelet's path: containerd's CRI plugin, a runtime entry (README's snippet)
 * whose handler `kata` runs kata-ts as the runc binary. A pod sandbox and a
 * container of it share one VM through the sandbox annotations containerd sets.
 */
describe('containerd CRI plugin: a pod with the runtime handler kata', () => {
  let ctd: ContainerdDaemon;
  let cri: CriClient;
  let work: { dir: string; cleanup: () => Promise<void> };
  let vmDirsBefore: string[];
  let podId = '';

  const podConfig = (logDir: string): Record<string, unknown> => ({
    metadata: { name: 'pod1', uid: 'uid-pod1', namespace: 'default', attempt: 0 },
    hostname: 'pod1',
    log_directory: logDir,
    // The VM has no network device yet: pods use the node's network (hostNetwork: true).
    linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
  });

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-cri-');
    vmDirsBefore = await vmDirs();
    ctd = await startContainerd({
      criConfig: (dir) => criPluginConfig(dir, pause, [
        readmeSnippet('containerd-cri-runtime'),
        // Still in the runtime's options table: the shim's state (kata-ts's --root) stays in our dir.
        `  Root = "${dir}/runc"`,
      ].join('\n')),
    });
    await importPodImages(ctd, work.dir, ['k8s.io']);
    cri = connectCri(ctd.socket);
  });

  after(async () => {
    if (podId) {
      await cri.call('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      await cri.call('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
    }
    try {
      cri?.close();
      await ctd?.stop();
      assert.deepEqual(await processesMatching(ctd.dir), [], 'neither containerd nor a shim of it runs');
    } finally {
      await work?.cleanup();
    }
  });

  it('RunPodSandbox, a container in it, ExecSync, UpdateContainerResources, StopContainer, StopPodSandbox: one VM, then nothing left', { timeout: 400_000 }, async () => {
    const version = await cri.call<{ runtime_name: string; runtime_api_version: string }>('Version', {});
    assert.equal(version.runtime_name, 'containerd');

    const logDir = path.join(work.dir, 'logs');
    const sandboxConfig = podConfig(logDir);
    podId = (await cri.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config: sandboxConfig, runtime_handler: 'kata' })).pod_sandbox_id;
    const podStatus = await cri.call<{ status: { state: string; runtime_handler: string } }>('PodSandboxStatus', { pod_sandbox_id: podId });
    assert.equal(podStatus.status.state, 'SANDBOX_READY');
    assert.equal(podStatus.status.runtime_handler, 'kata');
    const newVmDirs = (await vmDirs()).filter((d) => !vmDirsBefore.includes(d));
    assert.equal(newVmDirs.length, 1, 'the pod sandbox booted one VM');
    const recordFile = path.join(vmRoot, newVmDirs[0] ?? '', 'sandbox.json');

    const { container_id: appId } = await cri.call<{ container_id: string }>('CreateContainer', {
      pod_sandbox_id: podId,
      sandbox_config: sandboxConfig,
      config: {
        metadata: { name: 'app', attempt: 0 },
        image: { image: busybox },
        command: ['sh', '-c', 'trap "echo got TERM; exit 0" TERM; echo hello from pod; while :; do sleep 1; done'],
        log_path: 'app.log',
        linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
      },
    });
    await cri.call('StartContainer', { container_id: appId });
    const running = await cri.call<{ status: { state: string } }>('ContainerStatus', { container_id: appId });
    assert.equal(running.status.state, 'CONTAINER_RUNNING');
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { sandboxId: string; containers: string[] };
    assert.equal(record.sandboxId, podId);
    assert.deepEqual([...record.containers].sort(), [podId, appId].sort(), 'the app container joined the pod\'s VM');
    assert.deepEqual((await vmDirs()).filter((d) => !vmDirsBefore.includes(d)), newVmDirs, 'still one VM');

    const exec = await cri.call<ExecSyncResponse>('ExecSync', { container_id: appId, cmd: ['sh', '-c', 'echo out; echo err >&2; cat /proc/sys/kernel/random/boot_id; exit 3'], timeout: 120 });
    assert.equal(exec.exit_code, 3);
    assert.equal(exec.stderr.toString(), 'err\n');
    const [out, appBootId] = exec.stdout.toString().trim().split('\n');
    assert.equal(out, 'out');
    // The pause container, seen through kata-ts with the shim's --root, runs on the same kernel.
    const inPause = await runCli(['--root', path.join(ctd.dir, 'runc', 'k8s.io'), 'exec', podId, 'cat', '/proc/sys/kernel/random/boot_id'], { timeoutMs: 120_000 });
    assert.equal(inPause.exitCode, 0, inPause.stderr);
    assert.equal(inPause.stdout.trim(), appBootId, 'both containers run in one VM');
    assert.notEqual(appBootId, (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim(), 'and not on the host');

    // The kubelet resizes a container: containerd's shim runs `kata-ts update --resources -`.
    await cri.call('UpdateContainerResources', { container_id: appId, linux: { memory_limit_in_bytes: 16 * 1024 * 1024, cpu_shares: 512 } });
    const hog = await cri.call<ExecSyncResponse>('ExecSync', { container_id: appId, cmd: ['sh', '-c', 'timeout 20 tail /dev/zero; echo status $?'], timeout: 120 });
    assert.equal(hog.stdout.toString(), 'status 137\n', 'OOM-killed at the new 16 MiB limit');

    await cri.call('StopContainer', { container_id: appId, timeout: 10 });
    const stopped = await cri.call<{ status: { state: string; exit_code: number } }>('ContainerStatus', { container_id: appId });
    assert.equal(stopped.status.state, 'CONTAINER_EXITED');
    assert.equal(stopped.status.exit_code, 0, 'SIGTERM reached the trap');
    const log = await readFile(path.join(logDir, 'app.log'), 'utf8');
    assert.match(log, / stdout F hello from pod\n/, 'the container\'s stdout in the CRI log');
    assert.match(log, / stdout F got TERM\n/);
    await cri.call('RemoveContainer', { container_id: appId });
    assert.deepEqual((JSON.parse(await readFile(recordFile, 'utf8')) as { containers: string[] }).containers, [podId], 'the VM stays for the pod');

    await cri.call('StopPodSandbox', { pod_sandbox_id: podId });
    await cri.call('RemovePodSandbox', { pod_sandbox_id: podId });
    podId = '';
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'the VM is gone with the pod');
    assert.deepEqual(await kataTsProcesses(), [], 'no QEMU, pod process, carrier or kata-ts command runs');
    assert.deepEqual(await processesMatching(`-address ${ctd.socket}`), [], 'no containerd shim runs');
  });
});

import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { vmRoot } from '../../src/runtime/sandbox-record.js';
import { shimSocketDir, shimStateRoot } from '../../src/shim-v2/shim-args.js';
import { busyboxImage, criPluginConfig, importPodImages, pauseImage, removeAllContainers, startContainerd, type ContainerdDaemon } from '../helpers/containerd-daemon.js';
import { connectCri, type CriClient } from '../helpers/cri-client.js';
import { bundledConfigText, repoRoot, tempDir } from '../helpers/fixtures.js';
import { cgroupDirs, kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { assertInteractiveShell } from '../helpers/pty-session.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';

const image = busyboxImage;
const pause = pauseImage;
const runtime = ['--runtime', 'io.containerd.kata-ts.v2'];
const shimName = 'containerd-shim-kata-ts-v2';

async function taskStatus(ctd: ContainerdDaemon, id: string, namespace = 'default'): Promise<string | undefined> {
  const ls = await ctd.ctr(['task', 'ls'], { namespace });
  return ls.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === id)?.[2];
}

async function waitForStatus(ctd: ContainerdDaemon, id: string, status: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await taskStatus(ctd, id)) !== status && Date.now() < deadline) await sleep(250);
  assert.equal(await taskStatus(ctd, id), status);
}

/** The shim daemons running now (start and delete are short-lived and gone by then). */
async function shimDaemons(): Promise<number[]> {
  return processesMatching(`${shimName} `);
}

/**
 * containerd 1.6 (Debian's) with kata-ts's own shim v2: `ctr run --runtime
 * io.containerd.kata-ts.v2` and the CRI plugin with runtime_type
 * io.containerd.kata-ts.v2. No runc shim and no kata-ts CLI process take part.
 */
describe('containerd shim v2: containerd-shim-kata-ts-v2', () => {
  let ctd: ContainerdDaemon;
  let cri: CriClient;
  let work: { dir: string; cleanup: () => Promise<void> };
  let vmDirsBefore: string[];
  let socketsBefore: string[];
  let cgroupsBefore: string[];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-shimv2-');
    vmDirsBefore = await vmDirs();
    socketsBefore = await readdir(shimSocketDir).catch(() => [] as string[]);
    cgroupsBefore = await cgroupDirs('/default');
    ctd = await startContainerd({
      pathPrefix: [path.join(repoRoot, 'bin')],
      criConfig: (dir) => criPluginConfig(dir, pause, readmeSnippet('containerd-shim-v2-runtime')),
    });
    await importPodImages(ctd, work.dir, ['default', 'k8s.io']);
    cri = connectCri(ctd.socket);
  });

  afterEach(async () => {
    // Every scenario ends with no VM, no shim, no kata-ts process and nothing in containerd.
    const shimLog = async (): Promise<string> => (await ctd.log()).split('\n').filter((l) => l.startsWith('{') || /shim/.test(l)).slice(-30).join('\n');
    assert.deepEqual(await untilNoneLeft(shimDaemons, 15_000), [], `no shim daemon is left; the shim's log:\n${await shimLog()}`);
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no sandbox VM dir is left');
    assert.deepEqual(await untilNoneLeft(async () => (await readdir(shimSocketDir).catch(() => [] as string[])).filter((f) => !socketsBefore.includes(f)).map(() => 0), 15_000), [], `no shim socket is left; the shim's log:\n${await shimLog()}`);
    assert.deepEqual(await kataTsProcesses(), [], 'no QEMU, pod process or carrier runs');
    assert.deepEqual(await cgroupDirs('/default'), cgroupsBefore, 'no host cgroup of a sandbox is left (containerd\'s cgroupsPath is /default/<id>)');
    assert.deepEqual((await ctd.ctr(['task', 'ls', '-q'])).stdout, '', 'containerd has no task');
    assert.deepEqual((await ctd.ctr(['containers', 'ls', '-q'])).stdout, '', 'containerd has no container');
  });

  after(async () => {
    try {
      cri?.close();
      if (ctd) {
        await removeAllContainers(ctd);
        await removeAllContainers(ctd, 'k8s.io');
      }
      await ctd?.stop();
      assert.deepEqual(await processesMatching(ctd.dir), [], 'neither containerd nor a shim of it runs');
    } finally {
      await work?.cleanup();
    }
  });

  it('ctr run --rm: stdout, stderr and the exit status, from the guest', { timeout: 240_000 }, async () => {
    const r = await ctd.ctr(['run', '--rm', ...runtime, image, 'hello', 'sh', '-c', 'echo hello from $(uname -r); echo to stderr >&2; exit 3']);
    assert.equal(r.exitCode, 3, `${r.stderr}\n${(await ctd.log()).slice(-3000)}`);
    assert.match(r.stdout, /^hello from \d+\.\d+\.\d+\S*$/);
    assert.notEqual(r.stdout.replace('hello from ', ''), os.release(), 'the guest kernel answers, not the host\'s');
    assert.equal(r.stderr, 'to stderr');
  });

  it('ctr run -d, then task exec, ps, kill and delete; events and logs reach containerd', { timeout: 300_000 }, async () => {
    const out = path.join(work.dir, 'web.out');
    // What containerd publishes to its subscribers: the shim's task events, forwarded.
    const events = execa('ctr', ['--address', ctd.socket, 'events'], { reject: false });
    // The runtime options' ConfigPath (ctr --runtime-config-path) picks the configuration: this one marks the guest's command line.
    const config = path.join(work.dir, 'marked.toml');
    await writeFile(config, await bundledConfigText({ kernel_params: '"kata_ts_config_marker=web"' }));
    const run = await ctd.ctr(['run', '-d', '--log-uri', `file://${out}`, ...runtime, '--runtime-config-path', config, image, 'web', 'sh', '-c', 'trap "echo got TERM; exit 4" TERM; echo up; while :; do sleep 1; done']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(await taskStatus(ctd, 'web'), 'RUNNING');
    assert.equal((await shimDaemons()).length, 1, 'one shim for the pod');

    const exec = await ctd.ctr(['task', 'exec', '--exec-id', 'e1', 'web', 'sh', '-c', 'echo from exec; echo exec err >&2; exit 5']);
    assert.equal(exec.exitCode, 5, exec.stderr);
    assert.equal(exec.stdout, 'from exec');
    assert.equal(exec.stderr, 'exec err');
    const cmdline = await ctd.ctr(['task', 'exec', '--exec-id', 'e2', 'web', 'cat', '/proc/cmdline']);
    assert.match(cmdline.stdout, /kata_ts_config_marker=web/, 'the VM booted with the configuration containerd named');
    // Stats: the guest's cgroup figures, as cgroups v1 metrics.
    const metrics = await ctd.ctr(['task', 'metrics', 'web']);
    assert.equal(metrics.exitCode, 0, metrics.stderr);
    assert.match(metrics.stdout, /pids\.current\s+[1-9]/);
    assert.match(metrics.stdout, /memory\.usage_in_bytes\s+[1-9]/);
    assert.match(metrics.stdout, /cpuacct\.usage\s+[1-9]/);
    const ps = await ctd.ctr(['task', 'ps', 'web']);
    assert.equal(ps.exitCode, 0, ps.stderr);
    assert.ok(ps.stdout.trim().split('\n').length >= 2, ps.stdout);

    const kill = await ctd.ctr(['task', 'kill', 'web']);
    assert.equal(kill.exitCode, 0, kill.stderr);
    await waitForStatus(ctd, 'web', 'STOPPED');
    assert.equal(await readFile(out, 'utf8'), 'up\ngot TERM\n', 'SIGTERM reached the trap in the guest');
    const del = await ctd.ctr(['task', 'delete', 'web']);
    assert.equal(del.exitCode, 0, del.stderr);
    assert.match(del.stderr, /task web exit with non-zero exit code 4/, 'the trap\'s exit status reached containerd');
    assert.equal((await ctd.ctr(['containers', 'rm', 'web'])).exitCode, 0);
    // The shim's own log went to the bundle's log FIFO, which containerd copies into its log.
    assert.match(await ctd.log(), /shim for sandbox web serves/);
    events.kill('SIGTERM');
    const topics = (await events).stdout.split('\n').filter((l) => /\bweb\b/.test(l)).map((l) => l.split(/\s+/).find((t) => t.startsWith('/tasks/')));
    for (const topic of ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit', '/tasks/delete']) {
      assert.ok(topics.includes(topic), `containerd got ${topic} for web: ${topics.join(' ')}`);
    }
  });

  it('ctr run -t: a terminal, its size, input and the exit status', { timeout: 240_000 }, async () => {
    await assertInteractiveShell('ctr', ['--address', ctd.socket, 'run', '-t', '--rm', ...runtime, image, 'shell', 'sh'], { PATH: `${path.join(repoRoot, 'bin')}:${process.env.PATH ?? ''}` });
  });

  it('containerd restarted while a task runs: the shim lives on, containerd reconnects and stops the task', { timeout: 300_000 }, async () => {
    const run = await ctd.ctr(['run', '-d', ...runtime, image, 'long', 'sh', '-c', 'trap "exit 6" TERM; while :; do sleep 1; done']);
    assert.equal(run.exitCode, 0, run.stderr);
    const shims = await shimDaemons();
    assert.equal(shims.length, 1);
    await ctd.restart();
    assert.deepEqual(await shimDaemons(), shims, 'the same shim still runs');
    assert.equal(await taskStatus(ctd, 'long'), 'RUNNING', 'containerd found the task again');
    assert.equal((await ctd.ctr(['task', 'kill', 'long'])).exitCode, 0);
    await waitForStatus(ctd, 'long', 'STOPPED');
    const del = await ctd.ctr(['task', 'delete', 'long']);
    assert.match(del.stderr, /exit code 6/);
    assert.equal((await ctd.ctr(['containers', 'rm', 'long'])).exitCode, 0);
  });

  it('the shim killed: containerd cleans up through delete, and no VM is left', { timeout: 300_000 }, async () => {
    const run = await ctd.ctr(['run', '-d', ...runtime, image, 'victim', 'sleep', '600']);
    assert.equal(run.exitCode, 0, run.stderr);
    const [shim] = await shimDaemons();
    assert.ok(shim);
    process.kill(shim, 'SIGKILL');
    try {
      // containerd sees the shim go, runs `containerd-shim-kata-ts-v2 delete`, and the task is gone.
      const deadline = Date.now() + 60_000;
      while ((await vmDirs()).length > vmDirsBefore.length && Date.now() < deadline) await sleep(500);
      assert.deepEqual(await vmDirs(), vmDirsBefore, 'the VM is gone');
      assert.match(await ctd.log(), /cleaning up dead shim/);
    } finally {
      // A failed case must not leave its VM to the next tests: the runtime's own delete ends it.
      await execa(path.join(repoRoot, 'bin', 'kata-ts'), ['--root', shimStateRoot('default'), 'delete', '--force', 'victim'], { reject: false });
      await ctd.ctr(['task', 'delete', 'victim']);
    }
    assert.equal((await ctd.ctr(['containers', 'rm', 'victim'])).exitCode, 0);
  });

  it('the shim killed while its guest hangs: containerd\'s 5 s cleanup still stops the VM, without the guest', { timeout: 300_000 }, async () => {
    const run = await ctd.ctr(['run', '-d', ...runtime, image, 'frozen', 'sleep', '600']);
    assert.equal(run.exitCode, 0, run.stderr);
    const [vmDir] = (await vmDirs()).filter((d) => !vmDirsBefore.includes(d));
    assert.ok(vmDir, 'the task booted a VM');
    const qemu = Number((await readFile(path.join(vmRoot, vmDir, 'qemu.pid'), 'utf8')).trim());
    const [shim] = await shimDaemons();
    assert.ok(shim && qemu > 0);
    try {
      // A guest that answers nothing: QEMU stopped. containerd kills `shim delete` after 5 s;
      // a delete that waited on the guest (a new pod process, RemoveContainer) would leave the VM.
      process.kill(qemu, 'SIGSTOP');
      process.kill(shim, 'SIGKILL');
      const deadline = Date.now() + 30_000;
      while ((await vmDirs()).includes(vmDir) && Date.now() < deadline) await sleep(250);
      assert.deepEqual(await vmDirs(), vmDirsBefore, 'the VM is gone');
      assert.deepEqual(await processesMatching(path.join(vmRoot, vmDir)), [], 'no QEMU or pod process of it runs');
      assert.doesNotMatch(await ctd.log(), /failed to clean up after shim disconnected/);
    } finally {
      // A failed case must not leave its VM to the next tests: the runtime's own delete ends it.
      if ((await vmDirs()).includes(vmDir)) {
        process.kill(qemu, 'SIGCONT');
        await execa(path.join(repoRoot, 'bin', 'kata-ts'), ['--root', shimStateRoot('default'), 'delete', '--force', 'frozen'], { reject: false });
      }
      await ctd.ctr(['task', 'delete', 'frozen']);
      await ctd.ctr(['containers', 'rm', 'frozen']);
    }
  });

  it('CRI with runtime_type io.containerd.kata-ts.v2: a pod and two containers in one VM, served by one shim', { timeout: 400_000 }, async () => {
    const logDir = path.join(work.dir, 'logs');
    const sandboxConfig = {
      metadata: { name: 'pod2', uid: 'uid-pod2', namespace: 'default', attempt: 0 },
      hostname: 'pod2',
      log_directory: logDir,
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
    };
    const podId = (await cri.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config: sandboxConfig, runtime_handler: 'kata-ts' })).pod_sandbox_id;
    try {
      const newVmDirs = (await vmDirs()).filter((d) => !vmDirsBefore.includes(d));
      assert.equal(newVmDirs.length, 1, 'the pod sandbox booted one VM');
      const ids: string[] = [];
      for (const name of ['app1', 'app2']) {
        const { container_id: id } = await cri.call<{ container_id: string }>('CreateContainer', {
          pod_sandbox_id: podId,
          sandbox_config: sandboxConfig,
          config: {
            metadata: { name, attempt: 0 },
            image: { image },
            command: ['sh', '-c', `echo hello from ${name}; cat /proc/sys/kernel/random/boot_id; while :; do sleep 1; done`],
            log_path: `${name}.log`,
            linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
          },
        });
        await cri.call('StartContainer', { container_id: id });
        ids.push(id);
      }
      const record = JSON.parse(await readFile(path.join(vmRoot, newVmDirs[0] ?? '', 'sandbox.json'), 'utf8')) as { containers: string[] };
      assert.deepEqual([...record.containers].sort(), [podId, ...ids].sort(), 'both containers joined the pod\'s VM');
      assert.deepEqual((await vmDirs()).filter((d) => !vmDirsBefore.includes(d)), newVmDirs, 'still one VM');
      assert.equal((await shimDaemons()).length, 1, 'exactly one shim process serves the pod');
      // Both containers see one kernel: the same boot id, which is not the host's.
      const bootIds = new Set<string>();
      for (const name of ['app1', 'app2']) {
        const deadline = Date.now() + 30_000;
        let log = '';
        while (!/stdout F [0-9a-f-]{36}\n/.test(log) && Date.now() < deadline) {
          log = await readFile(path.join(logDir, `${name}.log`), 'utf8').catch(() => '');
          await sleep(250);
        }
        assert.match(log, new RegExp(`stdout F hello from ${name}\\n`));
        bootIds.add(/stdout F ([0-9a-f-]{36})\n/.exec(log)?.[1] ?? '');
      }
      assert.equal(bootIds.size, 1, 'one VM');
      assert.ok(!bootIds.has((await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()), 'not the host');
      const exec = await cri.call<{ stdout: Buffer; exit_code: number }>('ExecSync', { container_id: ids[0], cmd: ['sh', '-c', 'echo via exec; exit 2'], timeout: 120 });
      assert.equal(exec.exit_code, 2);
      assert.equal(exec.stdout.toString(), 'via exec\n');
      for (const id of ids) {
        await cri.call('StopContainer', { container_id: id, timeout: 5 });
        await cri.call('RemoveContainer', { container_id: id });
      }
    } finally {
      await cri.call('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      await cri.call('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
    }
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'the VM is gone with the pod');
  });
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/agent-client/agent-client.js';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { buildImage } from '../../src/image/build-image.js';
import { agentNodeFlags, agentSnapshotBlob, guestAgentLoader } from '../../src/image/init-script.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { bootSandboxVm, shutdownSandboxVm, type SandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { isSameProcessAlive } from '../../src/util/process-identity.js';
import { shareMountsDir } from '../../src/share/share-view.js';
import { sharedStorage } from '../../src/runtime/create-container.js';
import type { Storage } from '../../src/agent-protocol/messages.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { processesMatching } from '../helpers/leaks.js';

const sharedMount = '/run/kata-containers/shared/containers/';

function containerSpec(id: string, args: string[]): { Process: Record<string, unknown>; Mounts: Array<{ destination: string; source: string; type: string; options: string[] }> } & Record<string, unknown> {
  return {
    Version: '1.0.2',
    Process: { Terminal: false, User: { UID: 0, GID: 0 }, Args: args, Env: ['PATH=/bin'], Cwd: '/', NoNewPrivileges: true },
    Root: { Path: `${sharedMount}${id}/rootfs`, Readonly: false },
    Hostname: id,
    Mounts: [
      { destination: '/proc', source: 'proc', type: 'proc', options: [] },
      { destination: '/dev', source: 'tmpfs', type: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    Linux: { Namespaces: [{ Type: 'pid' }, { Type: 'ipc' }, { Type: 'uts' }, { Type: 'mount' }, { Type: 'network', Path: '/var/run/netns/host-only' }] },
  };
}

async function readAll(client: AgentClient, cid: string, execId: string, which: 'stdout' | 'stderr'): Promise<string> {
  let out = '';
  for (;;) {
    const chunk = which === 'stdout' ? await client.readStdout(cid, execId) : await client.readStderr(cid, execId);
    if (!chunk) return out;
    out += chunk.toString();
  }
}

/**
 * Runs the agent's own vsock Health.Check client (`--vsock-health 1 PORT`) in a
 * container: the guest's node and agent bundle bind-mounted read-only.
 */
async function vsockHealthContainer(client: AgentClient, sandbox: SandboxVm, cid: string, port: number): Promise<{ status: number; stdout: string; stderr: string }> {
  const rootfs = path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  const binds = ['/opt/kata-ts', '/lib', '/lib64'];
  for (const dir of [...binds, '/usr/bin']) await mkdir(path.join(rootfs, dir), { recursive: true });
  await writeFile(path.join(rootfs, 'usr/bin/node'), '');
  const spec = containerSpec(cid, ['/usr/bin/node', ...agentNodeFlags, guestAgentLoader, '--vsock-health', '1', String(port)]);
  spec.Mounts.push(
    ...[...binds, '/usr/bin/node'].map((p) => ({ destination: p, source: p, type: 'bind', options: ['rbind', 'ro'] })),
    { destination: '/tmp', source: 'tmpfs', type: 'tmpfs', options: ['nosuid', 'nodev'] },
  );
  await client.createContainer({ container_id: cid, exec_id: cid, OCI: spec as never });
  const stdout = readAll(client, cid, cid, 'stdout');
  const stderr = readAll(client, cid, cid, 'stderr');
  await client.startContainer(cid);
  const status = await client.waitProcess(cid, cid);
  const result = { status, stdout: await stdout, stderr: await stderr };
  await client.removeContainer(cid);
  return result;
}

describe('sandbox VM: guest image, QEMU, pod process, agent and a crun container', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sandbox: SandboxVm | undefined;
  let client: AgentClient;
  let imageHasSnapshot = false;
  /** The share as create mounts it, for the configured shared_fs. */
  let share: Storage;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-e2e-'));
    const image = await buildImage();
    imageHasSnapshot = image.agentSnapshot;
    assert.ok(Object.values(image.files).every((f) => existsSync(f)));
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    // The host reaches the agent through the pod process's yamux (no vhost-vsock here); the agent also
    // listens on vsock, which a container in the guest reaches through vsock_loopback (CID 1).
    // agent.vsock_local=allow: this test's container may reach the agent (only the host may, otherwise).
    config.hypervisor.kernelParams.push('agent.use_vsock=true', 'agent.vsock_local=allow');
    share = sharedStorage(config.hypervisor);
    sandbox = await bootSandboxVm({ config, sandboxId: 'e2e-sb', vmDir: path.join(dir, 'vm'), accelerator: await sandboxAccelerator(config, silentLogger), logger: silentLogger });
    client = new AgentClient(sandbox.agentUrl);
    process.stderr.write(`# boot to agent ready: ${sandbox.bootMs} ms (${sandbox.accelerator})\n`);
  });

  after(async () => {
    client?.close();
    if (sandbox) await shutdownSandboxVm(sandbox, silentLogger);
    await cleanup();
  });

  it('answers Health.Check and Version through the pod process', { timeout: 120_000 }, async () => {
    assert.deepEqual(await client.check(), { status: 'SERVING' });
    const version = await client.version();
    assert.match(version.agent_version, /^\d+\.\d+\.\d+$/);
    const details = await client.getGuestDetails();
    assert.equal(details.agent_details.init_daemon, true, 'the agent is PID 1 in the guest');
  });

  it('runs echo hello in a crun container: CreateContainer, StartContainer, ReadStdout, WaitProcess', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const cid = 'c-hello';
    await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
    await client.createSandbox({ hostname: 'e2e-sb', dns: ['127.0.0.1'], storages: [share], sandbox_id: 'e2e-sb' });
    await client.createContainer({ container_id: cid, exec_id: cid, storages: [], OCI: containerSpec(cid, ['echo', 'hello']) as never });
    const stdout = readAll(client, cid, cid, 'stdout');
    await client.startContainer(cid);
    assert.equal(await stdout, 'hello\n');
    assert.equal(await client.waitProcess(cid, cid), 0);
    await client.removeContainer(cid);
  });

  it('the agent, PID 1, starts from its V8 startup snapshot on the CPU the snapshot was built for (TCG), else from its bundle', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const cid = 'c-pid1';
    await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
    // In the VM's pid namespace, the container's /proc shows the agent as PID 1.
    const spec = containerSpec(cid, ['sh', '-c', "tr '\\0' ' ' < /proc/1/cmdline"]);
    spec.Linux.Namespaces = spec.Linux.Namespaces.filter((ns) => ns.Type !== 'pid');
    await client.createContainer({ container_id: cid, exec_id: cid, OCI: spec as never });
    const stdout = readAll(client, cid, cid, 'stdout');
    await client.startContainer(cid);
    const cmdline = (await stdout).trim();
    assert.equal(await client.waitProcess(cid, cid), 0);
    await client.removeContainer(cid);
    const fromSnapshot = `node ${agentNodeFlags.join(' ')} --snapshot-blob ${agentSnapshotBlob}`;
    const fromBundle = `node ${agentNodeFlags.join(' ')} ${guestAgentLoader}`;
    assert.equal(cmdline, imageHasSnapshot && sandbox.accelerator === 'tcg' ? fromSnapshot : fromBundle);
  });

  it('reports the exit status of a failing process and its stderr', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const cid = 'c-fail';
    await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
    await client.createContainer({ container_id: cid, exec_id: cid, OCI: containerSpec(cid, ['sh', '-c', 'echo oops >&2; exit 3']) as never });
    const stderr = readAll(client, cid, cid, 'stderr');
    await client.startContainer(cid);
    assert.equal(await stderr, 'oops\n');
    assert.equal(await client.waitProcess(cid, cid), 3);
    await client.removeContainer(cid);
  });

  it('answers malformed or unknown requests with gRPC errors and keeps serving', { timeout: 120_000 }, async () => {
    await assert.rejects(client.startContainer('no-such-container'), /not found/);
    await assert.rejects(client.createContainer({ container_id: '../escape', OCI: containerSpec('x', ['true']) as never }), /invalid container id/);
    await assert.rejects(client.createContainer({ container_id: 'no-spec' }), /without an OCI spec/);
    assert.deepEqual(await client.check(), { status: 'SERVING' });
  });

  it("serves gRPC on vsock port 1024 in the guest: Health.Check through vsock_loopback (CID 1)", { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const served = await vsockHealthContainer(client, sandbox, 'c-vsock', 1024);
    assert.equal(served.status, 0, served.stderr);
    assert.equal(served.stdout, 'SERVING\n');
    // Nothing listens on port 1025: the same client fails.
    assert.notEqual((await vsockHealthContainer(client, sandbox, 'c-vsock-refused', 1025)).status, 0);
  });

  it('forgets an exec once it exited, was waited for and read to the end: its id is free again', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const cid = 'c-execs';
    await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
    await client.createContainer({ container_id: cid, exec_id: cid, OCI: containerSpec(cid, ['sh', '-c', 'while :; do sleep 1; done']) as never });
    await client.startContainer(cid);
    for (let round = 0; round < 3; round++) {
      // The same exec id each round: a record kept would make the second ExecProcess fail with ALREADY_EXISTS.
      await client.execProcess(cid, 'probe', { Args: ['echo', `round ${round}`], Env: ['PATH=/bin'], Cwd: '/', User: { UID: 0, GID: 0, AdditionalGids: [], Username: '' }, Terminal: false } as never);
      const out = readAll(client, cid, 'probe', 'stdout');
      const err = readAll(client, cid, 'probe', 'stderr');
      assert.equal(await client.waitProcess(cid, 'probe'), 0);
      assert.equal(await out, `round ${round}\n`);
      await err;
    }
    await client.signalProcess(cid, '', 9);
    await client.waitProcess(cid, cid);
    await client.removeContainer(cid);
  });

  it('reaps what it inherits as PID 1: no zombie stays in the guest after containers come and go', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    // Containers whose init exits (each one reparented to the agent), one leaving an orphan behind.
    for (const [i, args] of [['true'], ['sh', '-c', 'exit 3'], ['sh', '-c', 'sleep 2 & exit 0']].entries()) {
      const cid = `c-orphan-${i}`;
      await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
      const spec = containerSpec(cid, args);
      // No pid namespace: the orphan outlives its container's init, as in a pod that shares one.
      (spec.Linux as { Namespaces: Array<{ Type: string }> }).Namespaces = [{ Type: 'ipc' }, { Type: 'uts' }, { Type: 'mount' }];
      await client.createContainer({ container_id: cid, exec_id: cid, OCI: spec as never });
      await client.startContainer(cid);
      await client.waitProcess(cid, cid);
      await client.removeContainer(cid);
    }
    // The guest's whole /proc, seen from a container in the VM's pid namespace, once the reaper had its rounds.
    const cid = 'c-zombies';
    await makeBusyboxRootfs(path.join(shareMountsDir(sandbox.vm.layout), cid, 'rootfs'));
    const spec = containerSpec(cid, ['sh', '-c', 'sleep 13; for s in /proc/[0-9]*/stat; do cut -d" " -f3 $s; done | grep -c Z']);
    (spec.Linux as { Namespaces: Array<{ Type: string }> }).Namespaces = [{ Type: 'ipc' }, { Type: 'uts' }, { Type: 'mount' }];
    await client.createContainer({ container_id: cid, exec_id: cid, OCI: spec as never });
    const out = readAll(client, cid, cid, 'stdout');
    await client.startContainer(cid);
    await client.waitProcess(cid, cid);
    assert.equal((await out).trim(), '0', 'no zombie in the guest');
    await client.removeContainer(cid);
  });

  it('destroys the sandbox and leaves no QEMU, pod process, socket or dir behind', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    await client.destroySandbox();
    client.close();
    const { vm, pod } = sandbox;
    await shutdownSandboxVm(sandbox, silentLogger);
    sandbox = undefined;
    assert.equal(await isSameProcessAlive(vm.qemu), false, 'QEMU is gone');
    assert.ok(pod);
    assert.equal(await isSameProcessAlive(pod), false, 'the pod process is gone');
    assert.equal(existsSync(vm.layout.dir), false, 'the VM dir is gone');
    assert.equal(existsSync(vm.layout.qmpSocket), false);
    assert.deepEqual(await processesMatching(vm.layout.dir), [], 'nothing runs with the VM dir on its command line');
  });
});

describe('vsock: only the host reaches the agent', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sandbox: SandboxVm | undefined;
  let client: AgentClient;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-e2e-vsock-'));
    await buildImage();
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    config.hypervisor.kernelParams.push('agent.use_vsock=true', 'agent.log=debug');
    sandbox = await bootSandboxVm({ config, sandboxId: 'e2e-vsock', vmDir: path.join(dir, 'vm'), accelerator: await sandboxAccelerator(config, silentLogger), logger: silentLogger });
    client = new AgentClient(sandbox.agentUrl);
    await client.createSandbox({ hostname: 'e2e-vsock', storages: [sharedStorage(config.hypervisor)], sandbox_id: 'e2e-vsock' });
  });

  after(async () => {
    client?.close();
    if (sandbox) await shutdownSandboxVm(sandbox, silentLogger);
    await cleanup();
  });

  it('a container connecting to the agent through vsock_loopback (CID 1) is hung up on', { timeout: 120_000 }, async () => {
    assert.ok(sandbox);
    const tried = await vsockHealthContainer(client, sandbox, 'c-intruder', 1024);
    assert.notEqual(tried.status, 0, 'no answer from the agent');
    assert.doesNotMatch(tried.stdout, /SERVING/);
    assert.match(await readFile(sandbox.vm.layout.consoleLog, 'utf8'), /refused a vsock connection from CID 1/);
    assert.deepEqual(await client.check(), { status: 'SERVING' }, 'the host still is served');
  });
});

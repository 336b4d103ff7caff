import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/agent-client/agent-client.js';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { buildImage } from '../../src/image/build-image.js';
import { bootSandboxVm, shutdownSandboxVm, type SandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { isSameProcessAlive } from '../../src/util/process-identity.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { processesMatching } from '../helpers/leaks.js';

const sharedMount = '/run/kata-containers/shared/containers/';
const sharedStorage = {
  driver: '9p', source: 'kataShared', fstype: '9p', mount_point: sharedMount,
  options: ['trans=virtio', 'version=9p2000.L', 'cache=mmap', 'nodev', 'msize=8192'],
};

function containerSpec(id: string, args: string[]) {
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

describe('sandbox VM: guest image, QEMU, proxy, agent and a crun container', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sandbox: SandboxVm | undefined;
  let client: AgentClient;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-e2e-'));
    const image = await buildImage();
    assert.ok(existsSync(image.kernel) && existsSync(image.initrd));
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    sandbox = await bootSandboxVm({ config, sandboxId: 'e2e-sb', vmDir: path.join(dir, 'vm'), logger: silentLogger });
    client = new AgentClient(sandbox.agentUrl);
    process.stderr.write(`# boot to agent ready: ${sandbox.bootMs} ms (${sandbox.accelerator})\n`);
  });

  after(async () => {
    client?.close();
    if (sandbox) await shutdownSandboxVm(sandbox, silentLogger);
    await cleanup();
  });

  it('answers Health.Check and Version through the proxy', async () => {
    assert.deepEqual(await client.check(), { status: 'SERVING' });
    const version = await client.version();
    assert.match(version.agent_version, /^\d+\.\d+\.\d+$/);
    const details = await client.getGuestDetails();
    assert.equal(details.agent_details.init_daemon, true, 'the agent is PID 1 in the guest');
  });

  it('runs echo hello in a crun container: CreateContainer, StartContainer, ReadStdout, WaitProcess', async () => {
    assert.ok(sandbox);
    const cid = 'c-hello';
    await makeBusyboxRootfs(path.join(sandbox.vm.layout.sharedDir, cid, 'rootfs'));
    await client.createSandbox({ hostname: 'e2e-sb', dns: ['127.0.0.1'], storages: [sharedStorage], sandbox_id: 'e2e-sb' });
    await client.createContainer({ container_id: cid, exec_id: cid, storages: [], OCI: containerSpec(cid, ['echo', 'hello']) as never });
    const stdout = readAll(client, cid, cid, 'stdout');
    await client.startContainer(cid);
    assert.equal(await stdout, 'hello\n');
    assert.equal(await client.waitProcess(cid, cid), 0);
    await client.removeContainer(cid);
  });

  it('reports the exit status of a failing process and its stderr', async () => {
    assert.ok(sandbox);
    const cid = 'c-fail';
    await makeBusyboxRootfs(path.join(sandbox.vm.layout.sharedDir, cid, 'rootfs'));
    await client.createContainer({ container_id: cid, exec_id: cid, OCI: containerSpec(cid, ['sh', '-c', 'echo oops >&2; exit 3']) as never });
    const stderr = readAll(client, cid, cid, 'stderr');
    await client.startContainer(cid);
    assert.equal(await stderr, 'oops\n');
    assert.equal(await client.waitProcess(cid, cid), 3);
    await client.removeContainer(cid);
  });

  it('answers malformed or unknown requests with gRPC errors and keeps serving', async () => {
    await assert.rejects(client.startContainer('no-such-container'), /not found/);
    await assert.rejects(client.createContainer({ container_id: '../escape', OCI: containerSpec('x', ['true']) as never }), /invalid container id/);
    await assert.rejects(client.createContainer({ container_id: 'no-spec' }), /without an OCI spec/);
    assert.deepEqual(await client.check(), { status: 'SERVING' });
  });

  it('destroys the sandbox and leaves no QEMU, proxy, socket or dir behind', async () => {
    assert.ok(sandbox);
    await client.destroySandbox();
    client.close();
    const { vm, proxy } = sandbox;
    await shutdownSandboxVm(sandbox, silentLogger);
    sandbox = undefined;
    assert.equal(await isSameProcessAlive(vm.qemu), false, 'QEMU is gone');
    assert.ok(proxy);
    assert.equal(await isSameProcessAlive(proxy), false, 'the proxy is gone');
    assert.equal(existsSync(vm.layout.dir), false, 'the VM dir is gone');
    assert.equal(existsSync(vm.layout.qmpSocket), false);
    assert.deepEqual(await processesMatching(vm.layout.dir), [], 'nothing runs with the VM dir on its command line');
  });
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AgentClient } from '../../src/agent-client/agent-client.js';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { bootSandboxVm, shutdownSandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { isSameProcessAlive } from '../../src/util/process-identity.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';

// Needs vhost-vsock on the host: skipped only for that reason.
const noVhostVsock = existsSync('/dev/vhost-vsock') ? false : 'needs /dev/vhost-vsock (modprobe vhost_vsock), which this host lacks';

describe('use_vsock = true: the host dials the agent over vhost-vsock, no yamux', () => {
  it('boots, answers Health.Check over vsock://CID:1024, and stops cleanly', { skip: noVhostVsock, timeout: 180_000 }, async () => {
    const { dir, cleanup } = await tempDir('kata-ts-vsock-');
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    config.hypervisor.useVsock = true;
    const sandbox = await bootSandboxVm({ config, sandboxId: 'vsock-sb', vmDir: path.join(dir, 'vm'), accelerator: await sandboxAccelerator(config, silentLogger), logger: silentLogger });
    try {
      assert.match(sandbox.agentUrl, /^vsock:\/\/\d+:1024$/);
      assert.match(sandbox.agentUrl, /^vsock:/);
      const client = new AgentClient(sandbox.agentUrl);
      assert.deepEqual(await client.check(), { status: 'SERVING' });
      client.close();
    } finally {
      await shutdownSandboxVm(sandbox, silentLogger);
      await cleanup();
    }
    assert.equal(await isSameProcessAlive(sandbox.vm.qemu), false);
  });
});

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import { bootSandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { processesMatching } from '../helpers/leaks.js';

describe('a sandbox VM whose start fails leaves nothing behind', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-fail-')));
  after(() => cleanup());

  const configWith = (kernel: string, agent = ''): ReturnType<typeof parseRuntimeConfig> =>
    parseRuntimeConfig(path.join(repoRoot, 'configuration.toml'), `[hypervisor.qemu]\nkernel = "${kernel}"\ninitrd = "guest/kata-ts-initrd.img"\naccelerator = "tcg"\n[agent.kata]\n${agent}\n`, 'flag');

  it('QEMU refusing to start (missing kernel) is a clear error and no dir remains', { timeout: 120_000 }, async () => {
    const vmDir = path.join(dir, 'vm-bad-kernel');
    const config = configWith('/nonexistent/vmlinuz');
    await assert.rejects(bootSandboxVm({ config, sandboxId: 'bad-kernel', vmDir, accelerator: 'tcg', logger: silentLogger }), /QEMU failed to start: .*nonexistent\/vmlinuz/);
    assert.equal(existsSync(vmDir), false);
    assert.deepEqual(await processesMatching(vmDir), []);
  });

  it('use_vsock = true on a host without /dev/vhost-vsock fails at once, saying so', { timeout: 120_000, skip: existsSync('/dev/vhost-vsock') ? 'this host has /dev/vhost-vsock' : false }, async () => {
    const vmDir = path.join(dir, 'vm-vsock');
    const config = configWith('guest/vmlinuz');
    config.hypervisor.useVsock = true;
    const started = Date.now();
    await assert.rejects(bootSandboxVm({ config, sandboxId: 'no-vsock', vmDir, accelerator: 'tcg', logger: silentLogger }), /use_vsock = true but this host has no \/dev\/vhost-vsock/);
    assert.ok(Date.now() - started < 1000, 'no VM was booted first');
    assert.equal(existsSync(vmDir), false);
  });

  it('an agent that does not answer in dial_timeout times out, names the console log, and leaves no QEMU or pod process', { timeout: 120_000 }, async () => {
    const vmDir = path.join(dir, 'vm-timeout');
    const config = configWith('guest/vmlinuz', 'dial_timeout = 2');
    await assert.rejects(bootSandboxVm({ config, sandboxId: 'too-slow', vmDir, accelerator: 'tcg', logger: silentLogger }), (err: Error) => {
      assert.match(err.message, /sandbox too-slow: .*the guest console log is (\S+console\.log)/);
      const log = /the guest console log is (\S+)$/.exec(err.message)?.[1] ?? '';
      assert.ok(existsSync(log), 'the console log was kept');
      assert.match(readFileSync(log, 'latin1'), /SeaBIOS|Linux|\S/);
      return true;
    });
    assert.equal(existsSync(vmDir), false);
    assert.deepEqual(await processesMatching(vmDir), [], 'no QEMU or pod process runs for the VM dir');
  });

  it('a guest that dies while booting (its init is missing: the kernel panics) fails create as soon as QEMU exits, not at dial_timeout', { timeout: 120_000 }, async () => {
    const vmDir = path.join(dir, 'vm-no-init');
    const config = configWith('guest/vmlinux', 'dial_timeout = 60');
    config.hypervisor.kernelParams.push('rdinit=/nonexistent', 'init=/nonexistent');
    const started = Date.now();
    await assert.rejects(bootSandboxVm({ config, sandboxId: 'no-init', vmDir, accelerator: 'tcg', logger: silentLogger }), /sandbox no-init: the VM exited while booting .*the guest console log is/);
    const took = Date.now() - started;
    process.stderr.write(`# guest panic seen after ${took} ms (dial_timeout 60 s)\n`);
    assert.ok(took < 30_000, `create failed after ${took} ms`);
    assert.equal(existsSync(vmDir), false);
    assert.deepEqual(await processesMatching(vmDir), [], 'no QEMU or pod process runs for the VM dir');
  });
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { probeKvmBoot } from '../../src/host/kvm-boot-probe.js';
import { repoRoot } from '../helpers/fixtures.js';

describe('the boot probe with real QEMU and the guest kernel', () => {
  it('its initrd reaches guest user space (under TCG, which every host has)', { timeout: 120_000 }, async () => {
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    assert.ok(existsSync(config.hypervisor.kernel), 'the guest image is built (scripts/setup.sh)');
    const evidence = await probeKvmBoot({ hypervisor: config.hypervisor, accelerator: 'tcg', deadlineMs: 90_000, stallMs: 30_000 });
    assert.equal(evidence.stage, 'user-space', evidence.detail);
    assert.deepEqual([evidence.usable, evidence.conclusive], [true, true]);
    assert.match(evidence.detail, /QEMU with accel=tcg booted the guest kernel to user space/);
    process.stderr.write(`# probe boot under TCG: ${evidence.elapsedMs} ms\n`);
  });
});

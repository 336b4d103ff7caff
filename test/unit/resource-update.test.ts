import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { limitsToOci } from '../../src/guest-agent/oci-spec.js';
import { resourcesToAgent } from '../../src/runtime/agent-spec.js';
import { parseByteSize, resourcesFromFlags, setsAnyLimit } from '../../src/runtime/resource-update.js';

const noStdin = (): Promise<string> => Promise.reject(new Error('stdin not expected'));

describe('update: limits from flags and files, down to crun', () => {
  it('reads sizes as runc does', () => {
    assert.equal(parseByteSize('67108864', 'memory'), 67108864);
    assert.equal(parseByteSize('64m', 'memory'), 64 * 1024 * 1024);
    assert.equal(parseByteSize('1G', 'memory'), 1024 ** 3);
    assert.equal(parseByteSize('512KiB', 'memory'), 512 * 1024);
    for (const bad of ['', 'lots', '-1m', '1.5g', '10x']) assert.throws(() => parseByteSize(bad, 'memory'), /expected a size/);
  });

  it('puts flags on top of the resources file; an update that sets nothing, or only zeros, is taken and sets nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-update-'));
    const file = path.join(dir, 'resources.json');
    await writeFile(file, JSON.stringify({ memory: { limit: 1000, swap: 4000 }, cpu: { shares: 512 }, devices: [{ allow: true }] }));
    assert.deepEqual(await resourcesFromFlags({ resources: file, memory: '2k', pidsLimit: '50' }, noStdin), {
      memory: { limit: 2048, swap: 4000 }, cpu: { shares: 512 }, pids: { limit: 50 },
    });
    assert.deepEqual(await resourcesFromFlags({ resources: '-' }, async () => '{"cpu":{"quota":50000,"period":100000}}'), { cpu: { quota: 50000, period: 100000 } });
    assert.deepEqual(await resourcesFromFlags({}, noStdin), {});
    // docker update --restart always: every limit zero, which runc reads as unchanged.
    const zeros = await resourcesFromFlags({ resources: '-' }, async () => JSON.stringify({ memory: { limit: 0, reservation: 0, swap: 0 }, cpu: { shares: 0, quota: 0, period: 0 }, pids: { limit: 0 } }));
    assert.equal(setsAnyLimit(zeros), false);
    assert.equal(setsAnyLimit(await resourcesFromFlags({}, noStdin)), false);
    assert.equal(setsAnyLimit({ cpu: { shares: 0, quota: 5000 } }), true);
    await assert.rejects(resourcesFromFlags({ resources: '-' }, async () => '[]'), /must be a JSON object/);
    await assert.rejects(resourcesFromFlags({ resources: path.join(dir, 'missing.json') }, noStdin), /cannot read resources file/);
    await assert.rejects(resourcesFromFlags({ cpuShares: 'many' }, noStdin), /--cpu-shares many: expected an integer/);
    await rm(dir, { recursive: true });
  });

  it('reaches crun as memory/cpu/pids only: no devices, no host cpusets, zero means unset', () => {
    const agent = resourcesToAgent({ memory: { limit: 2048 }, cpu: { shares: 512, cpus: '0-63' }, pids: { limit: 50 }, devices: [] });
    assert.equal(agent.CPU?.Cpus, '', 'host CPU numbers mean nothing in the VM');
    assert.deepEqual(limitsToOci(agent), { memory: { limit: 2048 }, cpu: { shares: 512 }, pids: { limit: 50 } });
    assert.deepEqual(limitsToOci(null), {});
  });
});

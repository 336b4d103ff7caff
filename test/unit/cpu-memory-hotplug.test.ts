import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { plugMemory, plugVcpus, unplugVcpus } from '../../src/hypervisor/cpu-memory-hotplug.js';
import { memoryArgs } from '../../src/hypervisor/qemu-args.js';
import { QmpClient } from '../../src/hypervisor/qmp-client.js';
import { onlineCpuMem } from '../../src/guest-agent/cpu-memory.js';
import { containerNeeds, dimmSize, sandboxTarget } from '../../src/runtime/sandbox-resources.js';
import { tempDir } from '../helpers/fixtures.js';

const mib = 1024 * 1024;

/** A QMP peer that answers query-hotpluggable-cpus like QEMU 7.2 with -smp 1,maxcpus=4 and records what it got. */
async function fakeQemu(socketPath: string): Promise<{ server: net.Server; commands: Array<{ execute: string; arguments?: Record<string, unknown> }> }> {
  const commands: Array<{ execute: string; arguments?: Record<string, unknown> }> = [];
  const cpus = [3, 2, 1, 0].map((socket) => ({
    type: 'max-x86_64-cpu', 'vcpus-count': 1, props: { 'socket-id': socket, 'core-id': 0, 'thread-id': 0 },
    ...(socket === 0 ? { 'qom-path': '/machine/unattached/device[0]' } : {}),
  }));
  const server = net.createServer((conn) => {
    const reply = (obj: unknown): void => void conn.write(JSON.stringify(obj) + '\r\n');
    reply({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } });
    let buffer = '';
    conn.on('data', (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const command = JSON.parse(buffer.slice(0, nl)) as { execute: string; id?: string; arguments?: Record<string, unknown> };
        buffer = buffer.slice(nl + 1);
        if (command.execute !== 'qmp_capabilities') commands.push({ execute: command.execute, ...(command.arguments ? { arguments: command.arguments } : {}) });
        if (command.execute === 'query-hotpluggable-cpus') reply({ return: cpus, id: command.id });
        else if (command.execute === 'device_add' && String(command.arguments?.driver).endsWith('-cpu')) {
          // The slot is taken: QEMU lists it with the device's path under /machine/peripheral.
          const slot = cpus.find((c) => c.props['socket-id'] === command.arguments?.['socket-id']);
          if (slot) Object.assign(slot, { 'qom-path': `/machine/peripheral/${String(command.arguments?.id)}` });
          reply({ return: {}, id: command.id });
        } else if (command.execute === 'device_del') {
          reply({ return: {}, id: command.id });
          // The guest ejects the CPU a little later; then the slot is free again.
          const device = String(command.arguments?.id);
          setTimeout(() => {
            const slot = cpus.find((c) => c['qom-path'] === `/machine/peripheral/${device}`);
            if (slot) delete (slot as { 'qom-path'?: string })['qom-path'];
            reply({ event: 'DEVICE_DELETED', data: { device, path: `/machine/peripheral/${device}` }, timestamp: { seconds: 0, microseconds: 0 } });
          }, 20);
        }
        else if (command.execute === 'query-memory-devices') reply({ return: [{ type: 'nvdimm', data: { addr: 4 * 1024 * mib, size: 6 * mib } }], id: command.id });
        else if (command.arguments?.driver === 'pc-dimm' && command.arguments.id === 'dimm-9') reply({ error: { class: 'GenericError', desc: 'no slot' }, id: command.id });
        else reply({ return: {}, id: command.id });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { server, commands };
}

describe('vCPU and memory hot-plug (OnlineCPUMem)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-cpumem-')));
  after(() => cleanup());

  it('counts a container\'s needs as Kata 1.x does, and caps the VM at its maximums', () => {
    assert.deepEqual(containerNeeds({ cpu: { quota: 250000, period: 100000 }, memory: { limit: 300 * 1024 * 1024 + 1 } }), { vcpus: 3, memoryMiB: 301 });
    assert.deepEqual(containerNeeds({ cpu: { quota: 50000 } }), { vcpus: 1, memoryMiB: 0 }, 'the default period is 100 ms');
    assert.deepEqual(containerNeeds({ cpu: { quota: -1, shares: 1024 }, memory: { limit: -1 } }), { vcpus: 0, memoryMiB: 0 });
    assert.deepEqual(containerNeeds(undefined), { vcpus: 0, memoryMiB: 0 });
    const limits = { maxVcpus: 4, maxMemoryMiB: 2048 };
    assert.deepEqual(sandboxTarget({ vcpus: 1, memoryMiB: 512 }, [{ vcpus: 2, memoryMiB: 256 }, { vcpus: 0, memoryMiB: 0 }], limits), { vcpus: 3, memoryMiB: 768, capped: false });
    assert.deepEqual(sandboxTarget({ vcpus: 1, memoryMiB: 512 }, [{ vcpus: 8, memoryMiB: 4096 }], limits), { vcpus: 4, memoryMiB: 2048, capped: true });
    assert.equal(dimmSize(300, 128, 4096), 384, 'whole memory blocks');
    assert.equal(dimmSize(300, 128, 200), 128, 'no more than maxmem leaves');
  });

  it('QMP: device_add for free CPU slots in socket order, then a pc-dimm on a RAM backend (removed again when device_add fails)', async () => {
    const socket = path.join(dir, 'qmp.sock');
    const { server, commands } = await fakeQemu(socket);
    const qmp = await QmpClient.connect(socket);
    assert.equal(await plugVcpus(qmp, 2), 2);
    await plugMemory(qmp, 0, 256, 128);
    await assert.rejects(plugMemory(qmp, 9, 128, 128), /memory hot-plug of 128 MiB failed: .*no slot/);
    qmp.close();
    server.close();
    assert.deepEqual(commands, [
      { execute: 'query-hotpluggable-cpus' },
      { execute: 'device_add', arguments: { driver: 'max-x86_64-cpu', id: 'vcpu-1-0-0', 'socket-id': 1, 'core-id': 0, 'thread-id': 0 } },
      { execute: 'device_add', arguments: { driver: 'max-x86_64-cpu', id: 'vcpu-2-0-0', 'socket-id': 2, 'core-id': 0, 'thread-id': 0 } },
      // Past the nvdimm (4 GiB + 6 MiB), at the next 128 MiB boundary: Linux onlines only block-aligned ranges.
      { execute: 'query-memory-devices' },
      { execute: 'object-add', arguments: { 'qom-type': 'memory-backend-ram', id: 'hotmem-0', size: 256 * mib } },
      { execute: 'device_add', arguments: { driver: 'pc-dimm', id: 'dimm-0', memdev: 'hotmem-0', addr: 4 * 1024 * mib + 128 * mib } },
      { execute: 'query-memory-devices' },
      { execute: 'object-add', arguments: { 'qom-type': 'memory-backend-ram', id: 'hotmem-9', size: 128 * mib } },
      { execute: 'device_add', arguments: { driver: 'pc-dimm', id: 'dimm-9', memdev: 'hotmem-9', addr: 4 * 1024 * mib + 128 * mib } },
      { execute: 'object-del', arguments: { id: 'hotmem-9' } },
    ]);
  });

  it('QMP: unplug takes out the hot-plugged vCPUs last first, each once the guest ejected it (DEVICE_DELETED), never a boot vCPU', async () => {
    const socket = path.join(dir, 'qmp-unplug.sock');
    const { server, commands } = await fakeQemu(socket);
    const qmp = await QmpClient.connect(socket);
    assert.equal(await plugVcpus(qmp, 2), 2);
    commands.length = 0;
    assert.equal(await unplugVcpus(qmp, 3), 2, 'only the two plugged ones');
    assert.equal(await plugVcpus(qmp, 1), 1, 'a freed slot takes a vCPU again');
    qmp.close();
    server.close();
    assert.deepEqual(commands, [
      { execute: 'query-hotpluggable-cpus' },
      { execute: 'device_del', arguments: { id: 'vcpu-2-0-0' } },
      { execute: 'device_del', arguments: { id: 'vcpu-1-0-0' } },
      { execute: 'query-hotpluggable-cpus' },
      { execute: 'device_add', arguments: { driver: 'max-x86_64-cpu', id: 'vcpu-1-0-0', 'socket-id': 1, 'core-id': 0, 'thread-id': 0 } },
    ]);
  });

  it('QEMU gets memory_slots DIMM slots (plus the nvdimm\'s) and the host\'s memory as room', () => {
    const base = { sandboxId: 's', accelerator: 'tcg' as const, hostCpus: 2, hostMemoryMiB: 4096, agentDebug: false, layout: {} as never };
    const hypervisor = { defaultMemoryMiB: 512, memorySlots: 10, image: '', disableImageNvdimm: false } as never;
    assert.deepEqual(memoryArgs({ ...base, hypervisor }), ['-m', '512M,slots=10,maxmem=4608M']);
    assert.deepEqual(memoryArgs({ ...base, hypervisor: { defaultMemoryMiB: 512, memorySlots: 0, image: '' } as never }), ['-m', '512M']);
  });

  it('the guest: offline vCPUs come online (waiting for late ones), then offline memory blocks', async () => {
    const sys = path.join(dir, 'sys');
    const cpu = (n: number): string => path.join(sys, 'devices/system/cpu', `cpu${n}`, 'online');
    const block = (n: number): string => path.join(sys, 'devices/system/memory', `memory${n}`, 'state');
    for (const [n, state] of [[1, '1'], [2, '0']] as const) {
      await mkdir(path.dirname(cpu(n)), { recursive: true });
      await writeFile(cpu(n), `${state}\n`);
    }
    for (const [n, state] of [[0, 'online'], [8, 'offline']] as const) {
      await mkdir(path.dirname(block(n)), { recursive: true });
      await writeFile(block(n), `${state}\n`);
    }
    // cpu3 arrives a little later, as ACPI announces it.
    setTimeout(() => void mkdir(path.dirname(cpu(3)), { recursive: true }).then(() => writeFile(cpu(3), '0\n')), 150);
    await onlineCpuMem({ wait: true, nb_cpus: 2, cpu_only: false }, sys, 2000);
    assert.deepEqual(await Promise.all([cpu(1), cpu(2), cpu(3)].map((f) => readFile(f, 'utf8'))), ['1\n', '1', '1']);
    assert.deepEqual(await Promise.all([block(0), block(8)].map((f) => readFile(f, 'utf8'))), ['online\n', 'online']);
    await assert.rejects(onlineCpuMem({ wait: true, nb_cpus: 1, cpu_only: true }, sys, 200), /only 0 of 1 hot-plugged vCPUs came online within 200 ms/);
  });

  it('the guest: a block the kernel onlined between our read and our write counts as online; one left offline is an error naming it', async () => {
    const sys = path.join(dir, 'sys-race');
    const block = (n: number): string => path.join(sys, 'devices/system/memory', `memory${n}`, 'state');
    const einval = (): Error => Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
    for (const n of [8, 9]) {
      await mkdir(path.dirname(block(n)), { recursive: true });
      await writeFile(block(n), 'offline\n');
    }
    // memhp_default_state=online: the kernel got there first and refuses our write.
    const kernelFirst = async (file: string): Promise<void> => {
      await writeFile(file, 'online\n');
      throw einval();
    };
    await onlineCpuMem({ cpu_only: false }, sys, 200, kernelFirst);
    assert.deepEqual(await Promise.all([block(8), block(9)].map((f) => readFile(f, 'utf8'))), ['online\n', 'online\n']);
    await writeFile(block(9), 'offline\n');
    const refused = async (): Promise<void> => {
      throw einval();
    };
    await assert.rejects(onlineCpuMem({ cpu_only: false }, sys, 200, refused), /cannot bring .*memory9 online: EINVAL/);
  });
});

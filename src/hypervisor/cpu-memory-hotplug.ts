import path from 'node:path';
import { KataError } from '../util/errors.js';
import { removeDevice } from './device-removal.js';
import type { QmpClient } from './qmp-client.js';

/** One entry of QMP query-hotpluggable-cpus. */
interface HotpluggableCpu {
  type: string;
  'vcpus-count': number;
  props: { 'socket-id'?: number; 'core-id'?: number; 'thread-id'?: number; 'node-id'?: number };
  'qom-path'?: string;
}

/** Plugs up to `count` vCPUs into the free CPU slots, as Kata 1.x does; returns how many went in. */
export async function plugVcpus(qmp: QmpClient, count: number): Promise<number> {
  const slots = await qmp.execute<HotpluggableCpu[]>('query-hotpluggable-cpus');
  // Free slots have no qom-path; QEMU lists them highest first.
  const free = slots.filter((s) => !s['qom-path']).sort((a, b) => (a.props['socket-id'] ?? 0) - (b.props['socket-id'] ?? 0));
  let plugged = 0;
  for (const slot of free.slice(0, count)) {
    const id = `vcpu-${slot.props['socket-id'] ?? 0}-${slot.props['core-id'] ?? 0}-${slot.props['thread-id'] ?? 0}`;
    await qmp.execute('device_add', { driver: slot.type, id, ...slot.props });
    plugged += slot['vcpus-count'];
  }
  return plugged;
}

/**
 * Takes out up to `count` of the vCPUs plugVcpus put in, last plugged first,
 * as Kata 1.x shrinks a sandbox when a container goes: device_del asks the
 * guest (ACPI eject), which offlines the CPU; DEVICE_DELETED says it is out.
 * The boot vCPUs are never taken. Returns how many went out.
 */
export async function unplugVcpus(qmp: QmpClient, count: number, timeoutMs = 10_000): Promise<number> {
  const slots = await qmp.execute<HotpluggableCpu[]>('query-hotpluggable-cpus');
  // Hot-plugged vCPUs are the peripherals we named; boot ones live under /machine/unattached.
  const plugged = slots
    .filter((s) => s['qom-path']?.startsWith('/machine/peripheral/'))
    .sort((a, b) => (b.props['socket-id'] ?? 0) - (a.props['socket-id'] ?? 0));
  let unplugged = 0;
  for (const slot of plugged) {
    if (unplugged >= count) break;
    const id = path.basename(slot['qom-path'] ?? '');
    await removeDevice(qmp, id, 'vCPU', timeoutMs);
    unplugged += slot['vcpus-count'];
  }
  return unplugged;
}

/** The host thread ids of the VM's vCPUs (QMP query-cpus-fast): what a host cgroup limits. */
export async function vcpuThreads(qmp: QmpClient): Promise<number[]> {
  return (await qmp.execute<Array<{ 'thread-id': number }>>('query-cpus-fast')).map((cpu) => cpu['thread-id']);
}

/** One entry of QMP query-memory-devices (dimm and nvdimm carry the same data). */
interface MemoryDevice {
  type: string;
  data: { addr?: number; size?: number };
}

const mib = 1024 * 1024;

/**
 * Where the next DIMM goes: past every memory device, aligned to the guest's
 * memory block (QEMU would place it right after the nvdimm, whose size is the
 * image's, and Linux refuses a range that is not block-aligned). Undefined
 * when there is no device yet: QEMU's own choice is aligned (1 GiB).
 */
export function nextDimmAddress(devices: MemoryDevice[], alignMiB: number): number | undefined {
  const ends = devices.map((d) => (d.data.addr ?? 0) + (d.data.size ?? 0)).filter((end) => end > 0);
  if (ends.length === 0) return undefined;
  const align = alignMiB * mib;
  return Math.ceil(Math.max(...ends) / align) * align;
}

/**
 * Plugs a pc-dimm of sizeMiB backed by guest RAM, named by index, at a
 * block-aligned address: memory-backend-ram, or a shared memfd when a
 * vhost-user daemon (virtiofsd) must reach all of the guest's RAM.
 */
export async function plugMemory(qmp: QmpClient, index: number, sizeMiB: number, alignMiB: number, sharedRam = false): Promise<void> {
  const backend = `hotmem-${index}`;
  const addr = nextDimmAddress(await qmp.execute<MemoryDevice[]>('query-memory-devices'), alignMiB);
  await qmp.execute('object-add', sharedRam
    ? { 'qom-type': 'memory-backend-memfd', id: backend, size: sizeMiB * mib, share: true }
    : { 'qom-type': 'memory-backend-ram', id: backend, size: sizeMiB * mib });
  try {
    await qmp.execute('device_add', { driver: 'pc-dimm', id: `dimm-${index}`, memdev: backend, ...(addr !== undefined ? { addr } : {}) });
  } catch (err) {
    await qmp.execute('object-del', { id: backend }).catch(() => undefined);
    throw new KataError('QMP', `memory hot-plug of ${sizeMiB} MiB failed: ${(err as Error).message}`, { cause: err });
  }
}

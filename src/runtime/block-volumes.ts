import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { blockAttachment, bridgeSlots, guestAddress, scsiTargets, type BlockSlot } from '../hypervisor/block-devices.js';
import { rootlessUser } from '../hypervisor/qemu-args.js';
import { endpointSlot } from './guest-network.js';
import { validateId } from '../store/container-id.js';
import { KataError, messageOf } from '../util/errors.js';
import { faultPoint } from '../util/fault-point.js';
import type { Logger } from '../util/logger.js';
import { loadContainer, requireStatus, type LoadedContainer, type RuntimeContainerState, type VolumeRecord } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent, withSandboxHypervisor } from './sandbox-agent.js';
import { readSandboxRecord, withSandboxLock, type SandboxRecord } from './sandbox-record.js';

export interface HotPlugOptions {
  sandboxId: string;
  containerId: string;
  hostPath: string;
  devicePath: string;
}

/** A volume's host side, checked: the device or file itself. */
export interface HostVolume {
  resolved: string;
  isBlockDevice: boolean;
}

export interface ListedVolume extends VolumeRecord {
  containerId: string;
}

function checkDevicePath(devicePath: string): string {
  if (!devicePath.startsWith('/dev/') || path.posix.normalize(devicePath) !== devicePath || devicePath.endsWith('/')) {
    throw new KataError('USAGE', `--device-path ${devicePath}: must be an absolute, normalized path under /dev`);
  }
  return devicePath;
}

/**
 * The host side of a volume: a block device or a regular (image) file, named
 * as itself. A symbolic link is refused (what it points at can change between
 * this check and QEMU's open, or be a host disk the caller did not mean), and
 * so is a device the host is using: mounted, or swap, or a partition of one.
 */
export async function checkHostPath(hostPath: string): Promise<HostVolume> {
  const link = await lstat(hostPath).catch(() => undefined);
  if (!link) throw new KataError('NOT_FOUND', `block volume ${hostPath} does not exist`);
  if (link.isSymbolicLink()) {
    const target = await realpath(hostPath).catch(() => 'nothing');
    throw new KataError('USAGE', `block volume ${hostPath} is a symbolic link (to ${target}): name the device or file itself`);
  }
  const resolved = await realpath(hostPath).catch(() => undefined);
  const info = resolved ? await stat(resolved).catch(() => undefined) : undefined;
  if (!resolved || !info) throw new KataError('NOT_FOUND', `block volume ${hostPath} does not exist`);
  if (!info.isBlockDevice() && !info.isFile()) throw new KataError('USAGE', `block volume ${hostPath} is neither a block device nor a regular file`);
  if (info.isBlockDevice()) {
    const use = await hostUseOf(info.rdev);
    if (use) throw new KataError('USAGE', `block volume ${hostPath} is in use on the host (${use}): refusing to give it to a VM`);
  }
  return { resolved, isBlockDevice: info.isBlockDevice() };
}

/** glibc's major:minor of a dev_t (as /proc/self/mountinfo prints it). */
const devNumber = (rdev: number): string => `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00)}`;

/** Whether the host mounts the device or one of its partitions, or swaps on it: what, or undefined. */
async function hostUseOf(rdev: number): Promise<string | undefined> {
  const wanted = new Set([devNumber(rdev)]);
  // A whole disk's partitions are its subdirs in sysfs that have a "partition" file.
  const sysDir = `/sys/dev/block/${devNumber(rdev)}`;
  for (const entry of await readdir(sysDir).catch(() => [] as string[])) {
    const dev = await readFile(path.join(sysDir, entry, 'dev'), 'utf8').catch(() => '');
    if (dev && (await stat(path.join(sysDir, entry, 'partition')).then(() => true, () => false))) wanted.add(dev.trim());
  }
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')).split('\n')) {
    const fields = line.split(' ');
    if (fields[2] && wanted.has(fields[2])) return `mounted at ${fields[4] ?? '?'}`;
  }
  for (const line of (await readFile('/proc/swaps', 'utf8').catch(() => '')).split('\n').slice(1)) {
    const device = line.split(/\s+/)[0];
    if (!device) continue;
    const st = await stat(device).catch(() => undefined);
    if (st?.isBlockDevice() && wanted.has(devNumber(st.rdev))) return `swap on ${device}`;
  }
  return undefined;
}

/** Loads a container and checks that it lives in the sandbox the caller named (before any lock or side effect). */
async function containerInSandbox(ctx: RuntimeContext, sandboxId: string, containerId: string): Promise<LoadedContainer> {
  validateId(sandboxId, 'sandbox id');
  const loaded = await loadContainer(ctx.store, containerId);
  if (loaded.state.sandboxId !== sandboxId) throw new KataError('USAGE', `container ${containerId} is not in sandbox ${sandboxId} (it is in ${loaded.state.sandboxId})`);
  return loaded;
}

/** Every volume of the sandbox's containers, as their states record them. */
export async function sandboxVolumes(ctx: RuntimeContext, record: SandboxRecord): Promise<ListedVolume[]> {
  const volumes: ListedVolume[] = [];
  for (const id of record.containers) {
    const loaded = await loadContainer(ctx.store, id).catch(() => undefined);
    for (const v of loaded?.state.volumes ?? []) volumes.push({ ...v, containerId: id });
  }
  return volumes;
}

/** The first free place for a disk: a bridge slot, or a SCSI target. */
function freeSlot(record: SandboxRecord, used: BlockSlot[]): BlockSlot {
  if (record.blockDeviceDriver === 'virtio-scsi') {
    const taken = new Set(used.map((s) => (s.driver === 'virtio-scsi' ? s.scsiId : -1)));
    for (let scsiId = 0; scsiId < scsiTargets; scsiId++) if (!taken.has(scsiId)) return { driver: 'virtio-scsi', scsiId, lun: 0 };
  } else {
    const taken = new Set(used.map((s) => (s.driver === 'virtio-blk' ? `${s.bridge}/${s.slot}` : '')));
    // The pod's network devices sit on the first bridge slots, and hot-plugged ones where they were put.
    for (const [i, e] of (record.network?.plan.endpoints ?? []).entries()) {
      const nic = endpointSlot(e, i);
      taken.add(`${nic.bridge}/${nic.slot}`);
    }
    for (let bridge = 0; bridge < record.bridges; bridge++) {
      for (let slot = 1; slot <= bridgeSlots; slot++) if (!taken.has(`${bridge}/${slot}`)) return { driver: 'virtio-blk', bridge, slot };
    }
  }
  throw new KataError('USAGE', `sandbox ${record.sandboxId} has no free slot for another disk`);
}

/**
 * block-volume hot-plug: QMP blockdev-add + device_add, then the agent makes
 * the node in the container. A failure after blockdev-add takes the disk out
 * of QEMU again.
 */
export async function hotPlugVolume(ctx: RuntimeContext, options: HotPlugOptions): Promise<VolumeRecord> {
  const devicePath = checkDevicePath(options.devicePath);
  const host = await checkHostPath(options.hostPath);
  await containerInSandbox(ctx, options.sandboxId, options.containerId);
  return withSandboxLock(ctx.store.root, options.sandboxId, async () => {
    // The status is read under the lock: a delete that got there first is seen.
    const { status } = await containerInSandbox(ctx, options.sandboxId, options.containerId);
    requireStatus(options.containerId, status, ['running'], 'hot-plug a volume into');
    const record = await readSandboxRecord(ctx.store.root, options.sandboxId);
    const volumes = await sandboxVolumes(ctx, record);
    const attached = volumes.find((v) => v.hostPath === host.resolved);
    if (attached) throw new KataError('ALREADY_EXISTS', `block volume ${options.hostPath} is already attached to sandbox ${options.sandboxId} (container ${attached.containerId}, ${attached.devicePath})`);
    if (volumes.some((v) => v.containerId === options.containerId && v.devicePath === devicePath)) {
      throw new KataError('ALREADY_EXISTS', `${devicePath} is already a hot-plugged volume of container ${options.containerId}`);
    }
    const setVolumes = (change: (volumes: VolumeRecord[]) => VolumeRecord[]): Promise<unknown> =>
      ctx.store.update(options.containerId, (s) => ({ ...s, volumes: change((s as RuntimeContainerState).volumes ?? []) }));
    return attachVolume(ctx, record, options.containerId, host, devicePath, volumes, setVolumes);
  });
}

/**
 * A disk into QEMU (blockdev-add + device_add on a free slot) and its node into
 * the container (agent), recorded through `setVolumes` before anything changes
 * and rolled back on failure. The container may be created or running.
 */
export async function attachVolume(
  ctx: Pick<RuntimeContext, 'log' | 'logger'>, record: SandboxRecord, containerId: string, host: HostVolume, devicePath: string,
  used: VolumeRecord[], setVolumes: (change: (volumes: VolumeRecord[]) => VolumeRecord[]) => Promise<unknown>,
): Promise<VolumeRecord> {
  const slot = freeSlot(record, used.map((v) => v.attachment.slot));
  const deviceId = `vol-${randomBytes(6).toString('hex')}`;
  const attachment = blockAttachment(deviceId, slot);
  const volume: VolumeRecord = { hostPath: host.resolved, devicePath, attachment, guestAddress: guestAddress(slot) };
  const isThis = (v: VolumeRecord): boolean => v.attachment.deviceId === deviceId;
  // Recorded first: a hot-plug killed from here on leaves a disk that delete and hot-unplug still know.
  await setVolumes((volumes) => [...volumes, { ...volume, attaching: true }]);
  try {
    await withSandboxHypervisor(record, (qemu) => qemu.attachBlockDevice(deviceId, host.resolved, host.isBlockDevice, slot), ctx.log);
    faultPoint('hot-plug:after-qmp');
    await withSandboxAgent(record, (agent) =>
      agent.addContainerDevice(containerId, { id: volume.guestAddress, type: slot.driver === 'virtio-blk' ? 'blk' : 'scsi', container_path: devicePath }),
    );
    faultPoint('hot-plug:after-agent');
    await setVolumes((volumes) => volumes.map((v) => (isThis(v) ? volume : v)));
  } catch (err) {
    await withSandboxHypervisor(record, (qemu) => qemu.detachBlockDevice(attachment), ctx.log).catch((e: unknown) => ctx.logger.warn(`rolling back ${deviceId}: ${messageOf(e)}`));
    await setVolumes((volumes) => volumes.filter((v) => !isThis(v)));
    if (record.vm.rootless && /Permission denied/.test(messageOf(err))) {
      throw new KataError('IO', `${messageOf(err)} (rootless = true: QEMU runs as ${rootlessUser}, which must be able to open ${host.resolved})`, { cause: err });
    }
    throw err;
  }
  return volume;
}

/** block-volume hot-unplug: the node in the container goes first, then QMP device_del (waiting for DEVICE_DELETED), then blockdev-del. */
export async function hotUnplugVolume(ctx: RuntimeContext, sandboxId: string, containerId: string, devicePath: string): Promise<void> {
  checkDevicePath(devicePath);
  await containerInSandbox(ctx, sandboxId, containerId);
  await withSandboxLock(ctx.store.root, sandboxId, async () => {
    const current = (await loadContainer(ctx.store, containerId)).state;
    const volume = (current.volumes ?? []).find((v) => v.devicePath === devicePath);
    if (!volume) throw new KataError('NOT_FOUND', `no volume is hot-plugged at ${devicePath} in container ${containerId}`);
    const record = await readSandboxRecord(ctx.store.root, sandboxId);
    await withSandboxAgent(record, (agent) => agent.removeContainerDevice(containerId, devicePath)).catch((err: unknown) => {
      // A hot-plug that was killed may have stopped before the agent made the node.
      if (!(volume.attaching && /not found/i.test(messageOf(err)))) throw err;
    });
    await withSandboxHypervisor(record, (qemu) => qemu.detachBlockDevice(volume.attachment), ctx.log);
    await ctx.store.update(containerId, (s) => ({ ...s, volumes: ((s as RuntimeContainerState).volumes ?? []).filter((v) => v.devicePath !== devicePath) }));
  });
}

/** The volumes of a sandbox, or of one of its containers. */
export async function listVolumes(ctx: RuntimeContext, sandboxId: string, containerId?: string): Promise<ListedVolume[]> {
  const record = await readSandboxRecord(ctx.store.root, validateId(sandboxId, 'sandbox id'));
  if (containerId !== undefined && !record.containers.includes(containerId)) throw new KataError('NOT_FOUND', `container ${containerId} is not in sandbox ${sandboxId}`);
  return (await sandboxVolumes(ctx, record)).filter((v) => containerId === undefined || v.containerId === containerId);
}

/** At delete: takes a container's disks out of QEMU (the container itself is going away). */
export async function detachContainerVolumes(record: SandboxRecord, volumes: VolumeRecord[], logger: Logger): Promise<void> {
  if (volumes.length === 0) return;
  await withSandboxHypervisor(record, async (qemu) => {
    for (const v of volumes) await qemu.detachBlockDevice(v.attachment).catch((err: unknown) => logger.warn(`unplugging ${v.hostPath}: ${messageOf(err)}`));
  });
}

import { KataError, messageOf } from '../util/errors.js';
import { bridgeId, firstBridgeSlot } from './qemu-args.js';
import { removeDevice } from './device-removal.js';
import type { QmpClient } from './qmp-client.js';

/** Where a hot-plugged disk sits: a slot on a pci-bridge (virtio-blk) or a SCSI target and LUN (virtio-scsi). */
export type BlockSlot =
  | { driver: 'virtio-blk'; bridge: number; slot: number }
  | { driver: 'virtio-scsi'; scsiId: number; lun: number };

export interface BlockAttachment {
  /** QEMU ids: the device (device_add) and the block node (blockdev-add). */
  deviceId: string;
  nodeName: string;
  slot: BlockSlot;
}

/** Slots 1..31 of each bridge take disks (slot 0 is left free, as Kata does). */
export const bridgeSlots = 31;
/** SCSI targets per virtio-scsi controller used for disks; one LUN each. */
export const scsiTargets = 256;

/**
 * How the guest finds the device (Kata 1.x Device.id): "bb/ss", the bridge's slot
 * on the root bus and the device's slot on the bridge, in hex; or "target:lun".
 */
export function guestAddress(slot: BlockSlot): string {
  if (slot.driver === 'virtio-scsi') return `${slot.scsiId}:${slot.lun}`;
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `${hex(firstBridgeSlot + slot.bridge)}/${hex(slot.slot)}`;
}

/** The QEMU names a disk with this id gets: known before it is plugged, so that it can be recorded first. */
export function blockAttachment(id: string, slot: BlockSlot): BlockAttachment {
  return { deviceId: id, nodeName: `drive-${id}`, slot };
}

/** The QMP arguments of blockdev-add and device_add for one disk. */
export function blockDeviceCommands(id: string, hostPath: string, isBlockDevice: boolean, slot: BlockSlot, readonly = false): { blockdev: Record<string, unknown>; device: Record<string, unknown> } {
  const { nodeName } = blockAttachment(id, slot);
  const blockdev = {
    driver: 'raw',
    'node-name': nodeName,
    'read-only': readonly,
    file: { driver: isBlockDevice ? 'host_device' : 'file', filename: hostPath, 'read-only': readonly },
    cache: { direct: false, 'no-flush': false },
  };
  const device =
    slot.driver === 'virtio-blk'
      ? { driver: 'virtio-blk-pci', id, drive: nodeName, bus: bridgeId(slot.bridge), addr: `0x${slot.slot.toString(16)}` }
      : { driver: 'scsi-hd', id, drive: nodeName, bus: 'scsi0.0', channel: 0, 'scsi-id': slot.scsiId, lun: slot.lun };
  return { blockdev, device };
}

/** blockdev-add, then device_add; when device_add fails the block node is deleted again. */
export async function attachBlockDevice(qmp: QmpClient, id: string, hostPath: string, isBlockDevice: boolean, slot: BlockSlot, readonly = false): Promise<BlockAttachment> {
  const { blockdev, device } = blockDeviceCommands(id, hostPath, isBlockDevice, slot, readonly);
  const nodeName = String(blockdev['node-name']);
  await qmp.execute('blockdev-add', blockdev);
  try {
    await qmp.execute('device_add', device);
  } catch (err) {
    await qmp.execute('blockdev-del', { 'node-name': nodeName }).catch(() => undefined);
    throw new KataError('QMP', `device_add ${String(device.driver)} for ${hostPath} failed: ${messageOf(err)}`, { cause: err });
  }
  return blockAttachment(id, slot);
}

/** device_del, wait for DEVICE_DELETED of that id (the guest let go of it), then blockdev-del. */
export async function detachBlockDevice(qmp: QmpClient, attachment: BlockAttachment, timeoutMs = 10_000): Promise<void> {
  await removeDevice(qmp, attachment.deviceId, 'device', timeoutMs).catch((err: unknown) => {
    // Already gone (an earlier unplug that stopped half way): only the block node is left.
    if (!/not found/i.test(messageOf(err))) throw err;
  });
  await qmp.execute('blockdev-del', { 'node-name': attachment.nodeName }).catch((err: unknown) => {
    if (!/not found|Cannot find|Failed to find/i.test(messageOf(err))) throw err;
  });
}

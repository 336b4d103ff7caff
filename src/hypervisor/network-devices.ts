import { KataError, messageOf } from '../util/errors.js';
import { removeDevice } from './device-removal.js';
import { bridgeId } from './qemu-args.js';
import type { QmpClient } from './qmp-client.js';

/** A network device plugged into a running VM: its tap (in QEMU's namespace), MAC and pci-bridge slot. */
export interface NicAttachment {
  tap: string;
  mac: string;
  bridge: number;
  slot: number;
  vhost: boolean;
}

/** QEMU ids of a hot-plugged NIC, from its tap (unique in the sandbox). */
export const nicIds = (tap: string): { netdev: string; device: string } => ({ netdev: `hpnet-${tap}`, device: `hpnic-${tap}` });

/** netdev_add (a tap QEMU opens by name), then device_add virtio-net-pci; when device_add fails the netdev goes again. */
export async function attachNic(qmp: QmpClient, nic: NicAttachment): Promise<void> {
  const ids = nicIds(nic.tap);
  await qmp.execute('netdev_add', { type: 'tap', id: ids.netdev, ifname: nic.tap, script: 'no', downscript: 'no', ...(nic.vhost ? { vhost: true } : {}) });
  try {
    await qmp.execute('device_add', { driver: 'virtio-net-pci', netdev: ids.netdev, id: ids.device, mac: nic.mac, bus: bridgeId(nic.bridge), addr: `0x${nic.slot.toString(16)}` });
  } catch (err) {
    await qmp.execute('netdev_del', { id: ids.netdev }).catch(() => undefined);
    throw new KataError('QMP', `device_add virtio-net-pci for ${nic.tap} failed: ${messageOf(err)}`, { cause: err });
  }
}

/** device_del (waiting for the guest to let go), then netdev_del; either already gone is fine. */
export async function detachNic(qmp: QmpClient, tap: string, timeoutMs = 10_000): Promise<void> {
  const ids = nicIds(tap);
  await removeDevice(qmp, ids.device, 'network device', timeoutMs).catch((err: unknown) => {
    if (!/not found/i.test(messageOf(err))) throw err;
  });
  await qmp.execute('netdev_del', { id: ids.netdev }).catch((err: unknown) => {
    if (!/not found|Cannot find|Failed to find/i.test(messageOf(err))) throw err;
  });
}

import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Device } from '../agent-protocol/messages.js';
import { failed, invalid } from './agent-error.js';
import { loadModule } from './kernel-modules.js';

/** A block device the guest kernel knows, by its kernel name and device number. */
export interface GuestBlockDevice {
  name: string;
  major: number;
  minor: number;
}

const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);

/**
 * Waits up to timeoutMs for a hot-plugged disk to appear, found by where it
 * was plugged (PCI path or SCSI address), never by a predicted name.
 */
export async function findBlockDevice(device: Device, timeoutMs: number): Promise<GuestBlockDevice> {
  // Drivers load on demand (the guest has no udev): a disk without its driver gets no block device.
  if (device.type === 'blk') await loadDriver('virtio_blk');
  const locate = device.type === 'blk' ? virtioBlkLocator(device.id) : device.type === 'scsi' ? await scsiLocator(device.id) : undefined;
  if (!locate) throw invalid(`unknown device type ${JSON.stringify(device.type)} (blk or scsi)`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const name = await locate();
    // The disk's name shows under its parent before its class entry (and `dev`) exists: wait for both.
    const dev = name ? await readFile(`/sys/class/block/${name}/dev`, 'utf8').catch(() => undefined) : undefined;
    if (name && dev) {
      const [major, minor] = dev.trim().split(':').map(Number);
      return { name, major: major ?? 0, minor: minor ?? 0 };
    }
    if (Date.now() > deadline) throw failed(`${device.type} device ${device.id} did not appear within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** "bb/ss": device slot ss on the bridge that sits in slot bb of the root bus. */
function virtioBlkLocator(pciPath: string): () => Promise<string | undefined> {
  const match = /^([0-9a-f]{2})\/([0-9a-f]{2})$/i.exec(pciPath);
  if (!match) throw invalid(`bad PCI path ${JSON.stringify(pciPath)} (expected bb/ss)`);
  const bridge = `/sys/bus/pci/devices/0000:00:${match[1]?.toLowerCase()}.0`;
  const slotSuffix = `:${match[2]?.toLowerCase()}.0`;
  return async () => {
    const child = (await list(bridge)).find((e) => /^0000:[0-9a-f]{2}:[0-9a-f]{2}\.0$/.test(e) && e.endsWith(slotSuffix));
    if (!child) return undefined;
    for (const virtio of (await list(path.join(bridge, child))).filter((e) => e.startsWith('virtio'))) {
      const [name] = await list(path.join(bridge, child, virtio, 'block'));
      if (name) return name;
    }
    return undefined;
  };
}

async function loadDriver(name: string): Promise<void> {
  await loadModule(name).catch((err: Error) => {
    throw failed(err.message);
  });
}

/** "target:lun" on the virtio-scsi host. The guest boots with scsi_mod.scan=none, so the agent asks for the scan. */
async function scsiLocator(address: string): Promise<() => Promise<string | undefined>> {
  const match = /^(\d+):(\d+)$/.exec(address);
  if (!match) throw invalid(`bad SCSI address ${JSON.stringify(address)} (expected target:lun)`);
  const [, target, lun] = match;
  await loadDriver('sd_mod');
  const hosts = await list('/sys/class/scsi_host');
  let lastScan = 0;
  return async () => {
    if (Date.now() - lastScan > 500) {
      lastScan = Date.now();
      for (const host of hosts) await writeFile(`/sys/class/scsi_host/${host}/scan`, `0 ${target} ${lun}`).catch(() => undefined);
    }
    const entry = (await list('/sys/bus/scsi/devices')).find((e) => e.endsWith(`:0:${target}:${lun}`));
    if (!entry) return undefined;
    const [name] = await list(`/sys/bus/scsi/devices/${entry}/block`);
    return name;
  };
}

import { virtioFsDevice, type VmSpec } from './qemu-args.js';
import { QmpClient } from './qmp-client.js';

/**
 * Hot-plugs the virtio-fs share device into a VM restored from a template
 * (which has none: sharedFsHotplugged): a chardev that connects to the VM's
 * virtiofsd, then vhost-user-fs-pci on it. The guest's agent mounts the tag
 * once its kernel has found the device.
 */
export async function plugVirtioFs(spec: Pick<VmSpec, 'layout'>): Promise<void> {
  const qmp = await QmpClient.connect(spec.layout.qmpSocket);
  try {
    const { chardev, device } = virtioFsDevice(spec);
    await qmp.execute('chardev-add', chardev);
    await qmp.execute('device_add', device);
  } finally {
    qmp.close();
  }
}

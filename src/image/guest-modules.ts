/**
 * Kernel modules in the guest image (the Debian kernel builds these as
 * modules). The image holds their closure; what loads when:
 * - boot initrd: the root device's and root file system's drivers (bootModules);
 * - /init: the drivers of the devices present, by modalias (PCI, then virtio);
 * - on demand, by the kernel (request_module: fs-9p, 9p-virtio, fs-virtiofs, fs-ext4,
 *   crypto-crc32c, net-pf-40) or by the agent (sd_mod, vsock_loopback).
 */
export const guestModules: readonly string[] = [
  'virtio_pci',
  'virtio_console', // agent.channel.0 (virtio-serial)
  'virtio-rng',
  'virtio_blk',
  'virtio_scsi',
  'virtio_balloon', // free page reporting: the guest hands back what it frees
  'sd_mod',
  '9pnet_virtio',
  '9p',
  'virtiofs', // shared_fs = "virtio-fs" (with fuse, its dependency)
  'overlay',
  'ext4', // file systems made on hot-plugged volumes (ext2/3/4)
  'erofs', // the root image
  'crc32c_generic', // ext4 and erofs ask the crypto API for crc32c
  'nfit', // the root image on an nvdimm
  'nd_pmem',
  'vsock',
  'vmw_vsock_virtio_transport',
  'vsock_loopback',
];

/** What the boot initrd may need to mount the root image, by root device kind and file system. */
export const bootModules = {
  pmem: ['nfit', 'nd_pmem'],
  virtioBlk: ['virtio_pci', 'virtio_blk'],
  fileSystems: ['erofs', 'ext4'],
  always: ['crc32c_generic'],
} as const;

/**
 * Kernel modules the guest loads at boot, in the order /init probes them
 * (modprobe pulls in dependencies). The Debian kernel builds these as modules.
 */
export const guestModules: readonly string[] = [
  'virtio_pci',
  'virtio_console', // agent.channel.0 (virtio-serial)
  'virtio-rng',
  'virtio_blk',
  'virtio_scsi',
  'sd_mod',
  '9pnet_virtio',
  '9p',
  'overlay',
  'ext4', // file systems made on hot-plugged volumes (ext2/3/4)
  'crc32c_generic', // ext4 asks the crypto API for crc32c at mount time
  'vsock',
  'vmw_vsock_virtio_transport',
  'vsock_loopback',
];

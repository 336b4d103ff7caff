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
  'vsock',
  'vmw_vsock_virtio_transport',
  'vsock_loopback',
];

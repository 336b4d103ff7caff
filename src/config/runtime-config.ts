/** The one typed view of configuration.toml. Nothing below cli reads TOML or the environment. */

export const machineTypes = ['pc', 'q35'] as const;
export const blockDeviceDrivers = ['virtio-blk', 'virtio-scsi'] as const;
export const sharedFileSystems = ['virtio-9p', 'virtio-fs'] as const;
/** virtiofsd's cache modes (Kata's virtio_fs_cache). */
export const virtioFsCacheModes = ['none', 'auto', 'always'] as const;
export const acceleratorChoices = ['auto', 'kvm', 'tcg'] as const;
export const internetworkingModels = ['default', 'macvtap', 'tcfilter', 'none'] as const;
export const rootfsTypes = ['erofs', 'ext4'] as const;

export type MachineType = (typeof machineTypes)[number];
export type BlockDeviceDriver = (typeof blockDeviceDrivers)[number];
export type SharedFileSystem = (typeof sharedFileSystems)[number];
export type VirtioFsCacheMode = (typeof virtioFsCacheModes)[number];
export type AcceleratorChoice = (typeof acceleratorChoices)[number];
export type InternetworkingModel = (typeof internetworkingModels)[number];
export type RootfsType = (typeof rootfsTypes)[number];

export interface HypervisorConfig {
  /** QEMU binary, absolute after loading. */
  path: string;
  kernel: string;
  /**
   * At least one is set. initrd alone: the guest runs from it. image alone: the
   * kernel mounts it as root (its drivers built in). Both: the initrd loads the
   * drivers (kernel modules) and mounts the image as root.
   */
  initrd: string;
  image: string;
  /** Kata's key: true attaches the image as a virtio-blk disk instead of an nvdimm. */
  disableImageNvdimm: boolean;
  /** File system of the image (a kata-ts key). */
  rootfsType: RootfsType;
  /** virtio-balloon with free page reporting (a kata-ts key). */
  freePageReporting: boolean;
  /** MiB of translated code QEMU keeps under TCG (0: QEMU's default, 1 GiB); a kata-ts key. */
  tcgTbSizeMiB: number;
  machineType: MachineType;
  kernelParams: string[];
  machineAccelerators: string;
  firmware: string;
  defaultVcpus: number;
  /** 0 means the host's CPU count. */
  defaultMaxVcpus: number;
  defaultMemoryMiB: number;
  /** Kata's memory_slots: how many DIMMs memory hot-plug may add (0: none). */
  memorySlots: number;
  defaultBridges: number;
  blockDeviceDriver: BlockDeviceDriver;
  sharedFs: SharedFileSystem;
  msize9p: number;
  /** shared_fs = "virtio-fs": the daemon (Debian's C virtiofsd), its cache mode and extra arguments (Kata's keys). */
  virtioFsDaemon: string;
  virtioFsCache: VirtioFsCacheMode;
  /** MiB of DAX window; QEMU 7.2's vhost-user-fs-pci has none, so only 0 is taken. */
  virtioFsCacheSizeMiB: number;
  virtioFsExtraArgs: string[];
  useVsock: boolean;
  /** QEMU's -sandbox (its seccomp filter), as Kata 2.x's seccompsandbox key; "" leaves QEMU unconfined. */
  seccompSandbox: string;
  /**
   * QEMU in a mount namespace of its own, where other sandboxes' VM dirs are
   * hidden and the share's mounts exist only there (none on the host).
   */
  privateMountNamespace: boolean;
  /**
   * Kata 2.x's key: QEMU runs as nobody, and 9p goes through QEMU's
   * virtfs-proxy-helper, which serves the share as root in QEMU's mount
   * namespace. Hot-plugged disks must then be ones nobody may open.
   */
  rootless: boolean;
  /** Kata's key: true gives network devices no vhost-net (used only under KVM with /dev/vhost-net). */
  disableVhostNet: boolean;
  enableDebug: boolean;
  entropySource: string;
  accelerator: AcceleratorChoice;
}

export interface ComponentConfig {
  /** '' means the implementation built into kata-ts. */
  path: string;
  enableDebug: boolean;
}

export interface AgentConfig {
  enableDebug: boolean;
  kernelModules: string[];
  dialTimeoutSeconds: number;
}

export interface RuntimeSection {
  enableDebug: boolean;
  internetworkingModel: InternetworkingModel;
  disableNewNetns: boolean;
  sandboxCgroupOnly: boolean;
  /** Kata's key: true leaves the spec's seccomp profile out of the guest (create warns that it does). */
  disableGuestSeccomp: boolean;
  experimental: string[];
}

/**
 * Kata 1.x's [factory]: with enable_template, sandbox VMs are restored from a
 * template VM (booted once, its agent up, saved) instead of booting.
 */
export interface FactoryConfig {
  enableTemplate: boolean;
  /** Where the template's memory and device state are kept. */
  templatePath: string;
}

/**
 * Why this configuration's VMs boot instead of being restored from a
 * template, if they do: a vsock device carries the VM's own CID, which a
 * restored guest would keep; QEMU as nobody (rootless) cannot map the
 * root-only template.
 */
export function templateUnusableBy(h: Pick<HypervisorConfig, 'useVsock' | 'rootless' | 'sharedFs' | 'machineType'>): string | undefined {
  if (h.useVsock) return 'use_vsock = true (a restored guest would keep the template\'s CID)';
  // A clone's virtio-fs device is hot-plugged on the root bus, which q35's PCIe root cannot do.
  if (h.sharedFs === 'virtio-fs' && h.machineType === 'q35') return 'shared_fs = "virtio-fs" with machine_type = "q35" (a clone\'s virtio-fs device is hot-plugged on the root bus, which q35 cannot do)';
  if (h.rootless) return 'rootless = true (QEMU as nobody cannot map the root-only template)';
  return undefined;
}

export type ConfigOrigin = 'flag' | 'env' | 'system' | 'bundled';

export interface RuntimeConfig {
  source: { path: string; origin: ConfigOrigin };
  hypervisor: HypervisorConfig;
  proxy: ComponentConfig;
  shim: ComponentConfig;
  agent: AgentConfig;
  runtime: RuntimeSection;
  factory: FactoryConfig;
  /** Non-fatal findings (unknown keys, ignored sections), for the caller to log. */
  warnings: string[];
}

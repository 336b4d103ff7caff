/** The one typed view of configuration.toml. Nothing below cli reads TOML or the environment. */

export const machineTypes = ['pc', 'q35'] as const;
export const blockDeviceDrivers = ['virtio-blk', 'virtio-scsi'] as const;
export const sharedFileSystems = ['virtio-9p'] as const;
export const acceleratorChoices = ['auto', 'kvm', 'tcg'] as const;
export const internetworkingModels = ['default', 'macvtap', 'tcfilter', 'none'] as const;

export type MachineType = (typeof machineTypes)[number];
export type BlockDeviceDriver = (typeof blockDeviceDrivers)[number];
export type SharedFileSystem = (typeof sharedFileSystems)[number];
export type AcceleratorChoice = (typeof acceleratorChoices)[number];
export type InternetworkingModel = (typeof internetworkingModels)[number];

export interface HypervisorConfig {
  /** QEMU binary, absolute after loading. */
  path: string;
  kernel: string;
  /** Exactly one of initrd and image is set; the other is ''. */
  initrd: string;
  image: string;
  machineType: MachineType;
  kernelParams: string[];
  machineAccelerators: string;
  firmware: string;
  defaultVcpus: number;
  /** 0 means the host's CPU count. */
  defaultMaxVcpus: number;
  defaultMemoryMiB: number;
  defaultBridges: number;
  blockDeviceDriver: BlockDeviceDriver;
  sharedFs: SharedFileSystem;
  msize9p: number;
  useVsock: boolean;
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
  experimental: string[];
}

export type ConfigOrigin = 'flag' | 'env' | 'system' | 'bundled';

export interface RuntimeConfig {
  source: { path: string; origin: ConfigOrigin };
  hypervisor: HypervisorConfig;
  proxy: ComponentConfig;
  shim: ComponentConfig;
  agent: AgentConfig;
  runtime: RuntimeSection;
  /** Non-fatal findings (unknown keys, ignored sections), for the caller to log. */
  warnings: string[];
}

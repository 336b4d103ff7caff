import os from 'node:os';
import { templateUnusableBy, type RuntimeConfig } from '../config/runtime-config.js';
import { kataTsVersion } from '../util/version.js';
import { carrierBinaryPath } from '../util/package-root.js';
import type { HostVerdict } from './check-host.js';
import type { HostFacts } from './host-facts.js';
import { describeGuestRoot } from './host-checks.js';

/** Version of the env output format, as kata-env's Meta.Version. */
const envFormatVersion = '1.0.23';

export type EnvValue = string | number | boolean | string[] | EnvSection;
export interface EnvSection {
  [key: string]: EnvValue;
}

/** The effective setup in kata-env's sections. */
export async function collectEnvironment(
  config: RuntimeConfig,
  verdict: HostVerdict,
  facts: HostFacts,
  qemuVersion: string | undefined,
  runtimePath: string,
): Promise<EnvSection> {
  const h = config.hypervisor;
  const cpu = await facts.cpuInfo();
  const distro = await facts.distro();
  const assets: EnvSection = {
    ...(h.image ? { Image: { Path: h.image, FileSystem: h.rootfsType, Device: h.disableImageNvdimm ? 'virtio-blk' : 'nvdimm' } } : {}),
    ...(h.initrd ? { Initrd: { Path: h.initrd, Role: h.image ? 'boot' : 'root' } } : {}),
  };
  return {
    Meta: { Version: envFormatVersion },
    Runtime: {
      Debug: config.runtime.enableDebug,
      DisableNewNetNs: config.runtime.disableNewNetns,
      SandboxCgroupOnly: config.runtime.sandboxCgroupOnly,
      InterNetworkModel: config.runtime.internetworkingModel,
      Experimental: config.runtime.experimental,
      Path: runtimePath,
      Version: { Semver: kataTsVersion, OCI: '1.0.2' },
      Config: { Path: config.source.path, Origin: config.source.origin },
    },
    Hypervisor: {
      MachineType: h.machineType,
      Version: qemuVersion ?? 'unknown',
      Path: h.path,
      Accelerator: h.accelerator,
      EffectiveAccelerator: verdict.decision.accelerator ?? 'none',
      AcceleratorReason: verdict.decision.reason,
      BlockDeviceDriver: h.blockDeviceDriver,
      EntropySource: h.entropySource,
      Msize9p: h.msize9p,
      Debug: h.enableDebug,
      UseVSock: h.useVsock,
      SharedFS: h.sharedFs,
      VirtioFSDaemon: h.sharedFs === 'virtio-fs' ? h.virtioFsDaemon : '',
      VirtioFSCache: h.virtioFsCache,
      VirtioFSExtraArgs: h.virtioFsExtraArgs,
      DefaultVCPUs: h.defaultVcpus,
      DefaultMaxVCPUs: h.defaultMaxVcpus,
      DefaultMemory: h.defaultMemoryMiB,
      MemorySlots: h.memorySlots,
      DefaultBridges: h.defaultBridges,
      Firmware: h.firmware,
      MachineAccelerators: h.machineAccelerators,
      GuestRoot: describeGuestRoot(h),
      TcgTbSizeMiB: h.tcgTbSizeMiB,
      FreePageReporting: h.freePageReporting,
      SeccompSandbox: h.seccompSandbox,
      PrivateMountNamespace: h.privateMountNamespace,
      Rootless: h.rootless,
    },
    Kernel: { Path: h.kernel, Parameters: h.kernelParams.join(' ') },
    ...assets,
    // No separate proxy or shim: the pod process and the carriers do their work ([proxy.kata] and [shim.kata] paths are ignored).
    Proxy: { Type: 'kataTsPod', Path: `${runtimePath} pod`, Channel: h.useVsock ? 'vsock' : 'yamux over virtio-serial', Debug: config.proxy.enableDebug },
    Shim: { Type: 'kataTsCarrier', Path: carrierBinaryPath, Debug: config.shim.enableDebug },
    Agent: {
      Type: 'kata',
      Debug: config.agent.enableDebug,
      KernelModules: config.agent.kernelModules,
      DialTimeout: config.agent.dialTimeoutSeconds,
    },
    // Kata 1.x's [factory]: VM templating (vm_cache_number is refused, so always 0 here).
    Factory: { EnableTemplate: config.factory.enableTemplate, TemplatePath: config.factory.templatePath, VMCacheNumber: 0, Template: templateInEffect(config) },
    Host: {
      Kernel: await facts.kernelRelease(),
      Architecture: os.arch() === 'x64' ? 'amd64' : os.arch(),
      VMContainerCapable: verdict.canRun,
      KVMUsable: verdict.kvmUsable,
      SupportVSocks: verdict.vsockUsable,
      Distro: { Name: distro.name, Version: distro.version },
      CPU: { Vendor: cpu.vendor, Model: cpu.model },
    },
  };
}

/** What [factory] does for this configuration's sandboxes, in words. */
function templateInEffect(config: RuntimeConfig): string {
  if (!config.factory.enableTemplate) return 'off: VMs boot';
  const unusable = templateUnusableBy(config.hypervisor);
  if (unusable) return `not used, VMs boot: ${unusable}`;
  return config.hypervisor.sharedFs === 'virtio-fs'
    ? 'VMs are restored from the template, each from its own copy of its RAM (the virtio-fs device and pod network devices are hot-plugged after)'
    : 'VMs are restored from the template (pod network devices are hot-plugged after)';
}

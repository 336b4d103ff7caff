import type { HypervisorConfig } from '../config/runtime-config.js';
import type { VmLayout } from './vm-layout.js';
import { virtiofsdSocket } from './virtiofsd.js';

/** Everything needed to write a sandbox VM's QEMU command line. */
export interface VmSpec {
  sandboxId: string;
  hypervisor: HypervisorConfig;
  accelerator: 'kvm' | 'tcg';
  layout: VmLayout;
  /** Guest CID when the agent is reached over vsock. */
  vsockCid?: number;
  /** Host CPU count, for default_maxvcpus = 0. */
  hostCpus: number;
  /** Host memory in MiB: room for memory hot-plug (maxmem), as Kata 1.x sizes it. */
  hostMemoryMiB: number;
  /** Size of the guest image file in bytes, when one is configured (an nvdimm is sized by it). */
  imageBytes?: number;
  agentDebug: boolean;
  /** The pod's network devices and the namespace QEMU runs in (tap devices belong to one). */
  network?: VmNetwork;
  /** Guest RAM in a template's memory file: written by the template VM, mapped copy-on-write by its clones. */
  template?: VmTemplateMemory;
}

export interface VmTemplateMemory {
  /** The template's memory file; for a virtio-fs clone, its own copy of it (copyTemplateMemory). */
  memoryFile: string;
  /** save: the template VM, whose RAM is the file itself; restore: a clone, started paused for the saved state. */
  role: 'save' | 'restore';
}

/**
 * virtio-fs in a VM that comes from a template: QEMU 7.2 cannot save a VM with
 * vhost-user-fs, so the template has no share device, its clones start without
 * one, and the device is hot-plugged once the clone runs (virtioFsDevice).
 */
export function sharedFsHotplugged(h: Pick<HypervisorConfig, 'sharedFs'>, fromTemplate: boolean): boolean {
  return h.sharedFs === 'virtio-fs' && fromTemplate;
}

/** Whether the VM needs its virtiofsd: virtio-fs, except in the template VM, which has no share device. */
export function needsVirtiofsd(spec: Pick<VmSpec, 'hypervisor' | 'template'>): boolean {
  return spec.hypervisor.sharedFs === 'virtio-fs' && spec.template?.role !== 'save';
}

/** Where a hot-plugged vhost-user-fs device sits: the root bus's last slot, which nothing else takes. */
export const virtioFsHotplugSlot = 0x1f;

/** QMP chardev-add and device_add arguments that hot-plug the virtio-fs share device (machine type pc). */
export function virtioFsDevice(spec: Pick<VmSpec, 'layout'>): { chardev: Record<string, unknown>; device: Record<string, unknown> } {
  return {
    chardev: { id: 'virtiofs', backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: virtiofsdSocket(spec.layout) } }, server: false } } },
    device: { driver: 'vhost-user-fs-pci', id: 'virtiofs0', chardev: 'virtiofs', tag: sharedFsMountTag, 'queue-size': 1024, bus: 'pci.0', addr: `0x${virtioFsHotplugSlot.toString(16)}` },
  };
}

/** A virtio-net device backed by a tap device of the namespace QEMU runs in. */
export interface VmNic {
  tap: string;
  mac: string;
  /** vhost-net: only under KVM, with /dev/vhost-net, unless disable_vhost_net. */
  vhost: boolean;
}

export interface VmNetwork {
  /** A network namespace to start QEMU in, by path. */
  netns?: string;
  /** Start QEMU in a new, empty network namespace. */
  fresh?: boolean;
  nics: VmNic[];
}

export const sharedFsMountTag = 'kataShared';

/** A value inside a QEMU option string (key=value,key=value): QEMU reads ",," as a literal comma. */
export function qemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}
export const agentChannelName = 'agent.channel.0';
export const agentVsockPort = 1024;

/**
 * Kata's default guest kernel parameters that suit our guest, and ours:
 * acpi=noirq routes PCI interrupts without evaluating ACPI link objects
 * (about 150 ms each under TCG; virtio uses MSI-X anyway), init_on_alloc=0
 * skips zeroing every page the guest allocates, memhp_default_state=online
 * brings a hot-plugged DIMM online as it arrives (the agent's OnlineCPUMem
 * onlines what is still offline).
 */
const kataKernelParams = [
  'tsc=reliable', 'no_timer_check', 'rcupdate.rcu_expedited=1', 'i8042.direct=1', 'i8042.dumbkbd=1',
  'i8042.nopnp=1', 'i8042.noaux=1', 'noreplace-smp', 'reboot=k', 'panic=1', 'iommu=off',
  'cryptomgr.notests', 'net.ifnames=0', 'acpi=noirq', 'init_on_alloc=0', 'memhp_default_state=online',
];

/** How the guest image reaches the guest, when there is one. */
export function imageDevice(h: HypervisorConfig): 'nvdimm' | 'virtio-blk' | undefined {
  if (!h.image) return undefined;
  return h.disableImageNvdimm ? 'virtio-blk' : 'nvdimm';
}

/**
 * The guest's root device: the only pmem or virtio disk present at boot. The
 * image file starts with a 2 MiB header: the nvdimm's PFN info block makes
 * /dev/pmem0 start after it (with DAX); on a disk, its MBR names partition 1.
 */
export function rootDevice(h: HypervisorConfig): string | undefined {
  const device = imageDevice(h);
  return device === undefined ? undefined : device === 'nvdimm' ? '/dev/pmem0' : '/dev/vda1';
}

export function kernelCommandLine(spec: VmSpec): string {
  const h = spec.hypervisor;
  const params = [...kataKernelParams, 'console=ttyS0'];
  if (!h.enableDebug) params.push('quiet');
  // The kernel's own root= mounts the image when it has the drivers built in; the boot
  // initrd reads the same parameters when they are modules.
  const root = rootDevice(h);
  if (root) params.push(`root=${root}`, `rootfstype=${h.rootfsType}`, 'ro', 'init=/init');
  // DAX: the guest maps the image's pages (the host's page cache) instead of copying them.
  if (imageDevice(h) === 'nvdimm') params.push('rootflags=dax=always');
  if (h.blockDeviceDriver === 'virtio-scsi') params.push('scsi_mod.scan=none');
  params.push(`agent.use_vsock=${h.useVsock}`);
  if (spec.agentDebug) params.push('agent.log=debug');
  // The user's parameters come last so that they override ours.
  params.push(...h.kernelParams);
  return params.join(' ');
}

/**
 * -no-reboot: a guest that panics or reboots ends the VM, so a failed boot is
 * seen at once. -sandbox: QEMU's own seccomp filter (seccompsandbox).
 */
export function identityArgs(spec: VmSpec): string[] {
  const sandbox = spec.hypervisor.seccompSandbox ? ['-sandbox', spec.hypervisor.seccompSandbox] : [];
  return ['-name', `sandbox-${spec.sandboxId}`, '-nodefaults', '-nographic', '-no-user-config', '-no-reboot', ...sandbox, ...(spec.hypervisor.rootless ? ['-runas', rootlessUser] : []), '-daemonize', '-pidfile', spec.layout.pidFile];
}

/** `-machine`, `-accel` and `-cpu` as a sandbox VM gets them; the KVM probe boots with the same ones. */
export function machineOption(h: HypervisorConfig): string {
  const options: string[] = [h.machineType];
  if (imageDevice(h) === 'nvdimm') options.push('nvdimm=on');
  if (h.machineAccelerators) options.push(...h.machineAccelerators.split(',').filter(Boolean));
  return options.join(',');
}

/**
 * Under TCG, one translation thread for all vCPUs (thread=single): with
 * QEMU 7.2's multi-threaded TCG, a vCPU hot-plugged while the translation
 * buffer's regions are all taken aborts QEMU (tcg_region_initial_alloc's
 * assertion, seen in a core dump here after 2 of 8 plugs). Translated code
 * lives in a buffer of tb-size MiB (QEMU's default is 1 GiB, touched as it fills).
 */
export function accelOption(h: HypervisorConfig, accelerator: 'kvm' | 'tcg'): string {
  if (accelerator === 'kvm') return accelerator;
  return ['tcg', 'thread=single', ...(h.tcgTbSizeMiB > 0 ? [`tb-size=${h.tcgTbSizeMiB}`] : [])].join(',');
}

export function cpuModel(accelerator: 'kvm' | 'tcg'): string {
  return accelerator === 'kvm' ? 'host' : 'max';
}

export function machineArgs(spec: VmSpec): string[] {
  return ['-machine', machineOption(spec.hypervisor), '-accel', accelOption(spec.hypervisor, spec.accelerator)];
}

/** The most vCPUs the VM can have: default_maxvcpus, or the host's count when that is 0. */
export function maxVcpus(spec: Pick<VmSpec, 'hypervisor' | 'hostCpus'>): number {
  const h = spec.hypervisor;
  return Math.max(h.defaultVcpus, h.defaultMaxVcpus || spec.hostCpus);
}

export function cpuArgs(spec: VmSpec): string[] {
  const h = spec.hypervisor;
  const max = maxVcpus(spec);
  return [
    '-cpu', cpuModel(spec.accelerator),
    '-smp', `${h.defaultVcpus},cores=1,threads=1,sockets=${max},maxcpus=${max}`,
  ];
}

const mib = 1024 * 1024;

/** The memory hot-plug can add: up to the host's memory, in memory_slots DIMMs (Kata 1.x). */
export function hotplugMemoryMiB(spec: Pick<VmSpec, 'hypervisor' | 'hostMemoryMiB'>): number {
  return spec.hypervisor.memorySlots > 0 ? spec.hostMemoryMiB : 0;
}

/** An nvdimm needs a memory slot and room above the RAM; so does each hot-plugged DIMM. */
export function memoryArgs(spec: VmSpec): string[] {
  const ram = spec.hypervisor.defaultMemoryMiB;
  const nvdimm = imageDevice(spec.hypervisor) === 'nvdimm' ? nvdimmMiB(spec) : 0;
  const slots = spec.hypervisor.memorySlots + (nvdimm > 0 ? 1 : 0);
  if (slots === 0) return ['-m', `${ram}M`];
  return ['-m', `${ram}M,slots=${slots},maxmem=${ram + nvdimm + hotplugMemoryMiB(spec)}M`];
}

/** The nvdimm's size: the image file's, rounded up to 2 MiB as QEMU's nvdimm wants. */
function nvdimmMiB(spec: VmSpec): number {
  if (spec.imageBytes === undefined) throw new Error('an nvdimm image needs its size');
  return Math.ceil(spec.imageBytes / (2 * mib)) * 2;
}

export function firmwareArgs(spec: Pick<VmSpec, 'hypervisor'>): string[] {
  return spec.hypervisor.firmware ? ['-bios', spec.hypervisor.firmware] : [];
}

export function qmpArgs(spec: VmSpec): string[] {
  return ['-qmp', `unix:${qemuOptValue(spec.layout.qmpSocket)},server=on,wait=off`];
}

/** The guest's ttyS0 goes to console.log in the VM dir: the first place to look when a boot fails. */
export function consoleArgs(spec: VmSpec): string[] {
  return ['-chardev', `file,id=console,path=${qemuOptValue(spec.layout.consoleLog)}`, '-serial', 'chardev:console'];
}

export function agentChannelArgs(spec: VmSpec): string[] {
  if (spec.hypervisor.useVsock) {
    if (spec.vsockCid === undefined) throw new Error('use_vsock needs a guest CID');
    return ['-device', `vhost-vsock-pci,id=vsock0,guest-cid=${spec.vsockCid}`];
  }
  return [
    '-device', 'virtio-serial-pci,id=serial0',
    '-chardev', `socket,id=agent-channel,path=${qemuOptValue(spec.layout.agentChannelSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=serial0.0,chardev=agent-channel,name=${agentChannelName}`,
  ];
}

/** QEMU's user under rootless = true; it opens everything it needs before it drops root. */
export const rootlessUser = 'nobody';

/**
 * The share: virtio-9p served by QEMU itself, or virtio-fs, where virtiofsd
 * serves it over vhost-user (its socket in the VM dir). vhost-user needs the
 * guest's RAM in memory virtiofsd can map: a memfd shared with it.
 */
export function sharedFsArgs(spec: VmSpec): string[] {
  if (sharedFsHotplugged(spec.hypervisor, spec.template !== undefined)) return [];
  if (spec.hypervisor.sharedFs === 'virtio-fs') {
    return [
      '-chardev', `socket,id=virtiofs,path=${qemuOptValue(virtiofsdSocket(spec.layout))}`,
      '-device', `vhost-user-fs-pci,chardev=virtiofs,tag=${sharedFsMountTag},queue-size=1024`,
      '-machine', 'memory-backend=pc.ram', '-object', `memory-backend-memfd,id=pc.ram,size=${spec.hypervisor.defaultMemoryMiB}M,share=on`,
    ];
  }
  // Rootless: QEMU cannot read the share itself; the proxy helper on fd 3 does (native/mount-ns.c starts it).
  const fsdev = spec.hypervisor.rootless
    ? `proxy,id=fsdev-${sharedFsMountTag},sock_fd=3`
    : `local,id=fsdev-${sharedFsMountTag},path=${qemuOptValue(spec.layout.sharedDir)},security_model=none,multidevs=remap`;
  return [
    '-fsdev', fsdev,
    '-device', `virtio-9p-pci,fsdev=fsdev-${sharedFsMountTag},mount_tag=${sharedFsMountTag}`,
  ];
}

/** The root bus of the machine type: bridges hang off it. */
export function rootBus(spec: VmSpec): string {
  return spec.hypervisor.machineType === 'q35' ? 'pcie.0' : 'pci.0';
}

/** First slot on the root bus used by bridges; they get fixed slots so guest PCI paths are predictable. */
export const firstBridgeSlot = 2;

export function bridgeId(index: number): string {
  return `pci-bridge-${index}`;
}

export function bridgeArgs(spec: VmSpec): string[] {
  const args: string[] = [];
  for (let i = 0; i < spec.hypervisor.defaultBridges; i++) {
    const slot = (firstBridgeSlot + i).toString(16);
    // shpc=on makes SeaBIOS reserve I/O and memory windows behind the bridge; without them a
    // hot-plugged device gets no BARs (the guest still hot-plugs through ACPI).
    args.push('-device', `pci-bridge,bus=${rootBus(spec)},id=${bridgeId(i)},chassis_nr=${i + 1},shpc=on,addr=${slot}`);
  }
  return args;
}

export function scsiArgs(spec: VmSpec): string[] {
  return spec.hypervisor.blockDeviceDriver === 'virtio-scsi' ? ['-device', 'virtio-scsi-pci,id=scsi0'] : [];
}

/** virtio-balloon with free page reporting: the guest tells QEMU which pages it freed, and QEMU drops them. */
export function balloonArgs(spec: VmSpec): string[] {
  return spec.hypervisor.freePageReporting ? ['-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on'] : [];
}

export function rngArgs(spec: VmSpec): string[] {
  return ['-object', `rng-random,id=rng0,filename=${qemuOptValue(spec.hypervisor.entropySource)}`, '-device', 'virtio-rng-pci,rng=rng0'];
}

export function bootArgs(spec: VmSpec): string[] {
  const h = spec.hypervisor;
  const args = ['-kernel', h.kernel, '-append', kernelCommandLine(spec)];
  if (h.initrd) args.push('-initrd', h.initrd);
  return args;
}

/**
 * The read-only guest image. As an nvdimm, QEMU maps the file shared: the guest
 * reads it without copying through a disk, and every VM's mapping shares the host
 * page cache. As a virtio-blk disk, it is read like any disk.
 */
export function imageArgs(spec: VmSpec): string[] {
  const h = spec.hypervisor;
  switch (imageDevice(h)) {
    case undefined:
      return [];
    case 'nvdimm':
      return [
        '-object', `memory-backend-file,id=image-mem,mem-path=${qemuOptValue(h.image)},size=${nvdimmMiB(spec)}M,share=on,readonly=on`,
        '-device', 'nvdimm,id=image,memdev=image-mem,unarmed=on',
      ];
    case 'virtio-blk':
      return ['-drive', `file=${qemuOptValue(h.image)},if=none,id=image,format=raw,readonly=on`, '-device', 'virtio-blk-pci,drive=image'];
  }
}

/** Where network device `index` sits: bridge slots 1.., before any hot-plugged disk takes one. */
export function nicSlot(index: number): { bridge: number; slot: number } {
  return { bridge: Math.floor(index / 31), slot: 1 + (index % 31) };
}

/** One tap-backed virtio-net device per pod interface, with the caller's MAC. */
export function networkArgs(spec: VmSpec): string[] {
  const nics = spec.network?.nics ?? [];
  if (nics.length > 31 * spec.hypervisor.defaultBridges) throw new Error(`${nics.length} network devices do not fit on ${spec.hypervisor.defaultBridges} pci-bridges`);
  return nics.flatMap((nic, index) => {
    const { bridge, slot } = nicSlot(index);
    return [
      '-netdev', `tap,id=net${index},ifname=${nic.tap},script=no,downscript=no${nic.vhost ? ',vhost=on' : ''}`,
      '-device', `virtio-net-pci,netdev=net${index},id=nic${index},mac=${nic.mac},bus=${bridgeId(bridge)},addr=0x${slot.toString(16)}`,
    ];
  });
}

/**
 * A template VM's RAM is its memory file (share=on): QEMU saves the device
 * state alone (x-ignore-shared). A clone maps the file privately (share=off),
 * so every clone reads the template's pages from one page cache and copies
 * only what it writes, and waits for the device state (-incoming defer).
 * A virtio-fs clone maps its own copy of the file shared instead: virtiofsd
 * must see the RAM the guest writes.
 */
export function templateArgs(spec: VmSpec): string[] {
  if (!spec.template) return [];
  const share = spec.template.role === 'save' || spec.hypervisor.sharedFs === 'virtio-fs' ? 'on' : 'off';
  return [
    '-machine', 'memory-backend=pc.ram',
    '-object', `memory-backend-file,id=pc.ram,size=${spec.hypervisor.defaultMemoryMiB}M,mem-path=${qemuOptValue(spec.template.memoryFile)},share=${share}`,
    ...(spec.template.role === 'restore' ? ['-incoming', 'defer'] : []),
  ];
}

/** The composable pieces, in command-line order. */
export const qemuArgPieces: ReadonlyArray<(spec: VmSpec) => string[]> = [
  identityArgs, machineArgs, cpuArgs, memoryArgs, firmwareArgs, qmpArgs, consoleArgs,
  bridgeArgs, networkArgs, agentChannelArgs, sharedFsArgs, scsiArgs, rngArgs, balloonArgs, imageArgs, bootArgs, templateArgs,
];

export function qemuArgs(spec: VmSpec): string[] {
  return qemuArgPieces.flatMap((piece) => piece(spec));
}

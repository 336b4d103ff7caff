import type { RuntimeConfig } from '../config/runtime-config.js';
import type { AcceleratorDecision } from './accelerator.js';
import type { CpuInfo, HostFacts } from './host-facts.js';
import type { QemuProbes } from './qemu-probe.js';

/**
 * What a failing check costs: `always` stops kata-ts entirely, `kvm` only
 * rules out KVM (TCG remains), `vsock` stops it when use_vsock = true,
 * `optional` costs nothing.
 */
export type CheckNeed = 'always' | 'kvm' | 'vsock' | 'optional';

export interface CheckOutcome {
  ok: boolean;
  detail: string;
  /** How to fix it, shown on failure. */
  fix?: string;
}

export interface CheckContext {
  config: RuntimeConfig;
  facts: HostFacts;
  qemu: QemuProbes;
  /** Memoized facts shared between checks. */
  cpu(): Promise<CpuInfo>;
  devices(): Promise<Set<string> | undefined>;
  /** The accelerator decision create uses, with its KVM evidence. */
  decision(): Promise<AcceleratorDecision>;
}

export interface HostCheck {
  id: string;
  title: string;
  need(config: RuntimeConfig): CheckNeed;
  run(ctx: CheckContext): Promise<CheckOutcome>;
}

const pass = (detail: string): CheckOutcome => ({ ok: true, detail });
const fail = (detail: string, fix: string): CheckOutcome => ({ ok: false, detail, fix });

/** Kernel modules checked by name; kvm_pvm provides KVM without hardware virtualization. */
function moduleCheck(name: string, need: (c: RuntimeConfig) => CheckNeed, purpose: string): HostCheck {
  return {
    id: `module-${name}`,
    title: `kernel module ${name} (${purpose})`,
    need,
    async run(ctx) {
      return (await ctx.facts.moduleLoaded(name)) ? pass('loaded') : fail('not loaded', `modprobe ${name}`);
    },
  };
}

/** QEMU devices the configuration will put on the command line. */
export function requiredDevices(config: RuntimeConfig): string[] {
  const h = config.hypervisor;
  const devices = [h.sharedFs === 'virtio-fs' ? 'vhost-user-fs-pci' : 'virtio-9p-pci', 'virtio-rng-pci', 'pci-bridge', 'virtio-blk-pci'];
  devices.push(...(h.useVsock ? ['vhost-vsock-pci'] : ['virtio-serial-pci', 'virtserialport']));
  if (h.blockDeviceDriver === 'virtio-scsi') devices.push('virtio-scsi-pci', 'scsi-hd');
  return devices;
}

const minimumQemu = [4, 2];

/** Which guest root is in use, in words: check and env both say it. */
export function describeGuestRoot(h: RuntimeConfig['hypervisor']): string {
  if (!h.image) return `initrd ${h.initrd} (the whole guest in RAM)`;
  const device = h.disableImageNvdimm ? 'virtio-blk disk' : 'nvdimm with DAX';
  return `image ${h.image} (${h.rootfsType}, ${device})${h.initrd ? `, mounted by the boot initrd ${h.initrd}` : ''}`;
}

export const hostChecks: readonly HostCheck[] = [
  {
    id: 'cpu-vendor',
    title: 'CPU vendor',
    need: () => 'kvm',
    async run(ctx) {
      const { vendor } = await ctx.cpu();
      return vendor === 'GenuineIntel' || vendor === 'AuthenticAMD'
        ? pass(vendor)
        : fail(vendor || 'unknown', 'KVM needs an Intel or AMD x86_64 CPU');
    },
  },
  {
    id: 'cpu-virtualization',
    title: 'CPU virtualization (vmx or svm)',
    need: () => 'kvm',
    async run(ctx) {
      const { flags } = await ctx.cpu();
      const found = ['vmx', 'svm'].filter((f) => flags.has(f));
      if (found.length > 0) return pass(found.join(' '));
      if (await ctx.facts.moduleLoaded('kvm_pvm')) return pass('no vmx or svm, but kvm_pvm provides KVM in software');
      return fail(
        'the CPU shows neither vmx nor svm',
        'enable VT-x / AMD-V in the firmware, or nested virtualization on the outer hypervisor',
      );
    },
  },
  {
    id: 'cpu-flags',
    title: 'CPU flags lm and sse4_1',
    need: () => 'kvm',
    async run(ctx) {
      const { flags } = await ctx.cpu();
      const missing = ['lm', 'sse4_1'].filter((f) => !flags.has(f));
      return missing.length === 0
        ? pass('lm sse4_1')
        : fail(`missing ${missing.join(' ')}`, 'KVM guests need a 64-bit CPU with SSE4.1');
    },
  },
  moduleCheck('kvm', () => 'kvm', 'KVM'),
  {
    id: 'module-kvm-vendor',
    title: 'kernel module kvm_intel or kvm_amd (KVM)',
    need: () => 'kvm',
    async run(ctx) {
      for (const name of ['kvm_intel', 'kvm_amd', 'kvm_pvm']) {
        if (await ctx.facts.moduleLoaded(name)) return pass(`${name} loaded`);
      }
      const { vendor } = await ctx.cpu();
      return fail('none loaded', `modprobe ${vendor === 'AuthenticAMD' ? 'kvm_amd' : 'kvm_intel'}`);
    },
  },
  {
    id: 'dev-kvm',
    title: '/dev/kvm',
    need: () => 'kvm',
    async run(ctx) {
      const node = await ctx.facts.deviceNode('dev/kvm');
      switch (node) {
        case 'char':
          return pass('character device, readable and writable');
        case 'missing':
          return fail('does not exist', 'load the kvm modules (modprobe kvm_intel or kvm_amd)');
        case 'not-char':
          return fail('is not a character device', 'recreate it: mknod /dev/kvm c 10 232');
        case 'no-access':
          return fail('cannot be opened read-write', 'run as root or join the group that owns /dev/kvm');
      }
    },
  },
  {
    id: 'kvm-usable',
    title: 'KVM boots the guest kernel to user space (QEMU probe)',
    need: () => 'kvm',
    async run(ctx) {
      const { kvm } = await ctx.decision();
      if (kvm.usable) return pass(kvm.detail);
      if (kvm.source === 'not-probed') return fail(kvm.detail, 'see the checks above');
      return fail(
        `/dev/kvm opens, but ${kvm.detail}`,
        'KVM does not work on this host (nested or software virtualization?); accelerator = "auto" uses TCG instead',
      );
    },
  },
  {
    id: 'vhost-vsock',
    title: 'vhost-vsock (/dev/vhost-vsock)',
    need: (config) => (config.hypervisor.useVsock ? 'vsock' : 'optional'),
    async run(ctx) {
      const loaded = await ctx.facts.moduleLoaded('vhost_vsock');
      const node = await ctx.facts.deviceNode('dev/vhost-vsock');
      if (node === 'char') return pass(loaded ? 'module vhost_vsock loaded, device usable' : 'device usable');
      return fail(
        `${loaded ? 'module loaded but ' : 'module vhost_vsock not loaded, '}/dev/vhost-vsock ${node === 'missing' ? 'missing' : 'unusable'}`,
        'modprobe vhost_vsock, or set use_vsock = false to use the virtio-serial proxy',
      );
    },
  },
  {
    id: 'qemu-binary',
    title: 'QEMU binary',
    need: () => 'always',
    async run(ctx) {
      const qemuPath = ctx.config.hypervisor.path;
      return (await ctx.facts.executable(qemuPath))
        ? pass(qemuPath)
        : fail(`${qemuPath} is missing or not executable`, 'apt-get install qemu-system-x86, or set hypervisor.qemu.path');
    },
  },
  {
    id: 'qemu-version',
    title: `QEMU version (${minimumQemu.join('.')} or newer)`,
    need: () => 'always',
    async run(ctx) {
      const version = await ctx.qemu.version(ctx.config.hypervisor.path);
      if (!version) return fail('unknown: `--version` did not answer', 'check hypervisor.qemu.path names a QEMU system emulator');
      const [major = 0, minor = 0] = version.split('.').map(Number);
      const [wantMajor = 0, wantMinor = 0] = minimumQemu;
      const recent = major > wantMajor || (major === wantMajor && minor >= wantMinor);
      return recent ? pass(version) : fail(`${version} is too old`, 'install a newer qemu-system-x86');
    },
  },
  {
    id: 'qemu-devices',
    title: 'QEMU devices for this configuration',
    need: () => 'always',
    async run(ctx) {
      const available = await ctx.devices();
      const wanted = requiredDevices(ctx.config);
      if (!available) return fail('`-device help` did not answer', 'check hypervisor.qemu.path');
      const missing = wanted.filter((d) => !available.has(d));
      return missing.length === 0
        ? pass(wanted.join(' '))
        : fail(`missing ${missing.join(' ')}`, "install Debian's qemu-system-x86, which has every device kata-ts uses");
    },
  },
  {
    id: 'tcg-usable',
    title: 'QEMU runs a guest under TCG (software emulation)',
    need: () => 'always',
    async run(ctx) {
      const probe = await ctx.qemu.tcgFirmware(ctx.config.hypervisor.path, 10_000);
      return probe.usable ? pass(probe.detail) : fail(probe.detail, 'check that QEMU and its firmware (seabios) are installed');
    },
  },
  {
    id: 'guest-kernel',
    title: 'guest kernel',
    need: () => 'always',
    async run(ctx) {
      const kernel = ctx.config.hypervisor.kernel;
      return (await ctx.facts.readable(kernel))
        ? pass(kernel)
        : fail(`${kernel} is missing or unreadable`, 'run `kata-ts image build`, or fix hypervisor.qemu.kernel');
    },
  },
  {
    id: 'guest-rootfs',
    title: 'guest root: image and/or initrd',
    need: () => 'always',
    async run(ctx) {
      const h = ctx.config.hypervisor;
      const files: Array<['image' | 'initrd', string]> = [];
      if (h.image) files.push(['image', h.image]);
      if (h.initrd) files.push(['initrd', h.initrd]);
      for (const [key, file] of files) {
        if (!(await ctx.facts.readable(file))) {
          return fail(`${key} ${file} is missing or unreadable`, `run \`kata-ts image build\`, or fix hypervisor.qemu.${key}`);
        }
      }
      return pass(describeGuestRoot(h));
    },
  },
  {
    id: 'virtiofsd',
    title: 'virtio-fs daemon',
    need: (config) => (config.hypervisor.sharedFs === 'virtio-fs' ? 'always' : 'optional'),
    async run(ctx) {
      const h = ctx.config.hypervisor;
      if (h.sharedFs !== 'virtio-fs') return pass(`not used: shared_fs = "${h.sharedFs}"`);
      return (await ctx.facts.executable(h.virtioFsDaemon))
        ? pass(h.virtioFsDaemon)
        : fail(`${h.virtioFsDaemon} is missing or not executable`, "install Debian's qemu-system-x86 (it ships /usr/lib/qemu/virtiofsd), or fix hypervisor.qemu.virtio_fs_daemon");
    },
  },
  {
    id: 'firmware',
    title: 'firmware',
    need: (config) => (config.hypervisor.firmware ? 'always' : 'optional'),
    async run(ctx) {
      const firmware = ctx.config.hypervisor.firmware;
      if (!firmware) return pass("not set: QEMU's default SeaBIOS");
      return (await ctx.facts.readable(firmware))
        ? pass(firmware)
        : fail(`${firmware} is missing or unreadable`, 'fix hypervisor.qemu.firmware or leave it empty');
    },
  },
];

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { judgeProbe, type KvmEvidence, type KvmProbeInput, type ProbeOutcome } from '../../src/host/kvm-boot-probe.js';
import { probeMarker } from '../../src/host/probe-initrd.js';
import type { FirmwareProbe, QemuProbes } from '../../src/host/qemu-probe.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
export const hostFixture = (name: string): string => path.join(fixturesDir, 'hosts', name);
export const kataTsBin = path.join(repoRoot, 'bin', 'kata-ts');

/** A temp dir removed by the returned cleanup. */
export async function tempDir(prefix = 'kata-ts-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A minimal valid configuration whose guest assets are the fixture files. */
export function configText(extraQemu = '', extra = ''): string {
  return `[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "${path.join(fixturesDir, 'guest', 'vmlinuz')}"
initrd = "${path.join(fixturesDir, 'guest', 'initrd.img')}"
${extraQemu}
${extra}
`;
}

/**
 * The bundled configuration.toml with its guest paths made absolute, so that a
 * copy works from any directory; `edits` replace whole `key = value` lines.
 */
export async function bundledConfigText(edits: Record<string, string> = {}): Promise<string> {
  let text = (await readFile(path.join(repoRoot, 'configuration.toml'), 'utf8')).replace(/"guest\//g, `"${repoRoot}/guest/`);
  for (const [key, value] of Object.entries(edits)) {
    const line = new RegExp(`^${key} = .*$`, 'm');
    if (!line.test(text)) throw new Error(`configuration.toml has no ${key} line`);
    text = text.replace(line, `${key} = ${value}`);
  }
  return text;
}

/**
 * A copy of a configuration file in `dir` with [factory] set as given and its
 * templates under `dir` (guest paths made absolute, as the copy moves), for
 * benchmarks that compare booted and restored VMs.
 */
export async function configWithTemplates(configPath: string, dir: string, name: string, enableTemplate: boolean): Promise<string> {
  const keys = `enable_template = ${enableTemplate}\ntemplate_path = "${path.join(dir, 'templates')}"`;
  const text = (await readFile(configPath, 'utf8'))
    .replace(/"guest\//g, `"${path.join(path.dirname(configPath), 'guest')}/`)
    .replace(/^\s*(enable_template|template_path)\s*=.*$/gm, '');
  const header = /^\[factory\]\s*$/m;
  const file = path.join(dir, name);
  await writeFile(file, header.test(text) ? text.replace(header, `[factory]\n${keys}`) : `${text}\n[factory]\n${keys}\n`);
  return file;
}

/** The Debian kernel (uncompressed) with the boot initrd that loads its modules and mounts the image. */
export const debianKernelEdits = {
  kernel: `"${path.join(repoRoot, 'guest', 'vmlinux-debian')}"`,
  initrd: `"${path.join(repoRoot, 'guest', 'kata-ts-boot.img')}"`,
};

/** The guest files of the full-initrd setup (initrd = ..., no image): the other way to boot. */
export const fullInitrdEdits = {
  kernel: `"${path.join(repoRoot, 'guest', 'vmlinuz')}"`,
  initrd: `"${path.join(repoRoot, 'guest', 'kata-ts-initrd.img')}"`,
  image: '""',
};

export async function writeConfig(dir: string, text: string, name = 'configuration.toml'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** Scripted answers for QEMU questions, so host checks run without QEMU. */
export function fakeQemu(options: { version?: string; devices?: string[] } = {}): QemuProbes {
  const devices = options.devices ?? [
    'virtio-9p-pci', 'virtio-rng-pci', 'pci-bridge', 'virtio-blk-pci', 'vhost-vsock-pci',
    'virtio-serial-pci', 'virtserialport', 'virtio-scsi-pci', 'scsi-hd',
  ];
  return {
    async version() {
      return options.version ?? '7.2.0';
    },
    async devices() {
      return new Set(devices);
    },
    async tcgFirmware(): Promise<FirmwareProbe> {
      return { usable: true, elapsedMs: 5, detail: 'guest firmware ran to completion in 5 ms' };
    },
  };
}

const seabios = 'SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM...\n';
const kernelStart = 'Decompressing Linux... Parsing ELF... done.\nBooting the kernel.\n[    0.000000] Linux version 6.1.0-56-amd64\n';

/**
 * What QEMU did under accel=kvm on the host kinds seen so far, as probe outcomes:
 * the real judge turns them into evidence.
 */
export const kvmHostOutcomes: Record<'works' | 'kernel-hangs' | 'qemu-aborts' | 'kernel-unloadable' | 'slow-but-booting', ProbeOutcome> = {
  works: {
    end: { kind: 'exit', code: 0, signal: null },
    output: `${seabios}${kernelStart}[    0.412000] Run /init as init process\n\n${probeMarker}\n`,
    stderr: '', elapsedMs: 640, quietMs: 0,
  },
  // Host kernel v595: SeaBIOS finishes under accel=kvm (1.9 s), then Linux hangs silently.
  'kernel-hangs': {
    end: { kind: 'deadline' },
    output: `${seabios}Booting from c000:0054\n`,
    stderr: '', elapsedMs: 10_000, quietMs: 8_100,
  },
  // Another host: QEMU aborts on an MSR it cannot set.
  'qemu-aborts': {
    end: { kind: 'exit', code: null, signal: 'SIGABRT' },
    output: '',
    stderr: 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs\' failed.\n',
    elapsedMs: 130, quietMs: 130,
  },
  // Not about KVM: QEMU cannot load the configured kernel at all.
  'kernel-unloadable': {
    end: { kind: 'exit', code: 1, signal: null },
    output: '',
    stderr: 'qemu-system-x86_64: linux kernel too old to load a ram disk\n',
    elapsedMs: 40, quietMs: 40,
  },
  // A loaded host: the kernel still prints at the deadline.
  'slow-but-booting': {
    end: { kind: 'deadline' },
    output: `${seabios}${kernelStart}[    6.100000] pci 0000:00:01.0: quirk\n`,
    stderr: '', elapsedMs: 10_000, quietMs: 300,
  },
};

/** A KVM probe that replays one of those outcomes, and counts its boots. */
export function fakeKvmProbe(kind: keyof typeof kvmHostOutcomes): ((input: KvmProbeInput) => Promise<KvmEvidence>) & { boots: number } {
  const probe = async (input: KvmProbeInput): Promise<KvmEvidence> => {
    probe.boots += 1;
    return { ...judgeProbe(kvmHostOutcomes[kind], input), probedAt: new Date().toISOString() };
  };
  probe.boots = 0;
  return probe;
}

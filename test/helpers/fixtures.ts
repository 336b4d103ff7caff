import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AcceleratorProbe, QemuProbes } from '../../src/host/qemu-probe.js';

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

export async function writeConfig(dir: string, text: string, name = 'configuration.toml'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** Scripted answers for QEMU questions, so host checks run without QEMU. */
export function fakeQemu(options: { kvmWorks: boolean; version?: string; devices?: string[] }): QemuProbes & { kvmProbes: number } {
  const devices = options.devices ?? [
    'virtio-9p-pci', 'virtio-rng-pci', 'pci-bridge', 'virtio-blk-pci', 'vhost-vsock-pci',
    'virtio-serial-pci', 'virtserialport', 'virtio-scsi-pci', 'scsi-hd',
  ];
  const fake = {
    kvmProbes: 0,
    async version() {
      return options.version ?? '7.2.0';
    },
    async devices() {
      return new Set(devices);
    },
    async accelerator(_path: string, accelerator: 'kvm' | 'tcg'): Promise<AcceleratorProbe> {
      if (accelerator === 'kvm') fake.kvmProbes += 1;
      const usable = accelerator === 'tcg' || options.kvmWorks;
      return { accelerator, usable, elapsedMs: 5, detail: usable ? 'firmware finished' : 'guest firmware did not finish within 3000 ms' };
    },
  };
  return fake;
}

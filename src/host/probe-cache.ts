import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { preparePrivateDir } from '../util/private-dir.js';
import path from 'node:path';
import type { HypervisorConfig } from '../config/runtime-config.js';
import { writeJsonAtomic } from '../store/atomic-file.js';
import type { KvmEvidence } from './kvm-boot-probe.js';
import { fileIdentity } from '../util/file-identity.js';

/** Root-owned, under /run: gone at the next boot, which is also part of the key. */
export const defaultProbeCacheDir = '/run/kata-ts-probe';

/** Bump when the probe changes what it proves, so older verdicts are not reused. */
const probeFormat = 'kvm-boot-probe/1';

/** A cached verdict, with the inputs it was computed from. */
export interface CachedEvidence {
  key: string;
  inputs: Record<string, string>;
  evidence: KvmEvidence;
}

/** Loaded KVM modules (kvm, kvm_intel, kvm_amd, kvm_pvm...) with their source versions. */
async function kvmModules(sysRoot: string): Promise<string> {
  const names = (await readdir(path.join(sysRoot, 'sys/module')).catch(() => [] as string[])).filter((n) => n.startsWith('kvm')).sort();
  const parts = await Promise.all(names.map(async (n) => {
    const version = await readFile(path.join(sysRoot, 'sys/module', n, 'srcversion'), 'utf8').catch(() => '');
    return `${n}:${version.trim()}`;
  }));
  return parts.join(' ');
}

/**
 * Everything a KVM verdict depends on: this boot of the host, the QEMU binary,
 * the kernel file, the firmware, the KVM modules and /dev/kvm, and the
 * machine options the probe (and every sandbox VM) uses.
 */
export async function probeInputs(h: HypervisorConfig, sysRoot = '/'): Promise<Record<string, string>> {
  const devKvm = await stat(path.join(sysRoot, 'dev/kvm')).catch(() => undefined);
  return {
    probe: probeFormat,
    bootId: (await readFile(path.join(sysRoot, 'proc/sys/kernel/random/boot_id'), 'utf8').catch(() => '')).trim(),
    qemu: await fileIdentity(h.path),
    kernel: await fileIdentity(h.kernel),
    firmware: await fileIdentity(h.firmware),
    machine: `${h.machineType} ${h.machineAccelerators}`,
    kvmModules: await kvmModules(sysRoot),
    devKvm: devKvm ? `rdev=${devKvm.rdev}` : 'missing',
  };
}

export function probeKey(inputs: Record<string, string>): string {
  const text = Object.entries(inputs).map(([k, v]) => `${k}=${v}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 24);
}

/**
 * Verdicts kept per key in a directory only the caller's user can write. The
 * directory is refused (and nothing cached) when it is a symlink, belongs to
 * someone else, or others may write to it; files are opened without following
 * symlinks and replaced atomically.
 */
export class ProbeCache {
  constructor(readonly dir: string = defaultProbeCacheDir) {}

  fileFor(key: string): string {
    return path.join(this.dir, `kvm-${key}.json`);
  }

  /** Creates the directory if needed; returns why it cannot be trusted, or undefined. */
  prepare(): Promise<string | undefined> {
    return preparePrivateDir(this.dir);
  }

  async read(key: string): Promise<CachedEvidence | undefined> {
    let handle;
    try {
      handle = await open(this.fileFor(key), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) return undefined;
      const cached = JSON.parse(await handle.readFile('utf8')) as CachedEvidence;
      const valid = cached.key === key && typeof cached.evidence?.usable === 'boolean' && cached.evidence.conclusive === true;
      return valid ? cached : undefined;
    } catch {
      return undefined;
    } finally {
      await handle.close();
    }
  }

  async write(entry: CachedEvidence): Promise<void> {
    await writeJsonAtomic(this.fileFor(entry.key), entry);
  }
}

import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HypervisorConfig } from '../config/runtime-config.js';
import { KataError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { probeAccelerator } from './qemu-probe.js';

/**
 * The accelerator a VM starts with. auto probes KVM for real once per boot
 * of the host and QEMU binary (the answer is cached in the temp dir), since
 * the probe costs up to its deadline on a host where KVM hangs.
 */
export async function resolveAccelerator(h: HypervisorConfig, logger: Logger): Promise<'kvm' | 'tcg'> {
  if (h.accelerator === 'tcg') return 'tcg';
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const qemuStat = await stat(h.path).catch(() => undefined);
  const key = createHash('sha256').update(`${bootId}\0${h.path}\0${qemuStat?.mtimeMs ?? 0}`).digest('hex').slice(0, 16);
  const cacheFile = path.join(os.tmpdir(), `kata-ts-kvm-probe-${key}.json`);
  let usable: boolean | undefined;
  let detail = '';
  try {
    ({ usable, detail } = JSON.parse(await readFile(cacheFile, 'utf8')) as { usable: boolean; detail: string });
  } catch {
    const probe = await probeAccelerator(h.path, 'kvm', 3000);
    usable = probe.usable;
    detail = probe.detail;
    await writeFile(cacheFile, JSON.stringify({ usable, detail })).catch(() => undefined);
  }
  if (usable) return 'kvm';
  if (h.accelerator === 'kvm') throw new KataError('HOST_UNSUPPORTED', `accelerator = "kvm" but KVM cannot run a guest on this host: ${detail}`);
  logger.info('KVM is not usable on this host; the VM runs under TCG software emulation');
  return 'tcg';
}

import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { failed } from './agent-error.js';

/** Kata 1.x's OnlineCPUMemRequest. */
export interface OnlineCpuMemRequest {
  wait?: boolean;
  nb_cpus?: number;
  cpu_only?: boolean;
}

/** Entries of dir named prefix<number>, in numeric order. */
async function numbered(dir: string, prefix: string): Promise<string[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => new RegExp(`^${prefix}\\d+$`).test(n));
  return names.sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
}

/** How a sysfs state file is written (a parameter so that unit tests can play the kernel). */
export type SysfsWrite = (file: string, text: string) => Promise<void>;

const readState = async (file: string): Promise<string> => (await readFile(file, 'utf8').catch(() => '')).trim();

/**
 * Writes `online` into each file whose text says offline; returns how many
 * units came online. The kernel may online a unit itself between our read
 * and our write (memhp_default_state=online does so for hot-plugged memory),
 * and then refuses the write with EINVAL: a unit that is online after a
 * failed write counts as brought online.
 */
async function bringOnline(files: string[], isOffline: (text: string) => boolean, online: string, write: SysfsWrite): Promise<number> {
  let count = 0;
  for (const file of files) {
    if (!isOffline(await readState(file))) continue;
    try {
      await write(file, online);
    } catch (error) {
      if (isOffline(await readState(file))) throw failed(`cannot bring ${path.dirname(file)} online: ${(error as Error).message}`);
    }
    count++;
  }
  return count;
}

/**
 * OnlineCPUMem, as Kata 1.x's agent does it: hot-plugged vCPUs come online
 * (with `wait`, until nb_cpus did: ACPI announces them a little after QEMU's
 * device_add), then, unless cpu_only, every offline memory block.
 */
export async function onlineCpuMem(req: OnlineCpuMemRequest, sysRoot = '/sys', timeoutMs = 10_000, write: SysfsWrite = writeFile): Promise<void> {
  const cpuDir = path.join(sysRoot, 'devices/system/cpu');
  const wanted = req.nb_cpus ?? 0;
  let onlined = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = (await numbered(cpuDir, 'cpu')).map((cpu) => path.join(cpuDir, cpu, 'online'));
    onlined += await bringOnline(files, (t) => t === '0', '1', write);
    if (onlined >= wanted || !req.wait) break;
    if (Date.now() > deadline) throw failed(`only ${onlined} of ${wanted} hot-plugged vCPUs came online within ${timeoutMs} ms`);
    await sleep(50);
  }
  if (req.cpu_only) return;
  const memoryDir = path.join(sysRoot, 'devices/system/memory');
  const blocks = (await numbered(memoryDir, 'memory')).map((block) => path.join(memoryDir, block, 'state'));
  await bringOnline(blocks, (t) => t === 'offline', 'online', write);
}

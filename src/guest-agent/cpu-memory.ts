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

/** Writes `online` into each file whose text says offline; returns how many units it brought online. */
async function bringOnline(files: string[], isOffline: (text: string) => boolean, online: string): Promise<number> {
  let count = 0;
  for (const file of files) {
    const text = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (!isOffline(text)) continue;
    await writeFile(file, online);
    count++;
  }
  return count;
}

/**
 * OnlineCPUMem, as Kata 1.x's agent does it: hot-plugged vCPUs come online
 * (with `wait`, until nb_cpus did: ACPI announces them a little after QEMU's
 * device_add), then, unless cpu_only, every offline memory block.
 */
export async function onlineCpuMem(req: OnlineCpuMemRequest, sysRoot = '/sys', timeoutMs = 10_000): Promise<void> {
  const cpuDir = path.join(sysRoot, 'devices/system/cpu');
  const wanted = req.nb_cpus ?? 0;
  let onlined = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = (await numbered(cpuDir, 'cpu')).map((cpu) => path.join(cpuDir, cpu, 'online'));
    onlined += await bringOnline(files, (t) => t === '0', '1');
    if (onlined >= wanted || !req.wait) break;
    if (Date.now() > deadline) throw failed(`only ${onlined} of ${wanted} hot-plugged vCPUs came online within ${timeoutMs} ms`);
    await sleep(50);
  }
  if (req.cpu_only) return;
  const memoryDir = path.join(sysRoot, 'devices/system/memory');
  const blocks = (await numbered(memoryDir, 'memory')).map((block) => path.join(memoryDir, block, 'state'));
  await bringOnline(blocks, (t) => t === 'offline', 'online');
}

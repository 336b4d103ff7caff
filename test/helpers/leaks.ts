import { readdir, readFile } from 'node:fs/promises';
import { vmRoot } from '../../src/runtime/sandbox-record.js';
import { readProcStat } from '../../src/util/process-identity.js';
import { kataTsBin } from './fixtures.js';

/** Pids whose command line mentions `needle` (for leak assertions only; nothing is killed by name). */
export async function processesMatching(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const state = (await readProcStat(Number(entry)))?.state;
    if (cmdline.split('\0').join(' ').includes(needle) && state !== 'Z') found.push(Number(entry));
  }
  return found;
}

/** Every kata-ts process (CLI, pod process, carrier) and every QEMU of a kata-ts VM running now. */
export async function kataTsProcesses(): Promise<number[]> {
  const found = new Set([...(await processesMatching(vmRoot)), ...(await processesMatching(kataTsBin))]);
  return [...found].sort((a, b) => a - b);
}

/** The sandbox VM dirs that exist now. */
export async function vmDirs(): Promise<string[]> {
  return (await readdir(vmRoot).catch(() => [] as string[])).sort();
}

/** Polls `find` until it reports nothing (callers clean up asynchronously, e.g. podman's exit command); returns its last answer. */
export async function untilNoneLeft(find: () => Promise<number[]>, timeoutMs = 30_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Cgroup directories at or below `relative` in every mounted hierarchy (v1 and v2), for leak checks. */
export async function cgroupDirs(relative: string): Promise<string[]> {
  const { parseCgroupMounts } = await import('../../src/cgroups/host-cgroups.js');
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.length === 0 && dir !== '') return;
    found.push(dir);
    for (const e of entries) if (e.isDirectory()) await walk(`${dir}/${e.name}`);
  };
  for (const h of parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8'))) await walk(`${h.mountPoint}${relative}`);
  return found.sort();
}

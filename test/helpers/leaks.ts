import { readdir, readFile } from 'node:fs/promises';
import { readProcStat } from '../../src/util/process-identity.js';

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

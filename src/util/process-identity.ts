import { readFile } from 'node:fs/promises';

/**
 * A pid plus its start time (clock ticks since boot, /proc/<pid>/stat field 22):
 * a recycled pid has another start time, so it is never mistaken for ours.
 */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and ')' so split after the last ')'. */
export function parseStartTime(stat: string): number | undefined {
  const end = stat.lastIndexOf(')');
  if (end < 0) return undefined;
  // Fields after the comm start at field 3 (state); starttime is field 22.
  const fields = stat.slice(end + 2).split(' ');
  const value = Number(fields[22 - 3]);
  return Number.isSafeInteger(value) ? value : undefined;
}

export async function readStartTime(pid: number, procRoot = '/proc'): Promise<number | undefined> {
  try {
    return parseStartTime(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export async function identify(pid: number, procRoot = '/proc'): Promise<ProcessIdentity | undefined> {
  const startTime = await readStartTime(pid, procRoot);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True only when the pid exists and is still the same process we recorded. */
export async function isSameProcessAlive(id: ProcessIdentity, procRoot = '/proc'): Promise<boolean> {
  const startTime = await readStartTime(id.pid, procRoot);
  if (startTime !== id.startTime) return false;
  // A zombie still has a stat file; it is not running anymore.
  try {
    const stat = await readFile(`${procRoot}/${id.pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

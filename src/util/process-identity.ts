import { readFile } from 'node:fs/promises';

/**
 * A pid plus its start time (clock ticks since boot, /proc/<pid>/stat field 22):
 * a recycled pid has another start time, so it is never mistaken for ours.
 */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/**
 * The fields of a /proc/<pid>/stat line, numbered as proc(5) numbers them
 * (1 = pid, 3 = state, 22 = starttime, 52 = exit_code). The command name
 * (field 2) may hold spaces and ')', so the split happens after the last ')'.
 */
export interface ProcStat {
  state: string;
  field(n: number): string | undefined;
}

export function parseProcStat(stat: string): ProcStat | undefined {
  const end = stat.lastIndexOf(')');
  if (end < 0) return undefined;
  const rest = stat.slice(end + 2).split(' ');
  return { state: rest[0] ?? '', field: (n) => rest[n - 3] };
}

export async function readProcStat(pid: number, procRoot = '/proc'): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function parseStartTime(stat: string): number | undefined {
  const value = Number(parseProcStat(stat)?.field(22));
  return Number.isSafeInteger(value) ? value : undefined;
}

export async function readStartTime(pid: number, procRoot = '/proc'): Promise<number | undefined> {
  const value = Number((await readProcStat(pid, procRoot))?.field(22));
  return Number.isSafeInteger(value) ? value : undefined;
}

export async function identify(pid: number, procRoot = '/proc'): Promise<ProcessIdentity | undefined> {
  const startTime = await readStartTime(pid, procRoot);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True only when the pid exists, is still the same process we recorded, and is not a zombie. */
export async function isSameProcessAlive(id: ProcessIdentity, procRoot = '/proc'): Promise<boolean> {
  const stat = await readProcStat(id.pid, procRoot);
  if (!stat || Number(stat.field(22)) !== id.startTime) return false;
  return stat.state !== 'Z' && stat.state !== 'X';
}

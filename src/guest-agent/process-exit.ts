import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from '../util/errors.js';
import { parseProcStat, type ProcStat } from '../util/process-identity.js';

/** Decodes a waitpid(2) status into the exit status callers expect: code, or 128 + signal. */
export function exitStatusFromWaitStatus(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

/** Pids whose exit waitForeignExit is reading: the zombie reaper leaves them alone. */
export const watchedPids = new Set<number>();

/**
 * Waits for a process that is not our child (a container init reparented to
 * the agent, PID 1) to exit. Node cannot waitpid() it, but a zombie's
 * /proc/<pid>/stat keeps its wait status in field 52 (exit_code); once read,
 * the zombie is reaped (`reap`), so none is left per container.
 */
export async function waitForeignExit(pid: number, pollMs = 50, reap: (pid: number) => void = () => undefined): Promise<number> {
  watchedPids.add(pid);
  try {
    return await readForeignExit(pid, pollMs, reap);
  } finally {
    watchedPids.delete(pid);
  }
}

async function readForeignExit(pid: number, pollMs: number, reap: (pid: number) => void): Promise<number> {
  for (;;) {
    let stat: ProcStat | undefined;
    try {
      stat = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
    } catch (err) {
      // Only a pid that is gone ends the wait: reaped by someone else, its status is lost. Any
      // other failure (a busy moment, a full fd table) is not an exit: read again.
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return 255;
    }
    if (!stat) {
      await sleep(pollMs);
      continue;
    }
    if (stat.state === 'Z' || stat.state === 'X') {
      const raw = Number(stat.field(52));
      reap(pid);
      return Number.isFinite(raw) ? exitStatusFromWaitStatus(raw) : 255;
    }
    await sleep(pollMs);
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { readProcStat } from '../util/process-identity.js';

/** Decodes a waitpid(2) status into the exit status callers expect: code, or 128 + signal. */
export function exitStatusFromWaitStatus(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

/**
 * Waits for a process that is not our child (a container init reparented to
 * the agent, PID 1) to exit. Node cannot waitpid() it, but a zombie's
 * /proc/<pid>/stat keeps its wait status in field 52 (exit_code).
 */
export async function waitForeignExit(pid: number, pollMs = 50): Promise<number> {
  for (;;) {
    const stat = await readProcStat(pid);
    if (!stat) return 255; // reaped by someone else: the status is lost
    if (stat.state === 'Z' || stat.state === 'X') {
      const raw = Number(stat.field(52));
      return Number.isFinite(raw) ? exitStatusFromWaitStatus(raw) : 255;
    }
    await sleep(pollMs);
  }
}

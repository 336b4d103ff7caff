import { readFile } from 'node:fs/promises';
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
 *
 * As PID 1 the agent is the parent of every orphan, so the kernel's SIGCHLD
 * says when to look: an idle guest then sleeps (polling every 50 ms per
 * container woke the emulated CPU 20 times a second). A slow poll stays as a
 * safety net. Elsewhere (the agent run as a plain process in tests) the
 * exit goes to another parent, and only polling notices it.
 */
export async function waitForeignExit(pid: number, pollMs = 50, reap: (pid: number) => void = () => undefined): Promise<number> {
  watchedPids.add(pid);
  try {
    return await readForeignExit(pid, process.pid === 1 ? parentPollMs : pollMs, reap);
  } finally {
    watchedPids.delete(pid);
  }
}

/** How many times /proc/<pid>/stat was read for waiters: what an idle guest pays (tests read it). */
export let foreignExitReads = 0;

/** The safety net's period when SIGCHLD tells of exits. */
const parentPollMs = 2000;

/** Wakes every waiter at once on SIGCHLD (signals coalesce: each waiter reads its own pid's state). */
const childSignal = new Set<() => void>();
let listening = false;

function nextChildSignalOr(ms: number): Promise<void> {
  if (!listening && process.pid === 1) {
    listening = true;
    process.on('SIGCHLD', () => {
      const waiters = [...childSignal];
      childSignal.clear();
      for (const wake of waiters) wake();
    });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      childSignal.delete(wake);
      resolve();
    }, ms);
    const wake = (): void => {
      clearTimeout(timer);
      resolve();
    };
    childSignal.add(wake);
  });
}

async function readForeignExit(pid: number, pollMs: number, reap: (pid: number) => void): Promise<number> {
  for (;;) {
    // Armed before the read: an exit between the read and the wait still wakes it.
    const next = nextChildSignalOr(pollMs);
    let stat: ProcStat | undefined;
    foreignExitReads++;
    try {
      stat = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
    } catch (err) {
      // Only a pid that is gone ends the wait: reaped by someone else, its status is lost. Any
      // other failure (a busy moment, a full fd table) is not an exit: read again.
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return 255;
    }
    if (stat && (stat.state === 'Z' || stat.state === 'X')) {
      const raw = Number(stat.field(52));
      reap(pid);
      return Number.isFinite(raw) ? exitStatusFromWaitStatus(raw) : 255;
    }
    await next;
  }
}

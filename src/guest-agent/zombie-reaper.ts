import { readdir, readFile } from 'node:fs/promises';
import { parseProcStat } from '../util/process-identity.js';
import { watchedPids } from './process-exit.js';

export interface ZombieReaperDeps {
  /** Zombie children of this process, by pid. */
  zombieChildren(): Promise<number[]>;
  reap(pid: number): void;
}

/** Zombies whose parent is this process, from /proc. */
export async function zombieChildrenFromProc(self = process.pid): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').then(parseProcStat, () => undefined);
    if (stat?.state === 'Z' && Number(stat.field(4)) === self) found.push(Number(entry));
  }
  return found;
}

/**
 * PID 1 must reap orphans, and node does not: every process of a container
 * whose parent died is reparented to the agent. A zombie child that is still
 * there one round later is no child libuv spawned (libuv reaps its own on
 * SIGCHLD at once) and no container init whose exit is being read: it is
 * reaped by pid. Returns the pids reaped this round.
 */
export class ZombieReaper {
  private seen = new Set<number>();
  reaped = 0;

  constructor(private readonly deps: ZombieReaperDeps) {}

  async round(): Promise<number[]> {
    const zombies = await this.deps.zombieChildren();
    const reaped: number[] = [];
    for (const pid of zombies) {
      if (this.seen.has(pid) && !watchedPids.has(pid)) {
        this.deps.reap(pid);
        reaped.push(pid);
      }
    }
    this.reaped += reaped.length;
    this.seen = new Set(zombies.filter((pid) => !reaped.includes(pid)));
    return reaped;
  }

  /**
   * In the background: a round soon after each SIGCHLD (every orphan's exit
   * sends one to PID 1) and a second one a second later, which reaps what the
   * first saw; otherwise only a slow safety round. An idle guest is not woken:
   * a round reads every /proc/<pid>/stat, which cost an emulated CPU about 1%
   * every 5 s.
   */
  start(safetyMs = 60_000, settleMs = 1000): NodeJS.Timeout {
    let pending = false;
    let again = false;
    const twoRounds = async (): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await this.round();
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      await this.round();
    };
    const onChild = (): void => {
      if (pending) {
        again = true;
        return;
      }
      pending = true;
      void twoRounds().catch(() => undefined).finally(() => {
        pending = false;
        // A child that ended meanwhile was seen once at most: two more rounds for it.
        if (again) {
          again = false;
          onChild();
        }
      });
    };
    process.on('SIGCHLD', onChild);
    const timer = setInterval(() => void this.round().catch(() => undefined), safetyMs);
    timer.unref();
    return timer;
  }
}

/**
 * What the pod process has seen of each relayed process's output: a command
 * can wait until a process's first output has reached its caller's stdio (or
 * the process is over), e.g. start, before poststart hooks that look for it.
 */
export type OutputSeen = 'output' | 'exited' | 'timeout';

/** The calls a command may make of the pod process's relays (pod-protocol's podRelayMethods). */
export interface SandboxRelays {
  /** Resolves once the process's first output was written to its caller's stdio, it exited, or timeoutMs passed. */
  firstOutput(containerId: string, execId: string, timeoutMs: number): Promise<OutputSeen>;
}

export class OutputWatch implements SandboxRelays {
  private readonly seen = new Map<string, Exclude<OutputSeen, 'timeout'>>();
  private readonly waiters = new Map<string, Set<(seen: OutputSeen) => void>>();

  private static key(containerId: string, execId: string): string {
    return `${containerId}\0${execId}`;
  }

  /** The relay wrote the process's first output (only the first call counts). */
  outputWritten(containerId: string, execId: string): void {
    this.settle(OutputWatch.key(containerId, execId), 'output');
  }

  /** The process is over; its record goes once waiters are told. */
  exited(containerId: string, execId: string): void {
    const key = OutputWatch.key(containerId, execId);
    this.settle(key, 'exited');
    this.seen.delete(key);
  }

  private settle(key: string, what: Exclude<OutputSeen, 'timeout'>): void {
    if (this.seen.has(key)) return;
    this.seen.set(key, what);
    for (const resolve of this.waiters.get(key) ?? []) resolve(what);
    this.waiters.delete(key);
  }

  async firstOutput(containerId: string, execId: string, timeoutMs: number): Promise<OutputSeen> {
    const key = OutputWatch.key(containerId, execId);
    const known = this.seen.get(key);
    if (known) return known;
    return new Promise((resolve) => {
      const waiters = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, waiters);
      const done = (seen: OutputSeen): void => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve(seen);
      };
      const timer = setTimeout(() => done('timeout'), Math.max(0, Math.min(timeoutMs, 60_000)));
      waiters.add(done);
    });
  }
}

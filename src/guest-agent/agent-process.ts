import type { Writable } from 'node:stream';
import { OutputBuffer } from './output-buffer.js';

/** A process the agent started in a container: the init process or an exec. */
export class AgentProcess {
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  exitStatus: number | undefined;
  readonly exited: Promise<number>;

  constructor(
    readonly execId: string,
    readonly pid: number,
    readonly stdin: Writable | null,
    stdout: OutputBuffer,
    stderr: OutputBuffer,
    exit: Promise<number>,
  ) {
    this.stdout = stdout;
    this.stderr = stderr;
    this.exited = exit.then((status) => {
      this.exitStatus = status;
      return status;
    });
  }

  signal(signal: number): void {
    if (this.exitStatus !== undefined) return;
    process.kill(this.pid, signal);
  }
}

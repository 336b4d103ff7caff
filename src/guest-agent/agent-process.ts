import type { Duplex, Writable } from 'node:stream';
import { loadNativeAddon } from '../util/native-addon.js';
import { failed } from './agent-error.js';
import type { OutputBuffer } from './output-buffer.js';

/** How the agent talks to a process: pipes, or a pty master (stdout then carries both streams). */
export interface ProcessIo {
  stdin: Writable | null;
  stdout: OutputBuffer;
  stderr: OutputBuffer;
  terminal?: { fd: number; stream: Duplex };
}

/** After an exit, output silent this long ends (a child left behind may hold the pipe open forever). */
export const outputQuietAfterExitMs = 2000;

/** A process the agent started in a container: the init process or an exec. */
export class AgentProcess {
  readonly stdin: Writable | null;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  exitStatus: number | undefined;
  /** The host has been told the exit status (WaitProcess answered). */
  waited = false;
  readonly exited: Promise<number>;

  constructor(
    readonly execId: string,
    readonly pid: number,
    private readonly io: ProcessIo,
    exit: Promise<number>,
  ) {
    this.stdin = io.stdin;
    this.stdout = io.stdout;
    this.stderr = io.stderr;
    this.exited = exit.then((status) => {
      this.exitStatus = status;
      io.stdout.endWhenSilent(outputQuietAfterExitMs);
      io.stderr.endWhenSilent(outputQuietAfterExitMs);
      return status;
    });
  }

  get hasTerminal(): boolean {
    return this.io.terminal !== undefined;
  }

  /** TIOCSWINSZ on the pty master: the process's foreground group gets SIGWINCH. */
  resize(rows: number, columns: number): void {
    const terminal = this.io.terminal;
    if (!terminal) throw failed(`process ${this.execId} has no terminal`);
    // A closed stream's fd number may already belong to something else.
    if (terminal.stream.destroyed) throw failed(`the terminal of process ${this.execId} is closed`);
    loadNativeAddon().setWindowSize(terminal.fd, rows, columns);
  }

  signal(signal: number): void {
    if (this.exitStatus !== undefined) return;
    process.kill(this.pid, signal);
  }
}

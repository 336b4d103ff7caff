import { closeSync, constants, openSync } from 'node:fs';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { CarrierStdio } from '../runtime/carrier-process.js';
import { TtrpcError } from '../ttrpc/ttrpc-error.js';
import { StatusCode } from '../ttrpc/ttrpc-messages.js';

export interface TaskIoPaths {
  stdin: string;
  stdout: string;
  stderr: string;
}

/**
 * The stdio containerd hands a task: FIFO paths (or file:// URIs for log
 * files), opened here for the carrier. Output FIFOs are opened read-write so
 * that opening never blocks; the carrier and the pod process hold the only
 * writers once this side lets go, so containerd sees EOF when the process
 * ends. stdin is copied through a pipe, so that CloseIO can end it while
 * containerd still holds its FIFO open.
 */
export class TaskIo {
  readonly stdio: CarrierStdio;
  private readonly ownFds: number[] = [];
  private stdinSource: net.Socket | undefined;
  private stdinSink: Writable | undefined;

  constructor(paths: TaskIoPaths) {
    try {
      this.stdio = [paths.stdin ? 'pipe' : 'ignore', this.openOutput(paths.stdout), this.openOutput(paths.stderr)];
      if (paths.stdin) {
        const fd = this.open(paths.stdin, constants.O_RDWR);
        this.ownFds.splice(this.ownFds.indexOf(fd), 1);
        this.stdinSource = new net.Socket({ fd, readable: true, writable: false });
        this.stdinSource.on('error', () => undefined);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Once the carrier runs with its dups of the fds: stdin flows to it, and this side's output fds close. */
  attach(child: ChildProcess): void {
    for (const fd of this.ownFds.splice(0)) closeSync(fd);
    if (this.stdinSource && child.stdin) {
      this.stdinSink = child.stdin;
      child.stdin.on('error', () => undefined);
      this.stdinSource.pipe(child.stdin);
    }
  }

  /** CloseIO: the process reads EOF on stdin. */
  closeStdin(): void {
    if (this.stdinSource && this.stdinSink) this.stdinSource.unpipe(this.stdinSink);
    this.stdinSink?.end();
    this.stdinSource?.destroy();
    this.stdinSource = undefined;
  }

  close(): void {
    for (const fd of this.ownFds.splice(0)) closeSync(fd);
    this.closeStdin();
  }

  private openOutput(target: string): number | 'ignore' {
    if (!target) return 'ignore';
    if (target.startsWith('file://')) return this.open(target.slice('file://'.length), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
    if (/^[a-z]+:\/\//.test(target)) throw new TtrpcError(StatusCode.Unimplemented, `stdio ${target}: only FIFOs and file:// are supported`);
    return this.open(target, constants.O_RDWR);
  }

  private open(file: string, flags: number): number {
    let fd: number;
    try {
      // Node opens with O_CLOEXEC: only the carrier gets dups, through its stdio.
      fd = openSync(file, flags, 0o640);
    } catch (err) {
      throw new TtrpcError(StatusCode.InvalidArgument, `cannot open ${file}: ${(err as Error).message}`);
    }
    this.ownFds.push(fd);
    return fd;
  }
}

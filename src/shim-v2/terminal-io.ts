import { closeSync, constants, createWriteStream, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tty from 'node:tty';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { loadNativeAddon } from '../util/native-addon.js';
import { shimSocketDir } from './shim-args.js';
import type { TaskIoPaths } from './task-io.js';

const masterTimeoutMs = 60_000;

/**
 * A task with a terminal: the carrier gets a pty (kata-ts's console-socket
 * path), this side gets its master and copies it to containerd's stdout FIFO
 * and containerd's stdin FIFO to it; ResizePty sets the pty's size, which the
 * carrier passes on to the guest.
 */
export class TerminalIo {
  readonly consoleSocket = path.join(shimSocketDir, `${randomBytes(8).toString('hex')}.console`);
  private readonly listenFd: number;
  private readonly master: Promise<number>;
  private masterFd: number | undefined;
  private stream: tty.ReadStream | undefined;
  private toMaster: tty.WriteStream | undefined;
  private output: Writable | undefined;
  private input: net.Socket | undefined;

  constructor(private readonly paths: TaskIoPaths) {
    const native = loadNativeAddon();
    this.listenFd = native.listenUnix(this.consoleSocket);
    this.master = native.receiveFd(this.listenFd, masterTimeoutMs);
    // Nobody may wait on it unhandled if create fails first.
    this.master.catch(() => undefined);
  }

  /** Once the carrier sent the master: the copying starts. */
  async attach(): Promise<void> {
    const master = await this.master;
    this.masterFd = master;
    this.closeListener();
    // A pty master is a tty to libuv: read with epoll (a thread-pool read would hold up exit), written through a second handle.
    const stream = new tty.ReadStream(master);
    const toMaster = new tty.WriteStream(master);
    this.stream = stream;
    this.toMaster = toMaster;
    stream.on('error', () => undefined);
    toMaster.on('error', () => undefined);
    if (this.paths.stdout) {
      const out = createWriteStream('', { fd: openSync(this.paths.stdout, constants.O_RDWR) });
      out.on('error', () => undefined);
      this.output = out;
      stream.pipe(out);
    }
    if (this.paths.stdin) {
      const input = new net.Socket({ fd: openSync(this.paths.stdin, constants.O_RDWR), readable: true, writable: false });
      input.on('error', () => undefined);
      this.input = input;
      input.pipe(toMaster, { end: false });
    }
  }

  resize(rows: number, columns: number): void {
    if (this.masterFd !== undefined && rows > 0 && columns > 0) loadNativeAddon().setWindowSize(this.masterFd, rows, columns);
  }

  /** A terminal has no EOF to pass on; CloseIO only stops the copying from stdin. */
  closeStdin(): void {
    this.input?.destroy();
    this.input = undefined;
  }

  /** After the process exited: what it wrote last is still in the pty; copy it before closing (at most a second). */
  async closeAfterExit(): Promise<void> {
    const stream = this.stream;
    if (stream && !stream.readableEnded) {
      await Promise.race([new Promise((resolve) => { stream.once('end', resolve); stream.once('error', resolve); stream.once('close', resolve); }), new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
    this.close();
  }

  close(): void {
    this.closeStdin();
    this.stream?.destroy();
    this.toMaster?.destroy();
    this.output?.end();
    this.closeListener();
  }

  private closeListener(): void {
    try {
      closeSync(this.listenFd);
    } catch {
      // closed already
    }
    void rm(this.consoleSocket, { force: true });
  }
}

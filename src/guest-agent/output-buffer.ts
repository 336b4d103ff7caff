import type { Readable } from 'node:stream';

/** Buffered output above which the process's pipe is no longer read (it then blocks on write). */
export const outputHighWaterMark = 1024 * 1024;

/**
 * Collects a process's output so that ReadStdout / ReadStderr can pull it.
 * read() waits until there is data or the stream has ended; an empty buffer
 * after the end means EOF. A process that writes faster than the host reads
 * is held back: past the high-water mark the source is paused (the pipe fills
 * and the writer blocks), and reads resume it, so guest memory stays bounded.
 */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private ended = false;
  private waiters: Array<() => void> = [];
  private buffered = 0;
  private eofDelivered = false;
  private lastDataAt = Date.now();
  private readonly source: Readable | null;

  constructor(source: Readable | null, private readonly highWaterMark = outputHighWaterMark) {
    this.source = source;
    if (!source) {
      this.ended = true;
      this.eofDelivered = true;
      return;
    }
    source.on('data', (chunk: Buffer) => {
      // Ended early (endWhenSilent): what a leftover child writes later is not anyone's to read.
      if (this.ended) return;
      this.lastDataAt = Date.now();
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= this.highWaterMark) source.pause();
      this.wake();
    });
    source.on('end', () => this.finish());
    source.on('error', () => this.finish());
  }

  finish(): void {
    this.ended = true;
    this.wake();
  }

  /**
   * The process exited: its output ends once the pipe has been silent for
   * quietMs, even if a child it left behind (a daemon) still holds the pipe
   * open. Hosts read output to EOF before WaitProcess (Kata 1.x's shim does,
   * because its agent forgets a process once waited for), so without this a
   * leftover child would hold the exit back for as long as it lives. A pipe
   * paused by backpressure is not silent: the host is still reading.
   */
  endWhenSilent(quietMs: number): void {
    const check = (): void => {
      if (this.ended) return;
      const silentFor = Date.now() - this.lastDataAt;
      if (silentFor >= quietMs && !this.source?.isPaused()) {
        this.source?.destroy();
        this.finish();
        return;
      }
      setTimeout(check, Math.max(50, quietMs - silentFor));
    };
    setTimeout(check, quietMs);
  }

  /** Bytes held, waiting for a read. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The reader has been given EOF: nothing more will be asked of this buffer. */
  get drained(): boolean {
    return this.eofDelivered;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  async read(maxLength: number): Promise<Buffer> {
    while (this.chunks.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const out: Buffer[] = [];
    let size = 0;
    while (this.chunks.length > 0 && size < maxLength) {
      const chunk = this.chunks[0] as Buffer;
      const take = Math.min(chunk.length, maxLength - size);
      out.push(chunk.subarray(0, take));
      size += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    this.buffered -= size;
    if (this.buffered < this.highWaterMark / 2 && this.source?.isPaused()) this.source.resume();
    if (size === 0) this.eofDelivered = true;
    return Buffer.concat(out);
  }
}

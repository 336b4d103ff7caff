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
  private readonly source: Readable | null;

  constructor(source: Readable | null, private readonly highWaterMark = outputHighWaterMark) {
    this.source = source;
    if (!source) {
      this.ended = true;
      this.eofDelivered = true;
      return;
    }
    source.on('data', (chunk: Buffer) => {
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

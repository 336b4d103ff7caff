import type { Readable } from 'node:stream';

/**
 * Collects a process's output so that ReadStdout / ReadStderr can pull it.
 * read() waits until there is data or the stream has ended; an empty buffer
 * after the end means EOF.
 */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private ended = false;
  private waiters: Array<() => void> = [];

  constructor(source: Readable | null) {
    if (!source) {
      this.ended = true;
      return;
    }
    source.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.wake();
    });
    source.on('end', () => this.finish());
    source.on('error', () => this.finish());
  }

  finish(): void {
    this.ended = true;
    this.wake();
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
    return Buffer.concat(out);
  }
}

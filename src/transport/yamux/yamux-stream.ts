import { Duplex } from 'node:stream';
import { Flag, FrameType, initialStreamWindow } from './frame.js';

/** What a stream needs from its session: a way to send frames and to forget the stream. */
export interface StreamOwner {
  sendFrame(type: FrameType, flags: number, streamId: number, lengthOrDelta: number, payload?: Buffer): void;
  streamClosed(id: number): void;
}

/**
 * One yamux stream as a Node Duplex. Writes respect the peer's receive
 * window (and wait for window updates); reads credit the window back as the
 * consumer drains them. end() half-closes with FIN; destroy() resets.
 */
export class YamuxStream extends Duplex {
  private sendWindow = initialStreamWindow;
  private pendingWrite: { chunk: Buffer; callback: (err?: Error | null) => void } | undefined;
  private pushedBytes = 0;
  private creditedBytes = 0;
  /** Flags owed to the peer on our next frame (SYN on open, ACK on accept). */
  private pendingFlags: number;
  private localClosed = false;
  private remoteClosed = false;
  private reset = false;

  constructor(
    readonly id: number,
    private readonly owner: StreamOwner,
    opening: 'outbound' | 'inbound',
  ) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 });
    this.pendingFlags = opening === 'outbound' ? Flag.SYN : Flag.ACK;
    // Announce the stream (SYN) or accept it (ACK) at once, like hashicorp's sendWindowUpdate.
    this.sendWindowUpdate(0);
  }

  private takeFlags(extra = 0): number {
    const flags = this.pendingFlags | extra;
    this.pendingFlags = 0;
    return flags;
  }

  private sendWindowUpdate(delta: number, extra = 0): void {
    this.owner.sendFrame(FrameType.WindowUpdate, this.takeFlags(extra), this.id, delta);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.pendingWrite = { chunk, callback };
    this.flushWrite();
  }

  private flushWrite(): void {
    const pending = this.pendingWrite;
    if (!pending) return;
    if (this.reset) {
      this.pendingWrite = undefined;
      pending.callback(new Error('yamux stream reset by peer'));
      return;
    }
    while (pending.chunk.length > 0 && this.sendWindow > 0) {
      const size = Math.min(pending.chunk.length, this.sendWindow);
      const part = pending.chunk.subarray(0, size);
      pending.chunk = pending.chunk.subarray(size);
      this.sendWindow -= size;
      this.owner.sendFrame(FrameType.Data, this.takeFlags(), this.id, size, part);
    }
    if (pending.chunk.length === 0) {
      this.pendingWrite = undefined;
      pending.callback();
    }
    // Otherwise the rest goes out when a window update arrives.
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.reset && !this.localClosed) {
      this.localClosed = true;
      this.sendWindowUpdate(0, Flag.FIN);
      this.maybeClosed();
    }
    callback();
  }

  override _read(): void {
    this.creditConsumed();
  }

  /** Every consumer (data events, pipe, async iteration) goes through read(): credit the window there. */
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.creditConsumed();
    return chunk;
  }

  /**
   * Gives the peer back the window for bytes the consumer has taken, once
   * they are half the window, as hashicorp yamux does: the peer still has the
   * other half, and no small update chases a stream the peer has closed and
   * forgotten ("frame for missing stream").
   */
  private creditConsumed(): void {
    const consumed = this.pushedBytes - this.readableLength - this.creditedBytes;
    if (consumed >= initialStreamWindow / 2) {
      this.creditedBytes += consumed;
      if (!this.remoteClosed && !this.reset) this.sendWindowUpdate(consumed);
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // After our FIN the peer may have closed and forgotten the stream already (hashicorp
    // yamux does so once both FINs passed): a reset then is a "frame for missing stream".
    if (!this.reset && !this.localClosed) {
      this.reset = true;
      this.owner.sendFrame(FrameType.WindowUpdate, this.takeFlags(Flag.RST), this.id, 0);
    }
    this.owner.streamClosed(this.id);
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.callback(err ?? new Error('yamux stream destroyed'));
    callback(err);
  }

  // ---- called by the session ----

  /** Returns false when the peer overran our window (a protocol error). */
  receiveData(payload: Buffer): boolean {
    const outstanding = this.pushedBytes - this.creditedBytes;
    if (outstanding + payload.length > initialStreamWindow) return false;
    if (payload.length > 0) {
      this.pushedBytes += payload.length;
      this.push(payload);
    }
    return true;
  }

  receiveWindowUpdate(delta: number): void {
    this.sendWindow += delta;
    this.flushWrite();
  }

  receiveFlags(flags: number): void {
    if (flags & Flag.RST) {
      this.reset = true;
      this.remoteClosed = true;
      this.destroy(new Error('yamux stream reset by peer'));
      return;
    }
    if (flags & Flag.FIN && !this.remoteClosed) {
      this.remoteClosed = true;
      this.push(null);
      this.maybeClosed();
    }
  }

  /** The session died under us: an error only for a stream still waiting for data. */
  abort(err: Error): void {
    this.reset = true;
    this.destroy(this.remoteClosed ? undefined : err);
  }

  private maybeClosed(): void {
    if (this.localClosed && this.remoteClosed) this.owner.streamClosed(this.id);
  }
}

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { KataError } from '../../util/errors.js';
import { decodeHeader, encodeHeader, Flag, FrameType, GoAwayCode, headerSize, initialStreamWindow, protocolVersion, type FrameHeader } from './frame.js';
import { YamuxStream, type StreamOwner } from './yamux-stream.js';

export interface YamuxOptions {
  /** Clients open odd stream ids, servers even ones. */
  role: 'client' | 'server';
  /** Send a ping this often to notice a dead peer; 0 disables. */
  keepaliveMs?: number;
  /** Take streams the peer opens (default: servers do, clients reset them: no one would read them). */
  acceptStreams?: boolean;
}

/**
 * Control replies (ping ACKs, RSTs of refused streams) that may wait unsent
 * while the peer does not read: a peer that floods pings and never reads would
 * otherwise make this process buffer replies without bound (Go's http2 caps
 * them the same way, maxQueuedControlFrames). Past this the session closes.
 */
export const maxQueuedControlReplies = 10_000;

/**
 * A yamux session over any Duplex (a unix socket, a virtio-serial port).
 * Emits 'stream' for streams the peer opens, 'close' when the connection ends,
 * and 'error' for protocol errors (after sending GoAway).
 */
export class YamuxSession extends EventEmitter implements StreamOwner {
  private readonly streams = new Map<number, YamuxStream>();
  private nextStreamId: number;
  private buffer: Buffer = Buffer.alloc(0);
  private header: FrameHeader | undefined;
  private readonly pings = new Map<number, (rttMs: number) => void>();
  private nextPing = 1;
  private localGoAway = false;
  private remoteGoAway = false;
  private closed = false;
  private keepalive: NodeJS.Timeout | undefined;
  private readonly acceptStreams: boolean;
  /** Control replies written since the connection last drained. */
  private queuedControlReplies = 0;

  constructor(
    private readonly conn: Duplex,
    options: YamuxOptions,
  ) {
    super();
    this.nextStreamId = options.role === 'client' ? 1 : 2;
    this.acceptStreams = options.acceptStreams ?? options.role === 'server';
    conn.on('data', (chunk: Buffer) => this.onData(chunk));
    conn.on('end', () => this.shutdown(new KataError('IO', 'yamux connection ended')));
    conn.on('close', () => this.shutdown(new KataError('IO', 'yamux connection closed')));
    conn.on('error', (err: Error) => this.shutdown(err));
    conn.on('drain', () => (this.queuedControlReplies = 0));
    if (options.keepaliveMs) {
      this.keepalive = setInterval(() => {
        this.ping(options.keepaliveMs).catch((err: Error) => this.shutdown(err));
      }, options.keepaliveMs);
      this.keepalive.unref();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  open(): YamuxStream {
    if (this.closed) throw new KataError('IO', 'yamux session is closed');
    if (this.remoteGoAway) throw new KataError('IO', 'yamux peer sent go-away: no new streams');
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new YamuxStream(id, this, 'outbound');
    this.streams.set(id, stream);
    return stream;
  }

  /** Round trip time of a ping, in ms. */
  ping(timeoutMs = 10_000): Promise<number> {
    const value = this.nextPing++ >>> 0;
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(value);
        reject(new KataError('TIMEOUT', `yamux ping got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(value, () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
      this.sendFrame(FrameType.Ping, Flag.SYN, 0, value);
    });
  }

  /** Tells the peer to open no more streams; existing ones go on. */
  goAway(code: GoAwayCode = GoAwayCode.Normal): void {
    this.localGoAway = true;
    this.sendFrame(FrameType.GoAway, 0, 0, code);
  }

  close(): void {
    if (this.closed) return;
    this.goAway();
    this.shutdown(new KataError('IO', 'yamux session closed'));
    this.conn.end();
  }

  sendFrame(type: FrameType, flags: number, streamId: number, length: number, payload?: Buffer): void {
    if (this.conn.destroyed || this.conn.writableEnded) return;
    // After shutdown only a go-away may still go out.
    if (this.closed && type !== FrameType.GoAway) return;
    const header = encodeHeader({ type, flags, streamId, length });
    this.conn.write(payload && payload.length > 0 ? Buffer.concat([header, payload]) : header);
  }

  /** A reply the peer's frame asked for: counted while the peer does not read, and the session closes past the cap. */
  private sendControlReply(type: FrameType, flags: number, streamId: number, length: number): void {
    if (this.conn.writableNeedDrain && ++this.queuedControlReplies > maxQueuedControlReplies) {
      const err = new KataError('IO', `yamux peer does not read: more than ${maxQueuedControlReplies} control replies queued`);
      this.emit('error', err);
      this.shutdown(err);
      // destroy, not end: end would wait for the peer to read what is queued.
      this.conn.destroy();
      return;
    }
    this.sendFrame(type, flags, streamId, length);
  }

  streamClosed(id: number): void {
    this.streams.delete(id);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (!this.header) {
        if (this.buffer.length < headerSize) return;
        this.header = decodeHeader(this.buffer.subarray(0, headerSize));
        this.buffer = this.buffer.subarray(headerSize);
        if (this.header.version !== protocolVersion) return this.protocolError(`unsupported yamux version ${this.header.version}`);
        // No stream's window is larger: a bigger frame is refused before a byte of it is buffered.
        if (this.header.type === FrameType.Data && this.header.length > initialStreamWindow) {
          return this.protocolError(`a data frame of ${this.header.length} bytes exceeds any receive window`);
        }
      }
      const header = this.header;
      const payloadSize = header.type === FrameType.Data ? header.length : 0;
      if (this.buffer.length < payloadSize) return;
      const payload = this.buffer.subarray(0, payloadSize);
      this.buffer = this.buffer.subarray(payloadSize);
      this.header = undefined;
      this.handleFrame(header, Buffer.from(payload));
      if (this.closed) return;
    }
  }

  private handleFrame(h: FrameHeader, payload: Buffer): void {
    switch (h.type) {
      case FrameType.Ping:
        if (h.flags & Flag.SYN) this.sendControlReply(FrameType.Ping, Flag.ACK, 0, h.length);
        else if (h.flags & Flag.ACK) {
          this.pings.get(h.length)?.(0);
          this.pings.delete(h.length);
        }
        return;
      case FrameType.GoAway:
        this.remoteGoAway = true;
        this.emit('go-away', h.length);
        if (h.length !== GoAwayCode.Normal) this.emit('error', new KataError('IO', `yamux peer went away with error code ${h.length}`));
        return;
      case FrameType.Data:
      case FrameType.WindowUpdate:
        return this.handleStreamFrame(h, payload);
      default:
        return this.protocolError(`unknown yamux frame type ${String(h.type)}`);
    }
  }

  private handleStreamFrame(h: FrameHeader, payload: Buffer): void {
    let stream = this.streams.get(h.streamId);
    if (h.flags & Flag.SYN && !stream) {
      if (this.localGoAway || !this.acceptStreams) {
        this.sendControlReply(FrameType.WindowUpdate, Flag.RST, h.streamId, 0);
        return;
      }
      stream = new YamuxStream(h.streamId, this, 'inbound');
      this.streams.set(h.streamId, stream);
      this.emit('stream', stream);
    }
    if (!stream) {
      // Frames for a stream we already forgot (after RST or full close) are dropped, as hashicorp does.
      return;
    }
    if (h.type === FrameType.WindowUpdate) stream.receiveWindowUpdate(h.length);
    else if (!stream.receiveData(payload)) return this.protocolError(`stream ${h.streamId} exceeded its receive window`);
    if (h.flags & (Flag.FIN | Flag.RST)) stream.receiveFlags(h.flags);
  }

  private protocolError(message: string): void {
    this.sendFrame(FrameType.GoAway, 0, 0, GoAwayCode.ProtocolError);
    const err = new KataError('IO', `yamux protocol error: ${message}`);
    this.emit('error', err);
    this.shutdown(err);
    // end() rather than destroy(): the go-away must reach the peer first.
    this.conn.end();
  }

  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepalive) clearInterval(this.keepalive);
    for (const stream of [...this.streams.values()]) stream.abort(err);
    this.streams.clear();
    this.emit('close', err);
  }
}

import net from 'node:net';
import { encodeFrame, FrameReader, FrameType } from './ttrpc-frame.js';
import { TtrpcError } from './ttrpc-error.js';
import { decodeResponse, encodeRequest, StatusCode, type KeyValue } from './ttrpc-messages.js';

interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  timer?: NodeJS.Timeout;
}

export interface CallOptions {
  metadata?: KeyValue[];
  /** Sent to the server as the call's timeout, and enforced here. */
  timeoutMs?: number;
}

/** A ttrpc client on one connection: calls get odd stream ids, 1, 3, 5..., and may be in flight together. */
export class TtrpcClient {
  private nextStreamId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) =>
      reader.push(
        chunk,
        (frame) => {
          if (frame.type !== FrameType.Response) return;
          const call = this.pending.get(frame.streamId);
          if (!call) return;
          this.pending.delete(frame.streamId);
          clearTimeout(call.timer);
          try {
            const response = decodeResponse(frame.payload);
            if (response.status && response.status.code !== StatusCode.Ok) call.reject(new TtrpcError(response.status.code, response.status.message));
            else call.resolve(Buffer.from(response.payload));
          } catch (err) {
            call.reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
        (big) => this.fail(big.streamId, new TtrpcError(StatusCode.ResourceExhausted, `response of ${big.length} bytes exceeds the maximum message size`)),
      ),
    );
    socket.on('error', (err) => this.closeAll(err));
    socket.on('close', () => this.closeAll(new TtrpcError(StatusCode.Unavailable, 'ttrpc: the connection closed')));
  }

  static connect(socketPath: string): Promise<TtrpcClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new TtrpcClient(socket));
      });
      socket.once('error', reject);
    });
  }

  call(service: string, method: string, payload: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    return new Promise<Buffer>((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      if (options.timeoutMs !== undefined) {
        pending.timer = setTimeout(() => this.fail(streamId, new TtrpcError(StatusCode.DeadlineExceeded, `${service}/${method}: no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      this.pending.set(streamId, pending);
      const request = encodeRequest({ service, method, payload, timeoutNano: (options.timeoutMs ?? 0) * 1e6, metadata: options.metadata ?? [] });
      this.socket.write(encodeFrame(streamId, FrameType.Request, request));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(streamId: number, err: Error): void {
    const call = this.pending.get(streamId);
    if (!call) return;
    this.pending.delete(streamId);
    clearTimeout(call.timer);
    call.reject(err);
  }

  private closeAll(err: Error): void {
    this.closedError ??= err;
    for (const streamId of [...this.pending.keys()]) this.fail(streamId, err);
  }
}

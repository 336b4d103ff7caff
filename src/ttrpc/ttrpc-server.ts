import net from 'node:net';
import { encodeFrame, FrameReader, FrameType, type Frame } from './ttrpc-frame.js';
import { TtrpcError } from './ttrpc-error.js';
import { listenOwnerOnly } from '../util/unix-socket.js';
import { decodeRequest, encodeResponse, StatusCode, type KeyValue, type RpcStatus } from './ttrpc-messages.js';

/** What a method gets: the request's payload (protobuf bytes) and metadata; it returns the response's payload. */
export type TtrpcMethod = (payload: Buffer, context: TtrpcCallContext) => Promise<Uint8Array>;

export interface TtrpcCallContext {
  service: string;
  method: string;
  metadata: KeyValue[];
  /** The caller's deadline, if it set one (ms since the epoch). */
  deadline?: number;
}

/**
 * A ttrpc server (containerd/ttrpc's wire protocol, unary calls): each
 * connection's requests are served concurrently and answered on their stream
 * id. A method that throws TtrpcError answers with its code; anything else is
 * Unknown, as Go's ttrpc does for a plain error.
 */
export class TtrpcServer {
  private readonly services = new Map<string, Map<string, TtrpcMethod>>();
  private readonly connections = new Set<net.Socket>();
  private server: net.Server | undefined;

  register(service: string, methods: Record<string, TtrpcMethod>): void {
    const table = this.services.get(service) ?? new Map<string, TtrpcMethod>();
    for (const [name, method] of Object.entries(methods)) table.set(name, method);
    this.services.set(service, table);
  }

  /** Serves on a unix socket (0600: only its owner may call). */
  async listen(socketPath: string): Promise<void> {
    const server = net.createServer((socket) => this.serveConnection(socket));
    await listenOwnerOnly(server, socketPath);
    this.server = server;
  }

  /** Serves one already connected socket (a test, or an fd handed over). */
  serveConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      reader.push(
        chunk,
        (frame) => void this.answer(socket, frame),
        (big) => this.reply(socket, big.streamId, { code: StatusCode.ResourceExhausted, message: `message length ${big.length} exceeds the maximum message size` }),
      );
    });
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async answer(socket: net.Socket, frame: Frame): Promise<void> {
    if (frame.type !== FrameType.Request) return;
    let status: RpcStatus = { code: StatusCode.Ok, message: '' };
    let payload: Uint8Array = Buffer.alloc(0);
    try {
      const request = decodeRequest(frame.payload);
      const service = this.services.get(request.service);
      if (!service) throw new TtrpcError(StatusCode.Unimplemented, `service ${request.service}`);
      const method = service.get(request.method);
      if (!method) throw new TtrpcError(StatusCode.Unimplemented, `method ${request.method}`);
      const deadline = request.timeoutNano > 0 ? Date.now() + request.timeoutNano / 1e6 : undefined;
      payload = await method(Buffer.from(request.payload), { service: request.service, method: request.method, metadata: request.metadata, ...(deadline ? { deadline } : {}) });
    } catch (err) {
      status = err instanceof TtrpcError ? { code: err.code, message: err.message } : { code: StatusCode.Unknown, message: err instanceof Error ? err.message : String(err) };
    }
    this.reply(socket, frame.streamId, status, payload);
  }

  private reply(socket: net.Socket, streamId: number, status: RpcStatus, payload: Uint8Array = Buffer.alloc(0)): void {
    if (socket.destroyed) return;
    socket.write(encodeFrame(streamId, FrameType.Response, encodeResponse({ status, payload })));
  }
}

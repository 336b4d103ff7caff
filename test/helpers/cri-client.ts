import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

type UnaryMethod<T> = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: T) => void) => grpc.ClientUnaryCall;

const protoFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cri', 'runtime-v1-subset.proto');

/** A CRI RuntimeService client, as the kubelet talks to containerd (crictl is not packaged in Debian 12). */
/** ExecSync's answer, as the CRI client decodes it. */
export interface ExecSyncResponse {
  stdout: Buffer;
  stderr: Buffer;
  exit_code: number;
}

export interface CriClient {
  /** Calls one RuntimeService method; rejects with the gRPC error. */
  call<T = Record<string, unknown>>(method: string, request: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  close(): void;
}

export function connectCri(socket: string): CriClient {
  const definition = protoLoader.loadSync(protoFile, { keepCase: true, longs: Number, enums: String, defaults: true });
  const runtime = (grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } }).runtime.v1;
  const client = new runtime.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  return {
    call<T>(method: string, request: Record<string, unknown>, timeoutMs = 180_000): Promise<T> {
      const fn = (client as unknown as Record<string, UnaryMethod<T> | undefined>)[method];
      if (typeof fn !== 'function') return Promise.reject(new Error(`CRI RuntimeService has no method ${method}`));
      return new Promise<T>((resolve, reject) => {
        fn.call(client, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    },
    close: () => client.close(),
  };
}

import protobuf from 'protobufjs';

/** gRPC status codes, which ttrpc carries in google.rpc.Status. */
export const enum StatusCode {
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Uint8Array;
  timeoutNano: number;
  metadata: KeyValue[];
}

export interface RpcStatus {
  code: number;
  message: string;
}

export interface TtrpcResponse {
  status?: RpcStatus;
  payload: Uint8Array;
}

// ttrpc's own messages (types.go) and google.rpc.Status, field numbers as on the wire.
const root = protobuf.Root.fromJSON({
  nested: {
    ttrpc: {
      nested: {
        KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Request: {
          fields: {
            service: { type: 'string', id: 1 },
            method: { type: 'string', id: 2 },
            payload: { type: 'bytes', id: 3 },
            timeoutNano: { type: 'int64', id: 4 },
            metadata: { rule: 'repeated', type: 'KeyValue', id: 5 },
          },
        },
        Status: {
          fields: {
            code: { type: 'int32', id: 1 },
            message: { type: 'string', id: 2 },
            details: { rule: 'repeated', type: 'bytes', id: 3 },
          },
        },
        Response: { fields: { status: { type: 'Status', id: 1 }, payload: { type: 'bytes', id: 2 } } },
      },
    },
  },
});
const requestType = root.lookupType('ttrpc.Request');
const responseType = root.lookupType('ttrpc.Response');

const decodeOptions = { longs: Number, bytes: Buffer, defaults: true, arrays: true };

export function encodeRequest(request: TtrpcRequest): Uint8Array {
  return requestType.encode(requestType.fromObject(request)).finish();
}

export function decodeRequest(bytes: Uint8Array): TtrpcRequest {
  return requestType.toObject(requestType.decode(bytes), decodeOptions) as TtrpcRequest;
}

export function encodeResponse(response: TtrpcResponse): Uint8Array {
  return responseType.encode(responseType.fromObject(response)).finish();
}

export function decodeResponse(bytes: Uint8Array): TtrpcResponse {
  const decoded = responseType.decode(bytes);
  const object = responseType.toObject(decoded, { ...decodeOptions, defaults: false }) as Partial<TtrpcResponse>;
  return { payload: object.payload ?? Buffer.alloc(0), ...(object.status ? { status: { code: object.status.code ?? 0, message: object.status.message ?? '' } } : {}) };
}

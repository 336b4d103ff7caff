/** hashicorp/yamux wire format: a 12-byte big-endian header, then `length` payload bytes for Data frames. */
export const protocolVersion = 0;
export const headerSize = 12;
/** Both sides start with this receive window per stream. */
export const initialStreamWindow = 256 * 1024;

export enum FrameType {
  Data = 0,
  WindowUpdate = 1,
  Ping = 2,
  GoAway = 3,
}

export const Flag = {
  SYN: 1,
  ACK: 2,
  FIN: 4,
  RST: 8,
} as const;

export enum GoAwayCode {
  Normal = 0,
  ProtocolError = 1,
  InternalError = 2,
}

export interface FrameHeader {
  version: number;
  type: FrameType;
  flags: number;
  streamId: number;
  /** Payload size (Data), window delta (WindowUpdate), opaque value (Ping) or error code (GoAway). */
  length: number;
}

export function encodeHeader(h: Omit<FrameHeader, 'version'>): Buffer {
  const buf = Buffer.alloc(headerSize);
  buf.writeUInt8(protocolVersion, 0);
  buf.writeUInt8(h.type, 1);
  buf.writeUInt16BE(h.flags, 2);
  buf.writeUInt32BE(h.streamId >>> 0, 4);
  buf.writeUInt32BE(h.length >>> 0, 8);
  return buf;
}

export function decodeHeader(buf: Buffer): FrameHeader {
  return {
    version: buf.readUInt8(0),
    type: buf.readUInt8(1) as FrameType,
    flags: buf.readUInt16BE(2),
    streamId: buf.readUInt32BE(4),
    length: buf.readUInt32BE(8),
  };
}

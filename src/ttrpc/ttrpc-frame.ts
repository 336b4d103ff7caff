/**
 * ttrpc's framing (containerd/ttrpc channel.go): a 10-byte header, then the
 * payload. Header: length (uint32, big endian, payload only), stream id
 * (uint32), message type (1 request, 2 response), flags (reserved, 0).
 */
export const frameHeaderLength = 10;
/** ttrpc refuses messages over 4 MiB. */
export const frameLengthMax = 4 << 20;

export const enum FrameType {
  Request = 1,
  Response = 2,
}

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
}

export function encodeFrame(streamId: number, type: FrameType, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(frameHeaderLength);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(streamId, 4);
  header.writeUInt8(type, 8);
  return Buffer.concat([header, payload]);
}

/** A frame too large to take: its payload is skipped, and the stream answered with an error. */
export interface OversizedFrame {
  streamId: number;
  type: number;
  length: number;
}

/** Cuts a byte stream into frames. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private skipping = 0;

  push(chunk: Buffer, onFrame: (frame: Frame) => void, onOversized: (frame: OversizedFrame) => void): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.skipping > 0) {
        const skipped = Math.min(this.skipping, this.pending.length);
        this.pending = this.pending.subarray(skipped);
        this.skipping -= skipped;
        if (this.skipping > 0) return;
      }
      if (this.pending.length < frameHeaderLength) return;
      const length = this.pending.readUInt32BE(0);
      const streamId = this.pending.readUInt32BE(4);
      const type = this.pending.readUInt8(8);
      const flags = this.pending.readUInt8(9);
      if (length > frameLengthMax) {
        this.pending = this.pending.subarray(frameHeaderLength);
        this.skipping = length;
        onOversized({ streamId, type, length });
        continue;
      }
      if (this.pending.length < frameHeaderLength + length) return;
      const payload = Buffer.from(this.pending.subarray(frameHeaderLength, frameHeaderLength + length));
      this.pending = this.pending.subarray(frameHeaderLength + length);
      onFrame({ streamId, type, flags, payload });
    }
  }
}

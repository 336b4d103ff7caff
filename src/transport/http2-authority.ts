import { Duplex } from 'node:stream';
import hpack from 'hpack.js';

/**
 * Kata 1.x's runtime (grpc-go 1.11) sends `:authority` =
 * `unix:///run/vc/sbs/<id>/proxy.sock`. Node's HTTP/2 layer (nghttp2) resets
 * a stream whose authority holds a '/', before gRPC sees the call. This sits
 * between a client connection and the HTTP/2 server: it decodes each header
 * block the client sends (HPACK, with the client's dynamic table), percent-
 * encodes what nghttp2 refuses in `:authority`, and encodes the block again
 * as literals without indexing, so the server's table is never used. Every
 * other frame, and everything the server sends, passes untouched.
 */

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const frameHeaderSize = 9;
const headersFrame = 0x1;
const continuationFrame = 0x9;
const endStream = 0x1;
const endHeaders = 0x4;
const padded = 0x8;
const priority = 0x20;
/** Every HTTP/2 peer takes frames this large (SETTINGS_MAX_FRAME_SIZE's floor). */
const maxFrameSize = 16384;
/** A header block larger than this is not a gRPC call: the connection is cut. */
const maxHeaderBlock = 1 << 20;

/** nghttp2's characters for an authority (RFC 3986 reg-name, userinfo, port, IP literal). */
const authorityChar = /[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]/;

export function safeAuthority(value: string): string {
  let out = '';
  for (const ch of value) {
    out += authorityChar.test(ch) ? ch : [...Buffer.from(ch)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

/** HPACK integer with an N-bit prefix (RFC 7541 5.1). */
function encodeInteger(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function encodeString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(encodeInteger(bytes.length, 7, 0)), bytes]);
}

/** Literal header fields without indexing, new names (RFC 7541 6.2.2): no table on either side. */
export function encodeHeaderBlock(headers: Array<[string, string]>): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0]), encodeString(name), encodeString(value)]));
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(frameHeaderSize);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** One decoded block as HEADERS plus CONTINUATION frames of at most maxFrameSize. */
function headerFrames(streamId: number, block: Buffer, endsStream: boolean): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset === 0 || offset < block.length; offset += maxFrameSize) {
    const part = block.subarray(offset, offset + maxFrameSize);
    const last = offset + maxFrameSize >= block.length;
    const type = offset === 0 ? headersFrame : continuationFrame;
    const flags = (last ? endHeaders : 0) | (offset === 0 && endsStream ? endStream : 0);
    frames.push(frame(type, flags, streamId, part));
  }
  return frames;
}

/** The client-to-server byte stream, frame by frame, with header blocks re-encoded. */
export class AuthorityRewriter {
  private buffered: Buffer = Buffer.alloc(0);
  private sawPreface = false;
  private passThrough = false;
  private readonly decompressor = hpack.decompressor.create({ table: { size: 4096 } });
  /** A header block still waiting for its CONTINUATION frames. */
  private pending?: { streamId: number; endsStream: boolean; fragments: Buffer[]; size: number };

  /** Takes client bytes; returns what the server should get now. Throws on a malformed stream. */
  push(chunk: Buffer): Buffer {
    if (this.passThrough) return chunk;
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const out: Buffer[] = [];
    if (!this.sawPreface) {
      if (this.buffered.length < preface.length) {
        if (preface.subarray(0, this.buffered.length).equals(this.buffered)) return Buffer.alloc(0);
      }
      if (!this.buffered.subarray(0, preface.length).equals(preface)) {
        // Not HTTP/2 with prior knowledge: the server answers it as it would.
        this.passThrough = true;
        const all = this.buffered;
        this.buffered = Buffer.alloc(0);
        return all;
      }
      out.push(preface);
      this.buffered = this.buffered.subarray(preface.length);
      this.sawPreface = true;
    }
    while (this.buffered.length >= frameHeaderSize) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < frameHeaderSize + length) break;
      const type = this.buffered[3]!;
      const flags = this.buffered[4]!;
      const streamId = this.buffered.readUInt32BE(5) & 0x7fffffff;
      const whole = this.buffered.subarray(0, frameHeaderSize + length);
      const payload = whole.subarray(frameHeaderSize);
      this.buffered = this.buffered.subarray(frameHeaderSize + length);
      if (type === headersFrame) out.push(...this.headers(streamId, flags, payload));
      else if (type === continuationFrame && this.pending?.streamId === streamId) out.push(...this.continuation(flags, payload));
      // Anything else, a stray CONTINUATION included: the server judges it.
      else out.push(Buffer.from(whole));
    }
    return Buffer.concat(out);
  }

  private headers(streamId: number, flags: number, payload: Buffer): Buffer[] {
    let fragment = payload;
    if (flags & padded) {
      const padLength = fragment[0] ?? 0;
      if (padLength >= fragment.length) throw new Error('HTTP/2 HEADERS frame: padding longer than the frame');
      fragment = fragment.subarray(1, fragment.length - padLength);
    }
    if (flags & priority) fragment = fragment.subarray(5);
    this.pending = { streamId, endsStream: (flags & endStream) !== 0, fragments: [], size: 0 };
    return this.continuation(flags, fragment);
  }

  private continuation(flags: number, fragment: Buffer): Buffer[] {
    const pending = this.pending!;
    pending.fragments.push(Buffer.from(fragment));
    pending.size += fragment.length;
    if (pending.size > maxHeaderBlock) throw new Error(`HTTP/2 header block over ${maxHeaderBlock} bytes`);
    if (!(flags & endHeaders)) return [];
    this.pending = undefined;
    const headers = this.decode(Buffer.concat(pending.fragments));
    return headerFrames(pending.streamId, encodeHeaderBlock(headers), pending.endsStream);
  }

  private decode(block: Buffer): Array<[string, string]> {
    this.decompressor.write(block);
    this.decompressor.execute();
    const headers: Array<[string, string]> = [];
    for (let field = this.decompressor.read(); field; field = this.decompressor.read()) {
      headers.push([field.name, field.name === ':authority' ? safeAuthority(field.value) : field.value]);
    }
    return headers;
  }
}

/**
 * A connection as the HTTP/2 server should see it: client bytes through an
 * AuthorityRewriter, server bytes straight back. A malformed stream destroys it.
 */
export function acceptAnyAuthority(conn: Duplex): Duplex {
  const rewriter = new AuthorityRewriter();
  const wrapped: Duplex = new Duplex({
    read() {
      conn.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      conn.write(chunk, callback);
    },
    final(callback) {
      conn.end();
      callback();
    },
    destroy(err, callback) {
      conn.destroy();
      callback(err);
    },
  });
  conn.on('data', (chunk: Buffer) => {
    let out: Buffer;
    try {
      out = rewriter.push(chunk);
    } catch (err) {
      wrapped.destroy(err as Error);
      return;
    }
    if (out.length > 0 && !wrapped.push(out)) conn.pause();
  });
  conn.once('end', () => wrapped.push(null));
  conn.once('error', (err: Error) => wrapped.destroy(err));
  conn.once('close', () => {
    if (!wrapped.destroyed) wrapped.destroy();
  });
  return wrapped;
}

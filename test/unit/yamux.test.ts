import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { decodeHeader, encodeHeader, Flag, FrameType, initialStreamWindow } from '../../src/transport/yamux/frame.js';
import { maxQueuedControlReplies, YamuxSession } from '../../src/transport/yamux/yamux-session.js';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import type { YamuxStream } from '../../src/transport/yamux/yamux-stream.js';

/** Two Duplex ends joined back to back, like a socketpair. */
function duplexPair(): [Duplex, Duplex] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const a = Duplex.from({ readable: bToA, writable: aToB });
  const b = Duplex.from({ readable: aToB, writable: bToA });
  return [a, b];
}

function collect(stream: YamuxStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

describe('yamux frames and sessions', () => {
  it('encodes and decodes the 12-byte header in network order', () => {
    const buf = encodeHeader({ type: FrameType.WindowUpdate, flags: Flag.SYN | Flag.FIN, streamId: 0x01020304, length: 0xfffffffe });
    assert.equal(buf.toString('hex'), '000100050102030' + '4fffffffe');
    assert.deepEqual(decodeHeader(buf), { version: 0, type: 1, flags: 5, streamId: 0x01020304, length: 0xfffffffe });
  });

  it('echoes many streams both ways with payloads beyond the window', async () => {
    const [a, b] = duplexPair();
    const client = new YamuxSession(a, { role: 'client' });
    const server = new YamuxSession(b, { role: 'server' });
    server.on('stream', (s: YamuxStream) => s.pipe(s)); // echo, FIN follows FIN
    const size = initialStreamWindow * 2 + 123;
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const s = client.open();
        const data = Buffer.alloc(size, i);
        const echoed = collect(s);
        s.end(data);
        return (await echoed).equals(data);
      }),
    );
    assert.deepEqual(results, Array(8).fill(true));
    assert.ok((await client.ping()) >= 0);
    client.close();
    server.close();
  });

  it('a peer that floods a million pings and never reads makes the session close, with what it queued bounded', { timeout: 60_000 }, async () => {
    const socketPath = path.join(os.tmpdir(), `kata-ts-yamux-flood-${process.pid}.sock`);
    await rm(socketPath, { force: true });
    const server = net.createServer();
    server.listen(socketPath);
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const peer = net.connect(socketPath);
    await once(peer, 'connect');
    const [conn] = await accepted;
    // The peer never reads: its receive buffer and our send buffer fill, then replies queue here.
    peer.pause();
    const session = new YamuxSession(conn, { role: 'client' });
    const errors: Error[] = [];
    session.on('error', (err: Error) => errors.push(err));
    // Not events.once: it would reject on the 'error' the session emits before it closes.
    const closed = new Promise((resolve) => session.once('close', resolve));
    let mostQueued = 0;
    const watch = setInterval(() => (mostQueued = Math.max(mostQueued, conn.writableLength)), 1);
    const pings = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: i })));
    for (let round = 0; round < 100 && !session.isClosed; round++) {
      if (!peer.write(pings)) await Promise.race([once(peer, 'drain'), once(peer, 'close'), closed]);
      mostQueued = Math.max(mostQueued, conn.writableLength);
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
    clearInterval(watch);
    assert.ok(session.isClosed, `the session closed (it queued ${conn.writableLength} bytes of replies)`);
    assert.match(errors[0]?.message ?? '', new RegExp(`more than ${maxQueuedControlReplies} control replies queued`));
    // Node queues up to its high-water mark before it asks for a drain; the cap counts from there.
    const bound = conn.writableHighWaterMark + (maxQueuedControlReplies + 1) * 12;
    assert.ok(mostQueued <= bound, `queued at most the cap's worth of replies: ${mostQueued} bytes (bound ${bound})`);
    assert.ok(conn.destroyed, 'the connection is gone, not left flushing to a peer that does not read');
    peer.destroy();
    server.close();
    await rm(socketPath, { force: true });
  });

  it('a reset stream errors on the other side', async () => {
    const [a, b] = duplexPair();
    const client = new YamuxSession(a, { role: 'client' });
    const server = new YamuxSession(b, { role: 'server' });
    const accepted = new Promise<YamuxStream>((resolve) => server.on('stream', resolve));
    const s = client.open();
    s.write('hello');
    const remote = await accepted;
    const failed = new Promise<Error>((resolve) => remote.on('error', resolve));
    s.destroy();
    assert.match((await failed).message, /reset by peer/);
    client.close();
    server.close();
  });

  it('answers a window overrun or a bad version with go-away and closes', async () => {
    for (const frame of [
      Buffer.concat([encodeHeader({ type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: initialStreamWindow + 1 }), Buffer.alloc(initialStreamWindow + 1)]),
      Buffer.from('010000000000000100000000', 'hex'),
    ]) {
      const [a, b] = duplexPair();
      const server = new YamuxSession(b, { role: 'server' });
      const errors: Error[] = [];
      server.on('error', (e: Error) => errors.push(e));
      server.on('stream', (s: YamuxStream) => s.on('error', () => undefined));
      const replies: Buffer[] = [];
      a.on('data', (c: Buffer) => replies.push(c));
      a.write(frame);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.isClosed, true);
      assert.match(errors[0]?.message ?? '', /yamux protocol error/);
      const goAway = Buffer.concat(replies).subarray(-12);
      assert.deepEqual(decodeHeader(goAway), { version: 0, type: FrameType.GoAway, flags: 0, streamId: 0, length: 1 });
    }
  });

  it('refuses a data frame larger than any window from its header, before buffering its payload', async () => {
    const [a, b] = duplexPair();
    const server = new YamuxSession(b, { role: 'server' });
    const errors: Error[] = [];
    server.on('error', (e: Error) => errors.push(e));
    // A 4 GiB frame announced: only the header is sent.
    a.write(encodeHeader({ type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: 0xffffffff }));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.isClosed, true);
    assert.match(errors[0]?.message ?? '', /4294967295 bytes exceeds any receive window/);
  });

  it('a client resets streams the peer opens (no one would read them), a server takes them', async () => {
    const [a, b] = duplexPair();
    const client = new YamuxSession(a, { role: 'client' });
    const streams: YamuxStream[] = [];
    client.on('stream', (s: YamuxStream) => streams.push(s));
    const replies: Buffer[] = [];
    b.on('data', (c: Buffer) => replies.push(c));
    for (let id = 2; id <= 200; id += 2) b.write(Buffer.concat([encodeHeader({ type: FrameType.Data, flags: Flag.SYN, streamId: id, length: 4 }), Buffer.from('junk')]));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(streams.length, 0);
    assert.equal(client.streamCount, 0, 'nothing is kept for them');
    const first = decodeHeader(Buffer.concat(replies).subarray(0, 12));
    assert.deepEqual(first, { version: 0, type: FrameType.WindowUpdate, flags: Flag.RST, streamId: 2, length: 0 });
    assert.equal(client.isClosed, false);
    client.close();
  });
});

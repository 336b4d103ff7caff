import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { YamuxSession } from '../../src/transport/yamux/yamux-session.js';
import type { YamuxStream } from '../../src/transport/yamux/yamux-stream.js';
import { buildGoPeer } from '../helpers/go-build.js';
import { tempDir } from '../helpers/fixtures.js';

function payload(stream: number, size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + stream * 13) % 251;
  return data;
}

async function readAll(stream: YamuxStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Our server side: an 8-byte length, that many bytes, then answer "<bytes> <sha256>" and half-close. */
async function hashLengthPrefixed(stream: YamuxStream): Promise<void> {
  const hash = createHash('sha256');
  let header = Buffer.alloc(0);
  let remaining = -1;
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    let data = chunk as Buffer;
    if (remaining < 0) {
      header = Buffer.concat([header, data]);
      if (header.length < 8) continue;
      remaining = Number(header.readBigUInt64BE(0));
      data = header.subarray(8);
    }
    hash.update(data);
    remaining -= data.length;
    if (remaining === 0) break;
  }
  stream.end(`${Number(header.readBigUInt64BE(0))} ${hash.digest('hex')}`);
}

describe('yamux interop with hashicorp/yamux (Go)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let peer: string;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    peer = await buildGoPeer('test/interop/yamux-peer', path.join(dir, 'yamux-peer'));
  });
  after(() => cleanup());

  it('Go client -> kata-ts server: 32 concurrent streams larger than the window, both directions, ping, go-away', async () => {
    const socketPath = path.join(dir, 'ts-server.sock');
    const sessions: YamuxSession[] = [];
    const handled: Promise<void>[] = [];
    let refusedAfterGoAway = '';
    const server = net.createServer((conn) => {
      const session = new YamuxSession(conn, { role: 'server' });
      sessions.push(session);
      session.on('go-away', () => {
        try {
          session.open();
        } catch (err) {
          refusedAfterGoAway = (err as Error).message;
        }
      });
      session.on('stream', (s: YamuxStream) => {
        // The Go client closes its session right after its last read, so its final FINs may never arrive.
        s.on('error', () => undefined);
        handled.push(hashLengthPrefixed(s));
      });
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const size = 600 * 1024; // more than twice the 256 KiB window: needs window updates
    const { stdout } = await execa(peer, ['client', socketPath, '32', String(size)], { timeout: 60_000 });
    assert.match(stdout, new RegExp(`^ok streams=32 size=${size} ping=`, 'm'));
    await Promise.all(handled);
    assert.equal(handled.length, 32);
    assert.match(refusedAfterGoAway, /go-away/);
    server.close();
    sessions.forEach((s) => s.close());
  });

  /** The Go peer serving on a socket of the test's, and our client session on it. */
  async function goServerSession(name: string): Promise<{ server: ResultPromise; session: YamuxSession }> {
    const socketPath = path.join(dir, name);
    const server: ResultPromise = execa(peer, ['server', socketPath], { timeout: 60_000, buffer: true });
    await new Promise<void>((resolve) => {
      server.stdout?.once('data', () => resolve());
    });
    const conn = net.connect(socketPath);
    await new Promise((resolve) => conn.once('connect', resolve));
    return { server, session: new YamuxSession(conn, { role: 'client' }) };
  }

  it('kata-ts client -> Go server: 32 concurrent streams, half-close then read, ping and go-away', async () => {
    const { server, session } = await goServerSession('go-server.sock');
    const rtt = await session.ping();
    assert.ok(rtt >= 0);
    const size = 700 * 1024;
    const results = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const stream = session.open();
        const data = payload(i, size);
        stream.end(data); // write then half-close
        const answer = (await readAll(stream)).toString();
        return answer === `${size} ${createHash('sha256').update(data).digest('hex')}`;
      }),
    );
    assert.deepEqual(results, Array(32).fill(true));
    assert.equal(session.streamCount, 0, 'fully closed streams are forgotten');
    session.goAway();
    session.close();
    const { stdout } = await server;
    assert.match(String(stdout), /session ended/);
  });

  it('a stream destroyed after our FIN, once the Go side has closed too: no reset for a stream Go has forgotten', async () => {
    // As grpc-js closes a connection: end() (FIN), then destroy() as soon as the answer is in.
    // Go forgets a stream once both FINs passed; a reset then is Kata's agent's "frame for missing stream".
    const { server, session } = await goServerSession('go-server-rst.sock');
    for (let i = 0; i < 16; i++) {
      const stream = session.open();
      stream.end(payload(i, 1000));
      await new Promise<void>((resolve) => stream.once('data', () => {
        stream.destroy();
        resolve();
      }));
    }
    await session.ping();
    session.goAway();
    session.close();
    const { stderr } = await server;
    assert.doesNotMatch(String(stderr), /missing stream/, String(stderr));
  });

  it('a peer that sends go-away refuses our new streams, and a dead connection fails open streams', async () => {
    const socketPath = path.join(dir, 'go-server-2.sock');
    const server: ResultPromise = execa(peer, ['server', socketPath], { timeout: 60_000 });
    await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
    const conn = net.connect(socketPath);
    await new Promise((resolve) => conn.once('connect', resolve));
    const session = new YamuxSession(conn, { role: 'client' });
    const stream = session.open();
    stream.write('partial');
    const failed = new Promise<Error>((resolve) => stream.on('error', resolve));
    server.kill('SIGKILL');
    await server.catch(() => undefined);
    assert.match((await failed).message, /yamux connection|ended|closed|ECONNRESET/);
    assert.equal(session.isClosed, true);
    assert.throws(() => session.open(), /closed/);
  });
});

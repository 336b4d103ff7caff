import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { acceptAnyAuthority, AuthorityRewriter, safeAuthority } from '../../src/transport/http2-authority.js';

const kataAuthority = 'unix:///run/vc/sbs/0123456789abcdef/proxy.sock';

/** An HTTP/2 server on a TCP port whose connections go through `wrap`; it answers each request with what it got. */
async function echoServer(wrap: (socket: Duplex) => Duplex): Promise<{ port: number; close: () => void }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end(JSON.stringify({ authority: headers[':authority'], big: String(headers['x-big'] ?? '').length, path: headers[':path'] }));
  });
  const listener = net.createServer((socket) => server.emit('connection', wrap(socket)));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return { port: (listener.address() as net.AddressInfo).port, close: () => listener.close() };
}

/** One request on the session: its answer, or the stream's reset code. */
function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ body?: Record<string, unknown>; rst?: number }> {
  return new Promise((resolve) => {
    const req = session.request(headers);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('error', () => undefined);
    req.on('close', () => resolve(req.rstCode ? { rst: req.rstCode } : { body: JSON.parse(body) as Record<string, unknown> }));
    req.end();
  });
}

describe('HTTP/2 :authority as Kata 1.x sends it', () => {
  let plain: Awaited<ReturnType<typeof echoServer>>;
  let rewriting: Awaited<ReturnType<typeof echoServer>>;
  before(async () => {
    plain = await echoServer((socket) => socket);
    rewriting = await echoServer(acceptAnyAuthority);
  });
  after(() => {
    plain.close();
    rewriting.close();
  });

  it('percent-encodes only what nghttp2 refuses', () => {
    assert.equal(safeAuthority(kataAuthority), 'unix:%2F%2F%2Frun%2Fvc%2Fsbs%2F0123456789abcdef%2Fproxy.sock');
    assert.equal(safeAuthority('localhost:1024'), 'localhost:1024');
    assert.equal(safeAuthority('[::1]:80'), '[::1]:80');
  });

  it('without the rewriter Node resets the stream (the failure Kata\'s runtime met)', async () => {
    const session = http2.connect(`http://127.0.0.1:${plain.port}`);
    const answer = await request(session, { ':path': '/grpc.Health/Check', ':authority': kataAuthority });
    session.close();
    assert.equal(answer.rst, http2.constants.NGHTTP2_PROTOCOL_ERROR);
  });

  it('through it: every request answers, with indexed, padded and continued header blocks on one connection', async () => {
    // Maximum padding, and a 40 kB header: HEADERS with PADDED, and CONTINUATION frames.
    const session = http2.connect(`http://127.0.0.1:${rewriting.port}`, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    for (let i = 0; i < 20; i++) {
      const headers: http2.OutgoingHttpHeaders = { ':path': `/grpc.Health/Check/${i}`, ':authority': kataAuthority, 'user-agent': 'grpc-go/1.11.1' };
      if (i % 5 === 4) headers['x-big'] = 'b'.repeat(40_000);
      const answer = await request(session, headers);
      assert.deepEqual(answer.body, { authority: safeAuthority(kataAuthority), big: i % 5 === 4 ? 40_000 : 0, path: `/grpc.Health/Check/${i}` });
    }
    session.close();
  });

  it('passes a stream that is not HTTP/2 through untouched, and cuts a malformed header block', () => {
    const other = new AuthorityRewriter();
    assert.equal(other.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')).toString(), 'GET / HTTP/1.1\r\n\r\n');
    const broken = new AuthorityRewriter();
    broken.push(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    // A HEADERS frame whose block indexes a table entry that does not exist.
    const bad = Buffer.from([0, 0, 1, 0x1, 0x5, 0, 0, 0, 1, 0xff]);
    assert.throws(() => broken.push(bad));
  });
});

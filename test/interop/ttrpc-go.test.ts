import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import protobuf from 'protobufjs';
import { TtrpcClient } from '../../src/ttrpc/ttrpc-client.js';
import { TtrpcError } from '../../src/ttrpc/ttrpc-error.js';
import { StatusCode } from '../../src/ttrpc/ttrpc-messages.js';
import { TtrpcServer, type TtrpcCallContext } from '../../src/ttrpc/ttrpc-server.js';
import { buildGoPeer } from '../helpers/go-build.js';
import { tempDir } from '../helpers/fixtures.js';

const service = 'kata.ts.test.Echo';
// google.protobuf.StringValue: the Go peer's message.
const stringValue = protobuf.Root.fromJSON({ nested: { StringValue: { fields: { value: { type: 'string', id: 1 } } } } }).lookupType('StringValue');
const encode = (value: string): Uint8Array => stringValue.encode({ value }).finish();
const decode = (bytes: Uint8Array): string => (stringValue.decode(bytes) as unknown as { value: string }).value;

/** Our side of the same service the Go peer serves: Echo (with "wait:MS:text" and the "who" metadata) and Fail. */
function echoServer(): TtrpcServer {
  const server = new TtrpcServer();
  server.register(service, {
    Echo: async (payload: Buffer, context: TtrpcCallContext) => {
      let text = decode(payload);
      const wait = /^wait:(\d+):(.*)$/s.exec(text);
      if (wait) {
        await sleep(Number(wait[1]));
        text = wait[2] ?? '';
      }
      const who = context.metadata.filter((kv) => kv.key === 'who').map((kv) => kv.value);
      return encode(`echo: ${text}${who.length ? ` (who=${who.join(',')})` : ''}`);
    },
    Fail: async () => {
      throw new TtrpcError(StatusCode.NotFound, 'no such thing');
    },
  });
  return server;
}

/** ttrpc against containerd's Go implementation (Debian's golang-github-containerd-ttrpc-dev), both ways. */
describe('ttrpc against containerd/ttrpc (Go)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let peer: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-ttrpc-'));
    peer = await buildGoPeer('test/interop/ttrpc-peer', path.join(dir, 'ttrpc-peer'));
  });
  after(() => cleanup());

  it('our client calls a Go server: concurrent calls answered out of order, metadata, 1 MiB, status codes', { timeout: 60_000 }, async () => {
    const socket = path.join(dir, 'go-server.sock');
    const server: ResultPromise = execa(peer, ['serve', socket], { stdin: 'pipe' });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.once('data', () => resolve());
        server.once('exit', () => reject(new Error('the Go server exited')));
      });
      const client = await TtrpcClient.connect(socket);
      const order: string[] = [];
      const slow = client.call(service, 'Echo', encode('wait:300:slow')).then((b) => (order.push('slow'), decode(b)));
      const fast = client.call(service, 'Echo', encode('fast')).then((b) => (order.push('fast'), decode(b)));
      assert.deepEqual(await Promise.all([slow, fast]), ['echo: slow', 'echo: fast']);
      assert.deepEqual(order, ['fast', 'slow'], 'the later call was answered first, on its own stream');
      assert.equal(decode(await client.call(service, 'Echo', encode('hello'), { metadata: [{ key: 'who', value: 'ts' }] })), 'echo: hello (who=ts)');
      const large = 'y'.repeat(1 << 20);
      assert.equal(decode(await client.call(service, 'Echo', encode(large), { timeoutMs: 10_000 })), `echo: ${large}`);
      await assert.rejects(client.call(service, 'Fail', encode('')), { name: 'TtrpcError', code: StatusCode.NotFound, message: 'no such thing' });
      await assert.rejects(client.call(service, 'Nope', encode('')), { code: StatusCode.Unimplemented, message: /method Nope/ });
      await assert.rejects(client.call('no.such.Service', 'Echo', encode('')), { code: StatusCode.Unimplemented, message: /service no.such.Service/ });
      client.close();
    } finally {
      server.stdin?.end();
      await server.catch(() => undefined);
    }
  });

  it('a Go client calls our server: the same answers, read by Go', { timeout: 60_000 }, async () => {
    const socket = path.join(dir, 'ts-server.sock');
    const server = echoServer();
    await server.listen(socket);
    try {
      const run = await execa(peer, ['call', socket]);
      const results = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { call: string; value?: string; code?: string; message?: string });
      assert.deepEqual(results.map((r) => r.call), ['fast', 'slow', 'metadata', 'large', 'fail', 'unknown'], 'the slow call, asked first, came back last');
      assert.equal(results[0]?.value, 'echo: fast');
      assert.equal(results[1]?.value, 'echo: slow');
      assert.equal(results[2]?.value, 'echo: hello (who=go)');
      assert.equal(results[3]?.value, `echo: ${'x'.repeat(1 << 20)}`);
      assert.deepEqual(results[4], { call: 'fail', code: 'NotFound', message: 'no such thing' });
      assert.equal(results[5]?.code, 'Unimplemented');
      assert.match(results[5]?.message ?? '', /method Nope/);
    } finally {
      await server.close();
    }
  });
});

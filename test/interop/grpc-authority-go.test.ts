import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { execa } from 'execa';
import { loadAgentProtocol } from '../../src/agent-protocol/load-protos.js';
import { AgentLog } from '../../src/guest-agent/agent-log.js';
import { healthHandlers } from '../../src/guest-agent/agent-service.js';
import { acceptAnyAuthority } from '../../src/transport/http2-authority.js';
import { buildGoPeer } from '../helpers/go-build.js';
import { tempDir } from '../helpers/fixtures.js';

const kataAuthority = 'unix:///run/vc/sbs/0123456789abcdef/proxy.sock';

/** The agent's gRPC server (its real health service) on a unix socket, wired as the agent wires its connections. */
async function agentServer(socketPath: string, wrap: boolean): Promise<net.Server> {
  const protocol = loadAgentProtocol();
  const server = new grpc.Server();
  server.addService(protocol.healthService.service, healthHandlers(new AgentLog(false)));
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = net.createServer((socket) => injector.injectConnection(wrap ? acceptAnyAuthority(socket) : socket));
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  return listener;
}

/**
 * grpc-go as Kata 1.x's runtime uses it, with its `:authority` of
 * `unix:///run/vc/sbs/<id>/proxy.sock`, against the agent's server: Node
 * resets every call without the agent's authority handling, and answers
 * them all with it.
 */
describe('the agent\'s gRPC server and Kata 1.x\'s :authority (grpc-go)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let peer: string;
  const servers: net.Server[] = [];

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-authority-'));
    peer = await buildGoPeer('test/interop/grpc-authority-peer', path.join(dir, 'grpc-authority-peer'));
  });
  after(async () => {
    for (const server of servers) server.close();
    await cleanup();
  });

  async function callsWith(wrap: boolean): Promise<Array<{ method: string; response?: string; error?: string }>> {
    const socket = path.join(dir, wrap ? 'agent.sock' : 'plain.sock');
    servers.push(await agentServer(socket, wrap));
    const r = await execa(peer, [socket, kataAuthority, '20'], { timeout: 60_000 });
    return r.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { method: string; response?: string; error?: string });
  }

  it('without it, Node refuses the calls (the RST_STREAM Kata\'s runtime got)', { timeout: 90_000 }, async () => {
    const calls = await callsWith(false);
    assert.equal(calls.length, 21);
    for (const call of calls) assert.match(call.error ?? '', /RST_STREAM|PROTOCOL_ERROR|Internal/, JSON.stringify(call));
  });

  it('with it, 20 Checks answer SERVING and Version answers, on one connection', { timeout: 90_000 }, async () => {
    const calls = await callsWith(true);
    assert.equal(calls.length, 21);
    for (const call of calls.slice(0, 20)) assert.deepEqual(call, { method: '/grpc.Health/Check', response: '0801' });
    const version = Buffer.from(calls[20]?.response ?? '', 'hex').toString('latin1');
    assert.match(version, /\d+\.\d+\.\d+/, JSON.stringify(calls[20]));
  });
});

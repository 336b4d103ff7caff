import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AgentClient } from '../../src/agent-client/agent-client.js';
import { loadAgentProtocol } from '../../src/agent-protocol/load-protos.js';
import { tempDir } from '../helpers/fixtures.js';

/**
 * WaitProcess outlives any one call's deadline: a deadline that passes means
 * "still running", and the wait is made again (a 24 h deadline once made a
 * live container look stopped). A fake agent answers only the third call.
 */
describe('agent client: WaitProcess past its call deadline', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: grpc.Server;
  let calls = 0;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-wait-'));
    const protocol = loadAgentProtocol();
    server = new grpc.Server();
    const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<unknown>): void => callback({ code: grpc.status.UNIMPLEMENTED });
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(protocol.agentService.service)) handlers[name] = unimplemented;
    handlers.WaitProcess = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
      calls++;
      // The first two outlast the client's deadline, as a long-running process does.
      if (calls < 3) void sleep(600).then(() => callback(null, { status: 0 }));
      else callback(null, { status: 7 });
    };
    server.addService(protocol.agentService.service, handlers);
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${path.join(dir, 'agent.sock')}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  });
  after(async () => {
    server.forceShutdown();
    await cleanup();
  });

  it('waits again after DEADLINE_EXCEEDED and returns the real status', async () => {
    const client = new AgentClient(`unix://${path.join(dir, 'agent.sock')}`);
    try {
      assert.equal(await client.waitProcess('c', 'c', 200), 7);
      assert.equal(calls, 3);
    } finally {
      client.close();
    }
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AgentClient } from '../../src/agent-client/agent-client.js';
import { loadAgentProtocol } from '../../src/agent-protocol/load-protos.js';
import { relayProcess } from '../../src/pod/process-relay.js';
import { Logger } from '../../src/util/logger.js';

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({ write: (chunk: Buffer, _e, cb) => (chunks.push(chunk), cb()) });
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

const quiet = new Logger({ format: 'text', debug: false });

/** The agent as the relay uses it, scripted. */
function fakeAgent(script: { readStdout: () => Promise<Buffer | undefined>; waitProcess?: () => Promise<number> }): AgentClient {
  return {
    readStdout: script.readStdout,
    readStderr: async () => undefined,
    waitProcess: script.waitProcess ?? (async () => 3),
    writeStdin: async () => 0,
    closeStdin: async () => undefined,
  } as unknown as AgentClient;
}

describe('process relay', () => {
  it('relays output that keeps coming after the exit, past any fixed time limit', { timeout: 20_000 }, async () => {
    const chunks = 'abcdefghij'.split('');
    const out = sink();
    const agent = fakeAgent({
      readStdout: async () => {
        const next = chunks.shift();
        if (next === undefined) return undefined;
        await sleep(600); // 10 chunks: 6 s in all
        return Buffer.from(next);
      },
    });
    const status = await relayProcess(agent, { containerId: 'c', execId: 'c', tty: false }, { input: new PassThrough(), output: out.stream, errorOutput: sink().stream }, quiet);
    assert.equal(status, 3);
    assert.equal(out.text(), 'abcdefghij');
  });

  it('reads the output to EOF before WaitProcess: Kata 1.x\'s agent forgets a waited process, unread output and all', { timeout: 20_000 }, async () => {
    const chunks = ['a', 'b', 'c'];
    let forgotten = false;
    const out = sink();
    const agent = fakeAgent({
      readStdout: async () => {
        if (forgotten) throw new Error('process not found');
        await sleep(200);
        return chunks.length > 0 ? Buffer.from(chunks.shift() as string) : undefined;
      },
      waitProcess: async () => {
        forgotten = true;
        return 3;
      },
    });
    const status = await relayProcess(agent, { containerId: 'c', execId: 'c', tty: false }, { input: new PassThrough(), output: out.stream, errorOutput: sink().stream }, quiet);
    assert.equal(status, 3);
    assert.equal(out.text(), 'abc');
  });
});

describe('agent client WaitProcess', () => {
  it('waits past the deadline of one call: a passed deadline means "still running", not an exit', { timeout: 20_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-wait-'));
    const socket = path.join(dir, 'agent.sock');
    const server = new grpc.Server();
    const started = Date.now();
    server.addService(loadAgentProtocol().agentService.service, {
      WaitProcess: (_call: unknown, callback: grpc.sendUnaryData<{ status: number }>) => {
        const left = 700 - (Date.now() - started);
        if (left <= 0) callback(null, { status: 7 });
        // A call that outlives its deadline: the client gives up on it and asks again.
        else setTimeout(() => callback(null, { status: 7 }), left);
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    const client = new AgentClient(`unix://${socket}`);
    try {
      assert.equal(await client.waitProcess('c', 'c', 150), 7);
      assert.ok(Date.now() - started >= 700);
    } finally {
      client.close();
      server.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

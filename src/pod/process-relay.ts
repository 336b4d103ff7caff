import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentCallError, type AgentClient } from '../agent-client/agent-client.js';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** Exit status when the VM went away under the process: its status is lost (Kata reports 255 too). */
export const lostStatus = 255;

export interface RelayTarget {
  containerId: string;
  execId: string;
  tty: boolean;
}

export interface RelayIo {
  input: Readable;
  output: Writable;
  errorOutput: Writable;
}

/**
 * Relays one container process's I/O between the agent and the stdio a
 * carrier handed over, until the process exits; resolves with its status
 * (128 + signal when it was killed). Output written just before the exit is
 * drained, but never waited for forever (a daemonized child may hold it open).
 */
export async function relayProcess(agent: AgentClient, target: RelayTarget, io: RelayIo, logger: Logger): Promise<number> {
  const { containerId, execId } = target;
  void pumpInput(agent, target, io.input, logger);
  const stdout = pumpOutput(() => agent.readStdout(containerId, execId), io.output, logger);
  const stderr = target.tty ? Promise.resolve() : pumpOutput(() => agent.readStderr(containerId, execId), io.errorOutput, logger);
  try {
    const status = await agent.waitProcess(containerId, execId);
    await Promise.race([Promise.all([stdout, stderr]), sleep(5000)]);
    return status;
  } catch (err) {
    logger.error(`container ${containerId} process ${execId}: ${messageOf(err)}`);
    return lostStatus;
  }
}

async function pumpInput(agent: AgentClient, target: RelayTarget, input: Readable, logger: Logger): Promise<void> {
  const { containerId, execId } = target;
  try {
    for await (const chunk of input.iterator({ destroyOnReturn: false })) {
      await agent.writeStdin(containerId, execId, chunk as Buffer);
    }
    // A terminal has no EOF to pass on: closing it would hang up the process.
    if (!target.tty) await agent.closeStdin(containerId, execId);
  } catch (err) {
    if (!(err instanceof AgentCallError)) logger.debug(`stdin: ${messageOf(err)}`);
  }
}

/**
 * Copies one output stream of the process until EOF. A failed read (a
 * connection not ready or broken) is not EOF: it is logged and retried for
 * a while instead of cutting the output short.
 */
async function pumpOutput(read: () => Promise<Buffer | undefined>, output: Writable, logger: Logger): Promise<void> {
  let failures = 0;
  for (;;) {
    let chunk: Buffer | undefined;
    try {
      chunk = await read();
      failures = 0;
    } catch (err) {
      logger.debug(`reading output: ${messageOf(err)}`);
      if (++failures > 50) return;
      await sleep(100);
      continue;
    }
    if (!chunk) return;
    if (!output.destroyed) await new Promise<void>((resolve) => output.write(chunk, () => resolve()));
  }
}

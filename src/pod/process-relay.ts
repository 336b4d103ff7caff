import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentCallError, type AgentClient } from '../agent-client/agent-client.js';
import { errnoCode, messageOf } from '../util/errors.js';
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
 * (128 + signal when it was killed). Output is read to EOF before WaitProcess,
 * as Kata 1.x's shim does: its agent forgets a process once it has been waited
 * for, output not yet read included. (The agent ends the output of an exited
 * process whose pipe a leftover child holds open once it has been silent.)
 */
export async function relayProcess(agent: AgentClient, target: RelayTarget, io: RelayIo, logger: Logger, onOutput: () => void = () => undefined): Promise<number> {
  const { containerId, execId } = target;
  void pumpInput(agent, target, io.input, logger);
  const stdout = pumpOutput(() => agent.readStdout(containerId, execId), io.output, logger, onOutput);
  const stderr = target.tty ? Promise.resolve() : pumpOutput(() => agent.readStderr(containerId, execId), io.errorOutput, logger, onOutput);
  await Promise.all([stdout, stderr]);
  try {
    return await agent.waitProcess(containerId, execId);
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
    // Input the process can no longer take (it exited, or closed its stdin) is expected; anything else is said.
    const closed = (err instanceof AgentCallError && /closed|not found|exited/i.test(err.details)) || errnoCode(err) === 'ERR_STREAM_PREMATURE_CLOSE';
    if (closed) logger.debug(`stdin of ${containerId} process ${execId}: ${messageOf(err)}`);
    else logger.warn(`stdin of ${containerId} process ${execId} lost input: ${messageOf(err)}`);
  }
}

/**
 * Copies one output stream of the process until EOF. A failed read (a
 * connection not ready or broken) is not EOF: it is retried for a while, and
 * giving up (output lost) is a warning, never silent.
 */
async function pumpOutput(read: () => Promise<Buffer | undefined>, output: Writable, logger: Logger, onOutput: () => void): Promise<void> {
  let failures = 0;
  for (;;) {
    let chunk: Buffer | undefined;
    try {
      chunk = await read();
      failures = 0;
    } catch (err) {
      logger.debug(`reading output: ${messageOf(err)}`);
      if (++failures > 50) {
        logger.warn(`output lost: ${failures} reads failed in a row, the last: ${messageOf(err)}`);
        return;
      }
      await sleep(100);
      continue;
    }
    if (!chunk) return;
    if (!output.destroyed) await new Promise<void>((resolve) => output.write(chunk, () => resolve()));
    onOutput();
  }
}

import type net from 'node:net';
import type { AgentClient } from '../agent-client/agent-client.js';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { encodeMessage, LineReader, type CarrierMessage, type CarrierReply } from './pod-protocol.js';
import type { OutputWatch } from './output-watch.js';
import { passedStdio } from './passed-fd-streams.js';
import { relayProcess, type RelayTarget } from './process-relay.js';

const sigkill = 9;

export interface CarrierLinkContext {
  agent: AgentClient;
  logger: Logger;
  /** Called once the process has exited and its carrier was told (or is gone). */
  onExit(target: RelayTarget, status: number): Promise<void>;
  /** Each attached carrier's way to be told its process is over without waiting for the agent (the VM died). */
  finishers: Set<(status: number) => void>;
  /** Told when a process's output first reaches its caller, and when it is over. */
  outputWatch: OutputWatch;
}

/**
 * One attached carrier: relays its process's I/O through the fds it passed,
 * passes on its signals and window sizes, and tells it the exit status. A
 * carrier that goes away first (SIGKILL) takes its process down with it.
 */
export async function serveCarrier(
  socket: net.Socket,
  attach: Extract<CarrierMessage, { type: 'attach' }>,
  fds: number[],
  rest: LineReader,
  ctx: CarrierLinkContext,
): Promise<void> {
  const target: RelayTarget = { containerId: attach.container, execId: attach.exec, tty: attach.tty };
  const logger = ctx.logger.child({ container: target.containerId, exec: target.execId });
  const reply = (message: CarrierReply): void => {
    if (!socket.destroyed) socket.write(encodeMessage(message));
  };
  let io;
  try {
    io = passedStdio(fds);
  } catch (err) {
    reply({ type: 'error', message: messageOf(err) });
    socket.end();
    return;
  }
  let finished = false;
  const finish = (status: number): void => {
    if (finished) return;
    finished = true;
    reply({ type: 'exit', status });
    socket.end();
  };
  ctx.finishers.add(finish);
  socket.on('close', () => {
    ctx.finishers.delete(finish);
    if (finished) return;
    logger.info('the carrier went away: killing its process');
    ctx.agent.signalProcess(target.containerId, target.execId, sigkill).catch((err: unknown) => logger.debug(`kill: ${messageOf(err)}`));
  });
  socket.on('error', () => undefined);
  const onMessage = (message: unknown): void => {
    const m = message as CarrierMessage;
    if (m.type === 'signal') {
      ctx.agent.signalProcess(target.containerId, target.execId, m.signal).catch((err: unknown) => logger.debug(`signal ${m.signal}: ${messageOf(err)}`));
    } else if (m.type === 'resize' && m.rows > 0 && m.columns > 0) {
      ctx.agent.ttyWinResize(target.containerId, target.execId, m.rows, m.columns).catch((err: unknown) => logger.debug(`window size: ${messageOf(err)}`));
    }
  };
  rest.push('', onMessage);
  socket.on('data', (chunk: Buffer) => {
    try {
      rest.push(chunk, onMessage);
    } catch (err) {
      logger.debug(`bad carrier message: ${messageOf(err)}`);
    }
  });
  socket.resume();
  reply({ type: 'attached' });
  const status = await relayProcess(ctx.agent, target, io, logger, () => ctx.outputWatch.outputWritten(target.containerId, target.execId));
  ctx.outputWatch.exited(target.containerId, target.execId);
  io.close();
  if (finished) return;
  finish(status);
  await ctx.onExit(target, status);
}

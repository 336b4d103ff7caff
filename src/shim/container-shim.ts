import { closeSync } from 'node:fs';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import tty from 'node:tty';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentCallError, AgentClient } from '../agent-client/agent-client.js';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { loadNativeAddon } from '../util/native-addon.js';

export interface ShimOptions {
  agentUrl: string;
  containerId: string;
  execId: string;
  /** Send a new pty's master there (OCI console socket) and relay its other end. */
  consoleSocket?: string;
  /** The process has a terminal: stdio is the calling terminal (raw mode) unless consoleSocket is set. */
  tty: boolean;
  logger: Logger;
  /** Called once stdio and signal handling are set up (a console socket has its pty master). */
  onReady?: () => void;
}

/** The caller-facing ends of the process's stdio, and how to read the window size. */
interface ShimIo {
  input: Readable;
  output: Writable;
  errorOutput: Writable;
  windowSize?: () => { rows: number; columns: number } | undefined;
  restore(): void;
}

/** Signals the shim passes on to the container process (the shim's pid is the container's pid for callers). */
const forwardedSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT'];

/** Exit status when the VM went away under the process: its status is lost. */
export const lostStatus = 255;

/**
 * The shim: relays stdio between the caller and one container process in
 * the guest, forwards signals and window sizes, and resolves with the
 * process's exit status (128 + signal when it was killed).
 */
export async function runShim(options: ShimOptions): Promise<number> {
  const { containerId, execId, logger } = options;
  const client = new AgentClient(options.agentUrl);
  const io = options.consoleSocket ? consoleIo(options.consoleSocket) : stdioIo(options.tty);
  const onSignal = (signal: NodeJS.Signals): void => {
    client.signalProcess(containerId, execId, os.constants.signals[signal]).catch((err: unknown) => logger.debug(`forwarding ${signal}: ${messageOf(err)}`));
  };
  for (const signal of forwardedSignals) process.on(signal, onSignal);
  const resize = (): void => {
    const size = io.windowSize?.();
    if (!size || size.rows === 0 || size.columns === 0) return;
    client.ttyWinResize(containerId, execId, size.rows, size.columns).catch((err: unknown) => logger.debug(`window size: ${messageOf(err)}`));
  };
  if (io.windowSize) {
    process.on('SIGWINCH', resize);
    resize();
  }
  options.onReady?.();
  try {
    void pumpInput(client, options, io.input);
    const stdout = pumpOutput(() => client.readStdout(containerId, execId), io.output, logger);
    const stderr = options.tty ? Promise.resolve() : pumpOutput(() => client.readStderr(containerId, execId), io.errorOutput, logger);
    const status = await client.waitProcess(containerId, execId);
    // Output written just before the exit is still in the agent: drain it, but never wait forever
    // (a daemonized child may hold the pipe open).
    await Promise.race([Promise.all([stdout, stderr]), sleep(5000)]);
    return status;
  } catch (err) {
    logger.error(`container ${containerId} process ${execId}: ${messageOf(err)}`);
    return lostStatus;
  } finally {
    for (const signal of forwardedSignals) process.off(signal, onSignal);
    process.off('SIGWINCH', resize);
    io.restore();
    io.input.destroy();
    client.close();
  }
}

async function pumpInput(client: AgentClient, options: ShimOptions, input: Readable): Promise<void> {
  const { containerId, execId } = options;
  try {
    for await (const chunk of input.iterator({ destroyOnReturn: false })) {
      await client.writeStdin(containerId, execId, chunk as Buffer);
    }
    // A terminal has no EOF to pass on: closing it would hang up the process.
    if (!options.tty) await client.closeStdin(containerId, execId);
  } catch (err) {
    if (!(err instanceof AgentCallError)) options.logger.debug(`stdin: ${messageOf(err)}`);
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

function stdioIo(terminal: boolean): ShimIo {
  const stdin = process.stdin;
  // The guest's pty does the terminal processing; this side passes bytes through untouched.
  const saved = terminal && stdin.isTTY ? loadNativeAddon().makeRaw(0) : undefined;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined); // a caller that stopped reading
  return {
    input: stdin,
    output: process.stdout,
    errorOutput: process.stderr,
    windowSize: terminal && tty.isatty(1) ? () => loadNativeAddon().getWindowSize(1) : undefined,
    restore: () => {
      if (saved) loadNativeAddon().restoreTermios(0, saved);
    },
  };
}

/**
 * A new pty: its master goes to the caller's console socket (as runc does);
 * the shim keeps the slave as its controlling terminal, so the caller's
 * window size changes reach it as SIGWINCH.
 */
function consoleIo(consoleSocket: string): ShimIo {
  const native = loadNativeAddon();
  const pty = native.openPty();
  try {
    native.sendFd(consoleSocket, pty.master, pty.name);
  } finally {
    closeSync(pty.master);
  }
  try {
    native.setControllingTerminal(pty.slave);
  } catch {
    // not a session leader (started in the foreground): window sizes are still read on SIGWINCH
  }
  native.makeRaw(pty.slave);
  const input = new tty.ReadStream(pty.slave);
  const output = new tty.WriteStream(pty.slave);
  output.on('error', () => undefined);
  return {
    input,
    output,
    errorOutput: output,
    windowSize: () => native.getWindowSize(pty.slave),
    restore: () => undefined,
  };
}

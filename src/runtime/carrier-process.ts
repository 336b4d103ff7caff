import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import tty from 'node:tty';
import { podSocketPath } from '../pod/pod-layout.js';
import { KataError } from '../util/errors.js';
import { exitStatusOf } from '../util/exit-status.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { carrierBinaryPath } from '../util/package-root.js';
import { identify, type ProcessIdentity } from '../util/process-identity.js';
import type { LogFormat } from '../util/logger.js';

/** The carrier binary (native/carrier.c, built by npm run build). */
export const carrierPath = carrierBinaryPath;

export interface CarrierSpawnOptions {
  vmDir: string;
  containerId: string;
  execId: string;
  /** Send a new pty's master there (OCI console socket); the carrier's stdio is its slave. */
  consoleSocket?: string;
  tty: boolean;
  /** Detached (own session, outlives this command) unless the command waits for it in the foreground. */
  detached: boolean;
  /** How to start the pod process again if it is gone (podCommand). */
  podCommand: string[];
  /** stdin, stdout and stderr: this command's own unless given (fds, or 'pipe' / 'ignore'). */
  stdio?: CarrierStdio;
  logFile?: string;
  logFormat?: LogFormat;
}

export type CarrierStdio = [number | 'pipe' | 'ignore', number | 'pipe' | 'ignore', number | 'pipe' | 'ignore'];

export interface SpawnedCarrier {
  id: ProcessIdentity;
  child: ChildProcess;
  /** A foreground carrier on the calling terminal: puts the terminal back as it was. */
  restoreTerminal?: () => void;
}

/** The fd on which a carrier reports that it is attached ("ready") or why not. */
const readyFd = 3;

/**
 * Starts a carrier with this command's stdio (the caller's pipes, fifos or
 * terminal; with a console socket, a new pty whose master goes to the caller)
 * and waits until it has attached to the pod process: by then the process's
 * I/O is relayed, and a console socket has its pty master, as callers expect
 * when create returns.
 */
export async function spawnCarrier(options: CarrierSpawnOptions, readyTimeoutMs = 30_000): Promise<SpawnedCarrier> {
  let stdio: StdioOptions = [...(options.stdio ?? ['inherit', 'inherit', 'inherit']), 'pipe'];
  let slave: number | undefined;
  if (options.consoleSocket) {
    const native = loadNativeAddon();
    const pty = native.openPty();
    try {
      native.sendFd(options.consoleSocket, pty.master, pty.name);
    } catch (err) {
      closeSync(pty.slave);
      throw new KataError('IO', `cannot send the terminal to console socket ${options.consoleSocket}: ${(err as Error).message}`, { cause: err });
    } finally {
      closeSync(pty.master);
    }
    // The guest's pty does the terminal processing; this one passes bytes through untouched.
    native.makeRaw(pty.slave);
    slave = pty.slave;
    stdio = [slave, slave, slave, 'pipe'];
  }
  // In the foreground on the calling terminal: raw, so that keys reach the guest's pty as they are.
  let restoreTerminal: (() => void) | undefined;
  if (options.tty && !options.consoleSocket && !options.detached && tty.isatty(0)) {
    const native = loadNativeAddon();
    const saved = native.makeRaw(0);
    restoreTerminal = () => native.restoreTermios(0, saved);
  }
  const args = [
    '--socket', podSocketPath(options.vmDir), '--container', options.containerId, '--exec', options.execId, '--ready-fd', String(readyFd),
    ...(options.tty ? ['--tty'] : []), ...(options.logFile ? ['--log', options.logFile, '--log-format', options.logFormat ?? 'text'] : []), '--', ...options.podCommand,
  ];
  const child = spawn(carrierPath, args, { detached: options.detached, stdio });
  if (slave !== undefined) closeSync(slave);
  const readyPipe = child.stdio[readyFd] as Readable;
  try {
    const report = await readReport(readyPipe, child, readyTimeoutMs);
    if (report !== 'ready') throw new KataError('VM', `the carrier failed: ${report}`);
    const id = child.pid ? await identify(child.pid) : undefined;
    if (!id) throw new KataError('VM', 'the carrier exited right after starting');
    if (options.detached) child.unref();
    return { id, child, restoreTerminal };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    restoreTerminal?.();
    throw err;
  } finally {
    readyPipe.destroy();
  }
}

function readReport(pipe: Readable, child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve(`no report within ${timeoutMs} ms`), timeoutMs);
    const done = (value: string): void => {
      clearTimeout(timer);
      resolve(value);
    };
    pipe.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) done(text.split('\n')[0] ?? '');
    });
    pipe.on('error', () => undefined);
    child.once('error', (err) => done(`cannot run ${carrierPath}: ${err.message}`));
    child.once('exit', (code, signal) => done(text.trim() || `it exited (${signal ?? `code ${code}`})`));
  });
}

/**
 * Waits for a foreground carrier and returns its exit status (128 + signal if
 * it was killed). Termination signals sent to this command go to the carrier,
 * which passes them on to the container process.
 */
export function waitForCarrier({ child, restoreTerminal }: SpawnedCarrier): Promise<number> {
  const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];
  // SIGINT from a terminal reaches the carrier directly (same process group): ignore it here.
  const forward = (signal: NodeJS.Signals): void => {
    if (signal !== 'SIGINT' && signal !== 'SIGQUIT') child.kill(signal);
  };
  for (const signal of forwarded) process.on(signal, forward);
  return new Promise((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      for (const s of forwarded) process.off(s, forward);
      restoreTerminal?.();
      resolve(exitStatusOf(code, signal));
    };
    if (child.exitCode !== null || child.signalCode !== null) finish(child.exitCode, child.signalCode);
    else child.once('exit', finish);
  });
}

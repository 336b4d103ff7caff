import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { KataError } from '../util/errors.js';
import { exitStatusOf } from '../util/exit-status.js';
import { identify, type ProcessIdentity } from '../util/process-identity.js';
import { kataTsArgv } from './kata-ts-argv.js';
import type { RuntimeContext } from './runtime-context.js';

export interface ShimSpawnOptions {
  agentUrl: string;
  containerId: string;
  execId: string;
  consoleSocket?: string;
  tty: boolean;
  /** Detached (own session, outlives this command) unless the command waits for it in the foreground. */
  detached: boolean;
  log: RuntimeContext['log'];
}

export interface SpawnedShim {
  id: ProcessIdentity;
  child: ChildProcess;
}

/** The fd on which a shim reports that it is set up ("ready") or why not. */
export const shimReadyFd = 3;

/**
 * Starts a shim with this command's stdio (the caller's pipes, fifos or
 * terminal), and waits for it to report ready: by then a console socket has
 * its pty master, as callers expect when create returns.
 */
export async function spawnShim(options: ShimSpawnOptions, readyTimeoutMs = 30_000): Promise<SpawnedShim> {
  const args = kataTsArgv(options.log, [
    'shim',
    '--agent-url', options.agentUrl, '--container', options.containerId, '--exec-id', options.execId,
    ...(options.consoleSocket ? ['--console-socket', options.consoleSocket] : []),
    ...(options.tty ? ['--tty'] : []),
  ]);
  const stdio = options.consoleSocket ? 'ignore' : 'inherit';
  const child = spawn(process.execPath, args, { detached: options.detached, stdio: [stdio, stdio, stdio, 'pipe'] });
  const readyPipe = child.stdio[shimReadyFd] as Readable;
  try {
    const report = await readReport(readyPipe, child, readyTimeoutMs);
    if (report !== 'ready') throw new KataError('VM', `the shim failed: ${report}`);
    const id = child.pid ? await identify(child.pid) : undefined;
    if (!id) throw new KataError('VM', 'the shim exited right after starting');
    if (options.detached) child.unref();
    return { id, child };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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
    child.once('exit', (code, signal) => done(text.trim() || `it exited (${signal ?? `code ${code}`})`));
  });
}

/**
 * Waits for a foreground shim and returns its exit status (128 + signal if
 * it was killed). Termination signals sent to this command go to the shim,
 * which passes them on to the container process.
 */
export function waitForShim(child: ChildProcess): Promise<number> {
  const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];
  // SIGINT from a terminal reaches the shim directly (same process group): ignore it here.
  const forward = (signal: NodeJS.Signals): void => {
    if (signal !== 'SIGINT' && signal !== 'SIGQUIT') child.kill(signal);
  };
  for (const signal of forwarded) process.on(signal, forward);
  return new Promise((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      for (const s of forwarded) process.off(s, forward);
      resolve(exitStatusOf(code, signal));
    };
    if (child.exitCode !== null || child.signalCode !== null) finish(child.exitCode, child.signalCode);
    else child.once('exit', finish);
  });
}

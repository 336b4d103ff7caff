import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { KataError } from '../util/errors.js';
import { kataTsArgv } from './kata-ts-argv.js';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';

/**
 * Starts the proxy as its own process (it outlives this command) and waits
 * for its socket, which appears once the agent has answered the proxy.
 */
export async function spawnProxy(channelSocket: string, listenSocket: string, logFile: string | undefined, readyTimeoutMs: number): Promise<ProcessIdentity> {
  const args = kataTsArgv({ file: logFile }, ['proxy', '--channel', channelSocket, '--listen', listenSocket, '--ready-timeout', String(readyTimeoutMs)]);
  const child = spawn(process.execPath, args, { detached: true, stdio: 'ignore' });
  child.unref();
  const id = child.pid ? await identify(child.pid) : undefined;
  if (!id) throw new KataError('VM', 'the proxy process did not start');
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (await stat(listenSocket).then(() => true, () => false)) return id;
    if (!(await isSameProcessAlive(id))) throw new KataError('VM', 'the proxy exited before the agent answered');
    await sleep(25);
  }
  process.kill(id.pid, 'SIGKILL');
  throw new KataError('TIMEOUT', `the agent did not answer the proxy within ${readyTimeoutMs} ms`);
}

/** SIGTERM, then SIGKILL: only the process we recorded, never by name. */
export async function stopProcess(id: ProcessIdentity, graceMs = 2000): Promise<void> {
  if (!(await isSameProcessAlive(id))) return;
  process.kill(id.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await isSameProcessAlive(id))) await sleep(25);
  if (await isSameProcessAlive(id)) process.kill(id.pid, 'SIGKILL');
}

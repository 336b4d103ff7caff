import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { podSocketPath } from '../pod/pod-layout.js';
import { KataError } from '../util/errors.js';
import { unixSocketAnswers } from '../util/unix-socket.js';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';
import { kataTsArgv } from './kata-ts-argv.js';
import type { RuntimeContext } from './runtime-context.js';

/**
 * The command line of a VM dir's pod process (node and its arguments): create
 * starts it, and a carrier or a command starts it again if it died. `fresh`
 * only for the first one: a later one takes over a live agent session.
 */
export function podCommand(vmDir: string, log: Partial<RuntimeContext['log']>, readyTimeoutMs: number, fresh = false): string[] {
  return [process.execPath, ...kataTsArgv(log, ['pod', '--vm-dir', vmDir, '--ready-timeout', String(readyTimeoutMs), ...(fresh ? ['--fresh'] : [])])];
}

/**
 * Starts a pod process (it outlives this command) and waits until one answers
 * on the socket, which it opens once the agent has answered it. Started again
 * (not fresh), the one that answers may be another's: two carriers or commands
 * may restart it at once, and only one pod process takes the VM. `vmGone`,
 * while a fresh pod process waits for a booting VM, says why the wait is over
 * when the VM has exited (a guest that panics ends QEMU at once).
 */
export async function spawnPod(vmDir: string, log: Partial<RuntimeContext['log']>, readyTimeoutMs: number, fresh: boolean, vmGone?: () => Promise<string | undefined>): Promise<ProcessIdentity> {
  const [node = process.execPath, ...args] = podCommand(vmDir, log, readyTimeoutMs, fresh);
  const child = spawn(node, args, { detached: true, stdio: 'ignore' });
  child.unref();
  const id = child.pid ? await identify(child.pid) : undefined;
  if (!id) throw new KataError('VM', 'the pod process did not start');
  const socket = podSocketPath(vmDir);
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (await unixSocketAnswers(socket)) return id;
    if (fresh && !(await isSameProcessAlive(id))) throw new KataError('VM', 'the pod process exited before the agent answered');
    const gone = await vmGone?.();
    if (gone) {
      if (await isSameProcessAlive(id)) process.kill(id.pid, 'SIGKILL');
      throw new KataError('VM', gone);
    }
    await sleep(25);
  }
  if (await isSameProcessAlive(id)) process.kill(id.pid, 'SIGKILL');
  throw new KataError('TIMEOUT', `the agent did not answer the pod process within ${readyTimeoutMs} ms`);
}

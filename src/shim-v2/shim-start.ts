import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sandboxMembership } from '../runtime/sandbox-membership.js';
import { KataError, messageOf } from '../util/errors.js';
import { unixSocketAnswers } from '../util/unix-socket.js';
import { shimSocketDir, type ShimArgs } from './shim-args.js';

const daemonReadyMs = 10_000;

/** The shim socket of a sandbox: one per containerd (address), namespace and sandbox. */
export function shimSocketPath(args: Pick<ShimArgs, 'address' | 'namespace'>, sandboxId: string): string {
  const hash = createHash('sha256').update(`${args.address}\0${args.namespace}\0${sandboxId}`).digest('hex').slice(0, 24);
  return path.join(shimSocketDir, `${hash}.sock`);
}

/**
 * `start`: containerd runs it in the bundle dir. A container of an existing pod
 * (the CRI sandbox annotations) gets the address of that pod's shim; otherwise
 * a shim daemon starts, detached, logging to the bundle's `log` FIFO. The
 * address goes to stdout (containerd reads it) and to `<bundle>/address`
 * (containerd reads that after a restart).
 */
export async function startShim(args: ShimArgs, selfCommand: string[]): Promise<string> {
  const bundle = process.cwd();
  let annotations: Record<string, string> = {};
  try {
    annotations = (JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as { annotations?: Record<string, string> }).annotations ?? {};
  } catch (err) {
    throw new KataError('USAGE', `cannot read ${path.join(bundle, 'config.json')}: ${messageOf(err)}`);
  }
  const membership = sandboxMembership(args.id, annotations);
  const socket = shimSocketPath(args, membership.sandboxId);
  const address = `unix://${socket}`;
  if (!(await unixSocketAnswers(socket))) {
    if (membership.joins) throw new KataError('NOT_FOUND', `the shim of sandbox ${membership.sandboxId} is not running`);
    await mkdir(shimSocketDir, { recursive: true, mode: 0o700 });
    await spawnDaemon(args, selfCommand, bundle, socket);
  }
  await writeFile(path.join(bundle, 'address'), address);
  return address;
}

async function spawnDaemon(args: ShimArgs, selfCommand: string[], bundle: string, socket: string): Promise<void> {
  let log: number | 'ignore' = 'ignore';
  try {
    // containerd holds the log FIFO open for reading; non-blocking so that the shim never waits on it.
    log = openSync(path.join(bundle, 'log'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    // no reader (or no FIFO): the shim runs without a log
  }
  const [file = process.execPath, ...prefix] = selfCommand;
  const daemonArgs = [
    ...prefix, '-namespace', args.namespace, '-address', args.address, '-publish-binary', args.publishBinary, '-id', args.id,
    ...(args.debug ? ['-debug'] : []), '-socket', socket, 'serve',
  ];
  const child = spawn(file, daemonArgs, { cwd: bundle, detached: true, stdio: ['ignore', 'ignore', log] });
  if (typeof log === 'number') closeSync(log);
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  const deadline = Date.now() + daemonReadyMs;
  while (!(await unixSocketAnswers(socket))) {
    if (exited) throw new KataError('VM', 'the shim daemon exited before it served its socket (see the shim log)');
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new KataError('TIMEOUT', `the shim daemon did not serve ${socket} within ${daemonReadyMs} ms`);
    }
    await sleep(20);
  }
}

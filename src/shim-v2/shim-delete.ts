import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { deleteContainer } from '../runtime/delete-container.js';
import type { RuntimeContext } from '../runtime/runtime-context.js';
import { StateStore } from '../store/state-store.js';
import { isKataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { unmountRootfs } from './rootfs-mounts.js';
import { shimSocketDir, shimStateRoot, type ShimArgs } from './shim-args.js';
import { unixSocketAnswers } from '../util/unix-socket.js';
import { encodeMessage, taskTypes, timestampOf } from './task-messages.js';

/** The dead shim's socket (named in <bundle>/address), unless a shim still serves it (the pod's other containers). */
async function removeDeadShimSocket(bundle: string): Promise<void> {
  const address = await readFile(path.join(bundle, 'address'), 'utf8').catch(() => '');
  const socket = address.trim().replace(/^unix:\/\//, '');
  if (path.dirname(socket) !== shimSocketDir || (await unixSocketAnswers(socket))) return;
  await rm(socket, { force: true });
}

/** What a process killed with SIGKILL exits with: containerd's runc shim reports the same for a dead shim's task. */
const killedStatus = 128 + 9;

/**
 * `delete`: containerd's cleanup after a shim that died. Whatever of the
 * container remains (its state, its carrier, its VM when it was the last
 * container of the sandbox, its rootfs mount) goes; the reply, a
 * DeleteResponse, goes to stdout.
 */
export async function deleteAfterDeadShim(args: ShimArgs, logger: Logger): Promise<Uint8Array> {
  const bundle = args.bundle ?? process.cwd();
  const ctx: RuntimeContext = { store: new StateStore(shimStateRoot(args.namespace)), logger, log: { format: 'json', debug: args.debug } };
  try {
    await deleteContainer(ctx, args.id, true, { vmGoesWithoutGuest: true });
  } catch (err) {
    if (!isKataError(err, 'NOT_FOUND')) logger.warn(`cleaning up container ${args.id}: ${messageOf(err)}`);
  }
  await unmountRootfs(path.resolve(bundle));
  await removeDeadShimSocket(path.resolve(bundle));
  return encodeMessage(`${taskTypes}.DeleteResponse`, { pid: 0, exit_status: killedStatus, exited_at: timestampOf(new Date()) });
}

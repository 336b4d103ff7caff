import { lstat } from 'node:fs/promises';
import { KataError } from '../util/errors.js';

/** --console-socket must name an existing unix socket: checked before anything is created. */
export async function checkConsoleSocket(socketPath: string): Promise<void> {
  const info = await lstat(socketPath).catch(() => undefined);
  if (!info) throw new KataError('USAGE', `--console-socket ${socketPath} does not exist`);
  if (!info.isSocket()) throw new KataError('USAGE', `--console-socket ${socketPath} is not a unix socket`);
}

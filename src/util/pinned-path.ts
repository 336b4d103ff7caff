import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { KataError, messageOf } from './errors.js';

/**
 * A path opened once, so that what was checked is what gets used: a child
 * process that gets the fd as its fd 3 reaches that very file or directory
 * through /proc/self/fd/3, even if the path is swapped for a symlink meanwhile.
 */
export interface PinnedPath {
  /** The path as resolved when it was opened (symlinks followed, as runc follows a bind source's). */
  path: string;
  fd: number;
  isDirectory: boolean;
  isFile: boolean;
  close(): Promise<void>;
}

/** What a command that got the pinned fd as its fd 3 opens to reach it. */
export const passedFdPath = '/proc/self/fd/3';

export async function pinPath(given: string): Promise<PinnedPath> {
  let handle: FileHandle | undefined;
  try {
    const resolved = await realpath(given);
    // No following the last component, and no blocking on a FIFO: it is refused below.
    handle = await open(resolved, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    // A directory on the way swapped for a symlink after realpath: the fd is not where the path said.
    const opened = await readlink(`/proc/self/fd/${handle.fd}`);
    if (opened !== resolved) throw new Error(`it changed while being opened (now ${opened})`);
    const st = await handle.stat();
    const pinned = handle;
    return { path: resolved, fd: pinned.fd, isDirectory: st.isDirectory(), isFile: st.isFile(), close: () => pinned.close() };
  } catch (err) {
    await handle?.close();
    throw new KataError('BAD_BUNDLE', `cannot use ${given}: ${messageOf(err)}`, { cause: err });
  }
}

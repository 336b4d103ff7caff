import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import { loadNativeAddon } from '../util/native-addon.js';

export interface LockOptions {
  /** How long to wait for another kata-ts command to let go, in ms. */
  waitMs?: number;
}

const wouldBlock = 11; // EWOULDBLOCK (EAGAIN) on Linux

/** Opens (creating) the lock file; a directory in its place is proper-lockfile's from an older kata-ts, and goes. */
async function openLockFile(lockPath: string): Promise<FileHandle> {
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW; // libuv adds O_CLOEXEC
  try {
    return await open(lockPath, flags, 0o600);
  } catch (err) {
    if (errnoCode(err) !== 'EISDIR') throw err;
    await rm(lockPath, { recursive: true, force: true });
    return open(lockPath, flags, 0o600);
  }
}

/**
 * Runs fn while holding an exclusive flock(2) on `lockPath` (in `dir`). The
 * kernel drops the lock when its holder exits, killed or not, so there is no
 * stale lock to time out, however long a TCG operation takes. Lock order,
 * where two are taken: the sandbox's, then the container's.
 */
export async function withDirLock<T>(dir: string, lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const waitMs = options.waitMs ?? 300_000;
  let handle: FileHandle;
  try {
    handle = await openLockFile(lockPath);
  } catch (err) {
    throw new KataError('LOCKED', `cannot open the lock of ${dir}: ${messageOf(err)}`, { cause: err });
  }
  try {
    const native = loadNativeAddon();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const rc = native.tryLock(handle.fd);
      if (rc === 0) break;
      if (rc !== wouldBlock) throw new KataError('LOCKED', `cannot lock ${dir}: errno ${rc}`);
      if (Date.now() > deadline) throw new KataError('LOCKED', `${dir} is locked by another kata-ts command (waited ${Math.round(waitMs / 1000)} s)`);
      await sleep(25);
    }
    return await fn();
  } finally {
    await handle.close();
  }
}

import { constants } from 'node:fs';
import { lstat, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import { loadNativeAddon } from '../util/native-addon.js';

export interface LockOptions {
  /** How long to wait for another kata-ts command to let go, in ms. */
  waitMs?: number;
  /** A shared lock: any number of shared holders, never with an exclusive one. */
  shared?: boolean;
}

/** What a lock holder may do besides let go. */
export interface HeldLock {
  /** What the lock guards is gone: the lock file is removed as the lock is let go (waiters then find it gone, or a new one). */
  retire(): void;
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
 * Whether the locked file is still the one at the path: a holder may have
 * removed it (with its directory, or by retiring it) while we waited on it, and
 * a lock on a file nobody else can open any more excludes no one.
 */
async function stillAtPath(handle: FileHandle, lockPath: string): Promise<boolean> {
  const held = await handle.stat();
  const now = await lstat(lockPath).catch(() => undefined);
  return held.nlink > 0 && now !== undefined && now.ino === held.ino && now.dev === held.dev;
}

/** One try: the lock, if no one holds it now and the file is still the one at the path. */
async function tryTake(lockPath: string, shared: boolean): Promise<FileHandle | 'busy'> {
  const handle = await openLockFile(lockPath);
  try {
    const rc = loadNativeAddon().tryLock(handle.fd, shared);
    if (rc === 0 && (await stillAtPath(handle, lockPath))) return handle;
    if (rc !== 0 && rc !== wouldBlock) throw new KataError('LOCKED', `cannot lock ${lockPath}: errno ${rc}`);
  } catch (err) {
    await handle.close();
    throw err;
  }
  await handle.close();
  return 'busy';
}

/** The lock now, or undefined when another holds it (the pod process's lifelong lock). */
export async function tryFileLock(lockPath: string): Promise<{ release(): Promise<void> } | undefined> {
  const taken = await tryTake(lockPath, false);
  if (taken === 'busy') return undefined;
  return { release: () => taken.close() };
}

/**
 * Runs fn while holding a flock(2) on `lockPath` (the lock of `dir`). The
 * kernel drops the lock when its holder exits, killed or not, so there is no
 * stale lock to time out, however long a TCG operation takes. A lock file
 * removed while it was waited on (its directory deleted by the holder) is not
 * taken: the next try opens whatever the path holds now. Lock order, where
 * two are taken: the sandbox's, then the container's.
 */
export async function withDirLock<T>(dir: string, lockPath: string, fn: (lock: HeldLock) => Promise<T>, options: LockOptions = {}): Promise<T> {
  const waitMs = options.waitMs ?? 300_000;
  const deadline = Date.now() + waitMs;
  let handle: FileHandle;
  for (;;) {
    let taken: FileHandle | 'busy';
    try {
      taken = await tryTake(lockPath, options.shared ?? false);
    } catch (err) {
      if (err instanceof KataError) throw err;
      throw new KataError('LOCKED', `cannot open the lock of ${dir}: ${messageOf(err)}`, { cause: err });
    }
    if (taken !== 'busy') {
      handle = taken;
      break;
    }
    if (Date.now() > deadline) throw new KataError('LOCKED', `${dir} is locked by another kata-ts command (waited ${Math.round(waitMs / 1000)} s)`);
    await sleep(25);
  }
  let retired = false;
  try {
    return await fn({ retire: () => void (retired = true) });
  } finally {
    // Removed before it is let go: a waiter that gets it next sees it gone and tries the path again.
    if (retired) await unlink(lockPath).catch(() => undefined);
    await handle.close();
  }
}

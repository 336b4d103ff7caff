import lockfile from 'proper-lockfile';
import { KataError, messageOf } from '../util/errors.js';

export interface LockOptions {
  /** How long to wait for another kata-ts command to let go, in ms. */
  waitMs?: number;
  /** Called when the lock was taken away from us (stale); defaults to ignoring it. */
  onCompromised?: (err: Error) => void;
}

/**
 * Runs fn while holding an exclusive lock on a directory. The lock is a
 * directory that proper-lockfile creates atomically and keeps fresh; a lock
 * left by a killed command goes stale after 10 s.
 */
export async function withDirLock<T>(dir: string, lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: lockPath,
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: Math.max(1, Math.ceil(waitMs / 100)), factor: 1, minTimeout: 100, maxTimeout: 100 },
      onCompromised: options.onCompromised ?? (() => undefined),
    });
  } catch (err) {
    throw new KataError('LOCKED', `${dir} is locked by another kata-ts command: ${messageOf(err)}`, { cause: err });
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

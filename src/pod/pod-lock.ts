import { tryFileLock } from '../store/state-lock.js';
import { podLockPath } from './pod-layout.js';

/**
 * Takes the pod lock of a VM dir for the life of this process: a flock on a
 * file in the root-only VM dir, which the kernel drops however the process
 * dies (no stale lock). Undefined when another pod process holds it.
 */
export function takePodLock(vmDir: string): Promise<{ release(): Promise<void> } | undefined> {
  return tryFileLock(podLockPath(vmDir));
}

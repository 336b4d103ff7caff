import path from 'node:path';

/** The pod process's control socket, in the sandbox's VM dir (root only). */
export function podSocketPath(vmDir: string): string {
  return path.join(vmDir, 'pod.sock');
}

/**
 * An abstract unix socket name held by the one pod process of a VM dir: the
 * kernel releases it when that process dies, however it dies, so it is the
 * lock that keeps a second pod process from starting (no stale lock files).
 */
export function podLockName(vmDir: string): string {
  return `\0kata-ts-pod:${vmDir}`;
}

/** Who the pod process of a VM dir is now (the first one, or one started again since). */
export function podIdentityPath(vmDir: string): string {
  return path.join(vmDir, 'pod.json');
}

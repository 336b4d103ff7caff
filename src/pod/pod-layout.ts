import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProcessIdentity } from '../util/process-identity.js';

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

/** The pod process pod.json names, or undefined when none has started (or the dir is gone). */
export async function readPodIdentity(vmDir: string): Promise<ProcessIdentity | undefined> {
  return readFile(podIdentityPath(vmDir), 'utf8').then((t) => JSON.parse(t) as ProcessIdentity, () => undefined);
}

/**
 * Written by the pod process the moment the agent has started a container:
 * the fact outlives a `start` command killed before it could record it, so
 * that `state` still tells the truth (running, not created).
 */
export function startedMarkerPath(vmDir: string, containerId: string): string {
  return path.join(vmDir, 'started', containerId);
}

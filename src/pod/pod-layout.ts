import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProcessIdentity } from '../util/process-identity.js';

/** The pod process's control socket, in the sandbox's VM dir (root only). */
export function podSocketPath(vmDir: string): string {
  return path.join(vmDir, 'pod.sock');
}

/**
 * The pod lock's file, in the root-only VM dir: its flock is held by the one
 * pod process of the VM (an abstract socket name, which any local user could
 * bind first, was the lock before).
 */
export function podLockPath(vmDir: string): string {
  return path.join(vmDir, 'pod.lock');
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

import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Storage } from '../agent-protocol/messages.js';
import { invalid } from './agent-error.js';
import { runGuestCommand } from './guest-command.js';

const run = (cmd: string, args: string[]): Promise<string> => runGuestCommand(cmd, args);

export async function isMountPoint(dir: string): Promise<boolean> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const normal = path.posix.resolve(dir);
  return mounts.split('\n').some((line) => line.split(' ')[1] === normal);
}

/** Mounts one Storage (9p share, tmpfs, local dir...) at its mount point in the VM, once. */
export async function mountStorage(storage: Storage): Promise<void> {
  if (!storage.mount_point.startsWith('/')) throw invalid(`storage mount point ${JSON.stringify(storage.mount_point)} is not absolute`);
  // Kata 1.x runtimes send the 9p share's mount point with a trailing slash.
  const mountPoint = path.posix.resolve(storage.mount_point);
  await mkdir(mountPoint, { recursive: true });
  if (await isMountPoint(mountPoint)) return;
  const fstype = storage.fstype || storage.driver;
  const options = storage.options.filter(Boolean).join(',');
  const mount = (): Promise<string> => run('mount', ['-t', fstype, ...(options ? ['-o', options] : []), '--', storage.source, mountPoint]);
  if (fstype === 'virtiofs') await untilDeviceArrives(mount, virtiofsArrivalMs);
  else await mount();
}

/** How long a virtio-fs tag may take to appear: a clone's device is hot-plugged as the VM resumes. */
const virtiofsArrivalMs = 10_000;

/** Retries `mount` until the device it names has been found by the kernel, or the time is up. */
async function untilDeviceArrives(mount: () => Promise<string>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      await mount();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

export async function unmount(dir: string): Promise<void> {
  if (await isMountPoint(dir)) await run('umount', ['-l', '--', dir]);
}

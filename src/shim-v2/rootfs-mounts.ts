import path from 'node:path';
import { unmount } from '../util/host-mounts.js';
import { runCommand } from '../util/run-command.js';
import type { MountMessage } from './task-messages.js';

/** The mounts containerd gives a task's rootfs (an overlay of the image's snapshots), on <bundle>/rootfs, as runc's shim does. */
export async function mountRootfs(bundle: string, mounts: MountMessage[]): Promise<string | undefined> {
  if (mounts.length === 0) return undefined;
  const target = path.join(bundle, 'rootfs');
  try {
    for (const mount of mounts) {
      const options = mount.options.filter(Boolean);
      await runCommand('mount', ['-t', mount.type, ...(options.length ? ['-o', options.join(',')] : []), '--', mount.source, target]);
    }
  } catch (err) {
    await unmount(target);
    throw err;
  }
  return target;
}

export async function unmountRootfs(bundle: string): Promise<void> {
  await unmount(path.join(bundle, 'rootfs'));
}

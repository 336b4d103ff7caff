import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KataError, messageOf } from '../util/errors.js';
import { runCommand } from '../util/run-command.js';

/**
 * The share's two directories (as Kata 2.x keeps them). `mounts/` is the
 * host's: only the host creates entries there (each container's rootfs and
 * bind mount points), and the guest never sees it as such. `shared/`, the
 * directory QEMU exports, is a read-only view of it that follows it (a slave
 * bind): the guest cannot create, rename or plant anything at the top or in a
 * container's directory, while each container's rootfs and volume binds,
 * mounted later under `mounts/`, appear there with their own rw or ro flag.
 */
/** Where a VM's share lives: its VM dir, and the directory QEMU exports (hypervisor's VmLayout has both). */
export interface ShareDirs {
  dir: string;
  sharedDir: string;
}

export function shareMountsDir(layout: Pick<ShareDirs, 'dir'>): string {
  return path.join(layout.dir, 'mounts');
}

/** Both directories, made before QEMU starts (0711: a user-namespaced container's mapped root must traverse them). */
export async function makeShareDirs(layout: ShareDirs): Promise<void> {
  for (const dir of [shareMountsDir(layout), layout.sharedDir]) await mkdir(dir, { recursive: true, mode: 0o711 });
}

/**
 * The read-only view, in the namespace this process runs in (QEMU sharing the
 * host's mount namespace). In a namespace of QEMU's own, kata-ts-mountns
 * launch makes the same view there (native/mount-ns.c).
 */
export async function mountShareView(layout: ShareDirs): Promise<void> {
  const mounts = shareMountsDir(layout);
  const steps: string[][] = [
    ['--bind', '--', mounts, mounts],
    ['--make-shared', '--', mounts],
    ['--rbind', '--', mounts, layout.sharedDir],
    ['--make-slave', '--', layout.sharedDir],
    ['-o', 'remount,bind,ro', '--', layout.sharedDir],
  ];
  try {
    for (const args of steps) await runCommand('mount', args);
  } catch (err) {
    throw new KataError('IO', `cannot make the read-only view of ${mounts} at ${layout.sharedDir}: ${messageOf(err)}`, { cause: err });
  }
}

import { unmount } from '../util/host-mounts.js';
import { passedFdPath, type PinnedPath } from '../util/pinned-path.js';
import { KataError } from '../util/errors.js';
import { mountNsBinaryPath } from '../util/package-root.js';
import { isSameProcessAlive } from '../util/process-identity.js';
import { runCommand } from '../util/run-command.js';
import type { VmHandle } from './qemu-vm.js';

/** Makes and undoes the mounts that put host files into a VM's share. */
export interface ShareMounter {
  /** An rbind of source (opened once: no path lookup again) at target; read-only down to every submount when asked. */
  bind(source: PinnedPath, target: string, readonly: boolean): Promise<void>;
  unmount(target: string): Promise<void>;
}

/** Runs kata-ts-mountns; a failure is one line naming what could not be done, in its words. */
async function mountNs(args: string[], what: string, passFds: number[] = []): Promise<void> {
  const result = await runCommand(mountNsBinaryPath, args, { reject: false, passFds });
  if (result.exitCode !== 0) {
    const reason = result.stderr.trim().split('\n')[0]?.replace(/^kata-ts-mountns: /, '') || `exit ${result.exitCode}`;
    throw new KataError('IO', `cannot ${what}: ${reason}`);
  }
}

/**
 * Mounts in the host's namespace, seen by a QEMU that shares it. Made as
 * kata-ts-mountns makes them (a clone, read-only before it is attached), so
 * that the copy in the share's read-only view has the flags the original has.
 */
const hostMounter: ShareMounter = {
  bind: (source, target, readonly) => mountNs(['bind-here', passedFdPath, target, readonly ? 'ro' : 'rw'], `bind-mount ${source.path} on ${target}`, [source.fd]),
  unmount,
};

/**
 * Mounts in the QEMU's own mount namespace (native/mount-ns.c): the host has
 * none of them, and they end with QEMU. A QEMU that is gone has nothing left
 * to unmount.
 */
function namespaceMounter(vm: VmHandle): ShareMounter {
  const { pid, startTime } = vm.qemu;
  const inQemu = (what: string): string => `${what} in the mount namespace of QEMU ${pid}`;
  return {
    bind: (source, target, readonly) => mountNs(['bind', String(pid), String(startTime), passedFdPath, target, readonly ? 'ro' : 'rw'], inQemu(`bind-mount ${source.path} on ${target}`), [source.fd]),
    unmount: async (target) => {
      if (!(await isSameProcessAlive(vm.qemu))) return;
      await mountNs(['unmount', String(pid), String(startTime), target], inQemu(`unmount ${target}`)).catch(async (err: unknown) => {
        // QEMU may have ended meanwhile, and its mounts with it.
        if (await isSameProcessAlive(vm.qemu)) throw err;
      });
    },
  };
}

/** Where a VM's share mounts are made: QEMU's own namespace, or the host's. */
export function shareMounter(vm: VmHandle | undefined): ShareMounter {
  return vm?.mountNamespace ? namespaceMounter(vm) : hostMounter;
}

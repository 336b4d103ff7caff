import { lstat, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OciMount } from '../agent-protocol/messages.js';
import type { ShareMounter } from '../hypervisor/vm-mounts.js';
import { unmountAllUnder } from '../util/host-mounts.js';
import { faultPoint } from '../util/fault-point.js';
import { pinPath, type PinnedPath } from '../util/pinned-path.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { OciMountSpec } from './oci-spec-types.js';

/** Where the 9p share (mount tag kataShared) is mounted in the guest (Kata 1.x). */
export const guestSharedDir = '/run/kata-containers/shared/containers';

export interface SharedFiles {
  /** The rootfs as the guest sees it. */
  guestRootfs: string;
  /** The spec's mounts, bind sources rewritten to their guest paths. */
  mounts: OciMount[];
  /** Mount points made for this container (in QEMU's namespace, or the host's), to undo at delete. */
  hostMounts: string[];
}

const bindOptions = new Set(['bind', 'rbind']);
const propagationOptions = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable']);

/**
 * A bind mount as runc takes one: type "bind", a bind option, or no type at all
 * with options that only say "bind" or a propagation (mount(2) with no file
 * system type and such flags binds the source).
 */
export function isBindMount(m: OciMountSpec): boolean {
  const options = m.options ?? [];
  if (m.type === 'bind' || options.some((o) => bindOptions.has(o))) return true;
  return !m.type && options.length > 0 && options.every((o) => propagationOptions.has(o));
}

/** The guest's options for a bind: crun binds type "bind" mounts, and a propagation-only list gets its "bind" said. */
function guestBindOptions(options: string[]): string[] {
  return options.some((o) => bindOptions.has(o)) ? options : ['bind', ...options];
}

/**
 * Puts a container's files into the sandbox's shared dir, which the guest
 * sees through 9p: the rootfs at <cid>/rootfs and each bind mount source at
 * <cid>/mounts/<n>. Other mounts (proc, tmpfs, ...) are made by crun in the guest.
 * A relative bind source is the bundle's, as with runc.
 */
export async function shareContainerFiles(sharedDir: string, mounter: ShareMounter, containerId: string, rootfs: string, specMounts: OciMountSpec[], bundleDir: string, logger: Logger): Promise<SharedFiles> {
  const hostDir = path.join(sharedDir, containerId);
  const hostMounts: string[] = [];
  const pinned: PinnedPath[] = [];
  const pin = async (p: string, missing: string): Promise<PinnedPath> => {
    if (!(await lstat(p).then(() => true, () => false))) throw new KataError('BAD_BUNDLE', missing);
    const source = await pinPath(p);
    pinned.push(source);
    return source;
  };
  try {
    // Every source is opened and checked first, then mounted through its fd: a path
    // swapped for a symlink after the check changes nothing of what gets mounted.
    const pinnedRootfs = await pin(rootfs, `rootfs ${rootfs} does not exist`);
    if (!pinnedRootfs.isDirectory) throw new KataError('BAD_BUNDLE', `rootfs ${rootfs} is not a directory`);
    const binds: Array<{ index: number; readonly: boolean; source: PinnedPath }> = [];
    const mounts: OciMount[] = [];
    for (const [index, m] of specMounts.entries()) {
      const options = m.options ?? [];
      if (!isBindMount(m) || !m.source) {
        mounts.push({ destination: m.destination, source: m.source ?? '', type: m.type ?? '', options });
        continue;
      }
      const sourcePath = path.resolve(bundleDir, m.source);
      const kind = await stat(sourcePath).catch(() => undefined);
      if (kind && !(kind.isDirectory() || kind.isFile())) {
        logger.warn(`mount ${m.destination}: source ${sourcePath} is neither a file nor a directory; skipped`);
        continue;
      }
      const source = await pin(sourcePath, `mount source ${sourcePath} (for ${m.destination}) does not exist`);
      if (!(source.isDirectory || source.isFile)) throw new KataError('BAD_BUNDLE', `mount source ${sourcePath} (for ${m.destination}) changed into something that is neither a file nor a directory`);
      binds.push({ index, readonly: options.includes('ro'), source });
      mounts.push({ destination: m.destination, source: `${guestSharedDir}/${containerId}/mounts/${index}`, type: 'bind', options: guestBindOptions(options) });
    }
    faultPoint('create:after-source-check');
    const hostRootfs = path.join(hostDir, 'rootfs');
    await mkdir(hostRootfs, { recursive: true });
    await mounter.bind(pinnedRootfs, hostRootfs, false);
    hostMounts.push(hostRootfs);
    for (const { index, readonly, source } of binds) {
      const target = path.join(hostDir, 'mounts', String(index));
      await mkdir(path.dirname(target), { recursive: true });
      if (source.isDirectory) await mkdir(target);
      else await writeFile(target, '');
      await mounter.bind(source, target, readonly);
      hostMounts.push(target);
    }
    return { guestRootfs: `${guestSharedDir}/${containerId}/rootfs`, mounts, hostMounts };
  } catch (err) {
    await unshareContainerFiles(sharedDir, mounter, containerId, hostMounts).catch(() => undefined);
    throw err instanceof KataError ? err : new KataError('IO', `cannot share the files of container ${containerId}: ${messageOf(err)}`, { cause: err });
  } finally {
    for (const source of pinned) await source.close();
  }
}

/** Undoes shareContainerFiles: unmounts first, so removing the dir never touches the sources. */
export async function unshareContainerFiles(sharedDir: string, mounter: ShareMounter, containerId: string, hostMounts: string[]): Promise<void> {
  for (const point of [...hostMounts].reverse()) await mounter.unmount(point);
  const hostDir = path.join(sharedDir, containerId);
  await unmountAllUnder(hostDir);
  await rm(hostDir, { recursive: true, force: true });
}

import { lstat, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OciMount } from '../agent-protocol/messages.js';
import type { ShareMounter } from '../hypervisor/vm-mounts.js';
import { unmountAllUnder } from '../util/host-mounts.js';
import { faultPoint } from '../util/fault-point.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { shareMountsDir, type ShareDirs } from './share-view.js';
import { pinPath, type PinnedPath } from '../util/pinned-path.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { OciMountSpec } from '../runtime/oci-spec-types.js';

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
 * Puts a container's files into the sandbox's share: the rootfs at
 * <cid>/rootfs and each bind mount source at <cid>/mounts/<n>, made in the
 * host-only mounts dir (share-view.ts), which the guest sees read-only through
 * 9p. Every entry is made fresh (mkdir without -p, files with O_EXCL), so one
 * that is already there, a planted symlink included, fails the create instead
 * of being followed. Other mounts (proc, tmpfs, ...) are made by crun in the
 * guest. A relative bind source is the bundle's, as with runc.
 */
export async function shareContainerFiles(layout: ShareDirs, mounter: ShareMounter, containerId: string, rootfs: string, specMounts: OciMountSpec[], bundleDir: string, logger: Logger): Promise<SharedFiles> {
  const hostDir = path.join(shareMountsDir(layout), containerId);
  const hostMounts: string[] = [];
  const pinned: PinnedPath[] = [];
  const pin = async (p: string, missing: string): Promise<PinnedPath> => {
    if (!(await lstat(p).then(() => true, () => false))) throw new KataError('BAD_BUNDLE', missing);
    const source = await pinPath(p);
    pinned.push(source);
    return source;
  };
  let madeHostDir = false;
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
    await mkdir(hostDir, { mode: 0o711 });
    madeHostDir = true;
    const hostRootfs = path.join(hostDir, 'rootfs');
    await mkdir(hostRootfs);
    await mounter.bind(pinnedRootfs, hostRootfs, false);
    hostMounts.push(hostRootfs);
    if (binds.length > 0) await mkdir(path.join(hostDir, 'mounts'), { mode: 0o711 });
    for (const { index, readonly, source } of binds) {
      const target = path.join(hostDir, 'mounts', String(index));
      if (source.isDirectory) await mkdir(target);
      else await writeFile(target, '', { flag: 'wx' });
      await mounter.bind(source, target, readonly);
      hostMounts.push(target);
    }
    return { guestRootfs: `${guestSharedDir}/${containerId}/rootfs`, mounts, hostMounts };
  } catch (err) {
    // A dir this create did not make (EEXIST: a leftover, or something planted) is not removed here.
    if (madeHostDir) await unshareContainerFiles(layout, mounter, containerId, hostMounts).catch(() => undefined);
    throw err instanceof KataError ? err : new KataError('IO', `cannot share the files of container ${containerId}: ${messageOf(err)}`, { cause: err });
  } finally {
    for (const source of pinned) await source.close();
  }
}

/**
 * Undoes shareContainerFiles: unmounts first, so removing the dir never
 * touches the sources, then removes what is left without following a
 * symlink or entering a mount point (native removeTree), whoever wrote there.
 */
export async function unshareContainerFiles(layout: ShareDirs, mounter: ShareMounter, containerId: string, hostMounts: string[]): Promise<void> {
  for (const point of [...hostMounts].reverse()) await mounter.unmount(point);
  for (const dir of [path.join(shareMountsDir(layout), containerId), path.join(layout.sharedDir, containerId)]) {
    await unmountAllUnder(dir);
  }
  try {
    loadNativeAddon().removeTree(path.join(shareMountsDir(layout), containerId));
  } catch (err) {
    throw new KataError('IO', `cannot remove the share of container ${containerId}: ${messageOf(err)}`, { cause: err });
  }
}

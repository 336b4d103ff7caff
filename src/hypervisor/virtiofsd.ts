import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HypervisorConfig } from '../config/runtime-config.js';
import { KataError } from '../util/errors.js';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';
import type { VmLayout } from './vm-layout.js';

/**
 * virtiofsd, one per sandbox (shared_fs = "virtio-fs"): it serves the share's
 * read-only view to QEMU's vhost-user-fs-pci over a unix socket in the VM dir,
 * and ends when QEMU lets go of it (however QEMU ends). It runs in the mount
 * namespace that holds the share's binds: QEMU's own (kata-ts-mountns launch
 * starts it there) or the host's. Its sandbox=namespace confines it to the
 * share (its own mount, pid and network namespaces, pivot_root).
 */
export function virtiofsdSocket(layout: Pick<VmLayout, 'dir'>): string {
  return path.join(layout.dir, 'virtiofsd.sock');
}

/** Where its pid is written (by kata-ts-mountns, or here): stopVm ends it if QEMU's end did not. */
export function virtiofsdPidFile(layout: Pick<VmLayout, 'dir'>): string {
  return path.join(layout.dir, 'virtiofsd.pid');
}

function virtiofsdLog(layout: Pick<VmLayout, 'dir'>): string {
  return path.join(layout.dir, 'virtiofsd.log');
}

/**
 * The daemon's arguments: Kata's keys (virtio_fs_cache, virtio_fs_extra_args)
 * on top of what kata-ts needs. modcaps=-mknod: virtiofsd is root on the host,
 * so a device node the guest makes in a rootfs or volume would be a real one
 * there (a host disk, /dev/mem); without CAP_MKNOD it fails with EPERM, as
 * 9p refuses it. FIFOs and sockets need no capability and stay (POSIX).
 */
export function virtiofsdArgs(h: Pick<HypervisorConfig, 'virtioFsCache' | 'virtioFsExtraArgs'>, layout: Pick<VmLayout, 'dir' | 'sharedDir'>): string[] {
  return [
    `--socket-path=${virtiofsdSocket(layout)}`,
    '-o', `source=${layout.sharedDir}`,
    '-o', `cache=${h.virtioFsCache}`,
    '-o', 'sandbox=namespace',
    '-o', 'no_posix_lock',
    '-o', 'modcaps=-mknod',
    ...h.virtioFsExtraArgs,
  ];
}

/** How long virtiofsd may take to listen. */
const listensWithinMs = 10_000;

async function waitForSocket(socket: string, alive: () => Promise<boolean>, log: string): Promise<void> {
  const deadline = Date.now() + listensWithinMs;
  while (!(await stat(socket).then((s) => s.isSocket(), () => false))) {
    if (!(await alive()) || Date.now() > deadline) {
      const said = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').at(-1) ?? '';
      throw new KataError('VM', `virtiofsd did not start${said ? `: ${said}` : ''}`);
    }
    await sleep(10);
  }
}

/**
 * Starts virtiofsd in this process's mount namespace (QEMU sharing the host's)
 * and waits until it listens. Its output goes to virtiofsd.log in the VM dir.
 */
export async function startVirtiofsd(h: Pick<HypervisorConfig, 'virtioFsDaemon' | 'virtioFsCache' | 'virtioFsExtraArgs'>, layout: VmLayout): Promise<ProcessIdentity> {
  const log = openSync(virtiofsdLog(layout), 'a', 0o600);
  let child;
  try {
    child = spawn(h.virtioFsDaemon, virtiofsdArgs(h, layout), { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid ?? 0));
    child.once('error', (err) => reject(new KataError('VM', `cannot run ${h.virtioFsDaemon}: ${err.message}`)));
  });
  child.unref();
  const id = await identify(spawned);
  if (!id) throw new KataError('VM', `virtiofsd exited at once; see ${virtiofsdLog(layout)}`);
  await writeFile(virtiofsdPidFile(layout), String(spawned));
  await waitForSocket(virtiofsdSocket(layout), () => isSameProcessAlive(id), virtiofsdLog(layout)).catch((err: unknown) => {
    process.kill(spawned, 'SIGKILL');
    throw err;
  });
  return id;
}

/** Ends the VM's virtiofsd if it outlived QEMU (it normally ends with QEMU's connection). */
export async function stopVirtiofsd(layout: Pick<VmLayout, 'dir'>): Promise<void> {
  const pid = Number((await readFile(virtiofsdPidFile(layout), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  const id = await identify(pid);
  // Only a virtiofsd whose command line names this VM's socket: a recycled pid is someone else.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!id || !cmdline.includes(virtiofsdSocket(layout))) return;
  for (let i = 0; i < 40 && (await isSameProcessAlive(id)); i++) await sleep(50);
  if (await isSameProcessAlive(id)) process.kill(pid, 'SIGKILL');
}

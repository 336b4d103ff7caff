import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { applyCpuV1, applyCpuV2, cgroupRelativePath, checkPath, makeCgroupDirs, parseCgroupMounts, removeCgroupDirs, type CgroupHierarchy, type SandboxCpuLimits } from './host-cgroups.js';

/** The spec's limits a host-side reader of the container's cgroup should find (runtime-spec linux.resources). */
export interface ContainerLimits {
  memory?: { limit?: number; reservation?: number };
  pids?: { limit?: number };
  cpu?: SandboxCpuLimits;
}

/** The container's host cgroup: where its carrier (and its execs' carriers) are, and what kata-ts made for it. */
export interface ContainerCgroup {
  /** linux.cgroupsPath as a path below each hierarchy's root. */
  path: string;
  /** Directories created, in creation order (removed deepest first at delete). */
  created: string[];
}

/**
 * Puts a container's carrier (the pid callers wait on and read the cgroup of)
 * in the spec's linux.cgroupsPath, in every mounted hierarchy, and mirrors the
 * spec's memory, pids and CPU limits there, as Kata 1.x does with its shim:
 * containerd's runc shim and docker read stats and watch OOM through that
 * pid's cgroup, and find the limits asked for. Usage is not there: the
 * container's processes run in the guest, so the host cgroup holds only the
 * carrier (about 1 MB, one task). A failure is a warning: the container runs.
 */
export async function placeContainerCarrier(cgroupsPath: string, carrierPid: number, limits: ContainerLimits, logger: Logger): Promise<ContainerCgroup | undefined> {
  let relative: string;
  try {
    relative = checkPath(cgroupRelativePath(cgroupsPath));
  } catch (err) {
    logger.warn(`cgroupsPath ${cgroupsPath}: ${messageOf(err)}; the carrier stays in the caller's cgroup`);
    return undefined;
  }
  const placed: ContainerCgroup = { path: relative, created: [] };
  for (const hierarchy of parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''))) {
    try {
      const dir = await makeCgroupDirs(hierarchy, relative, placed.created);
      if (hierarchy.version === 2) await enableV2Controllers(hierarchy, relative);
      await applyLimits(hierarchy, dir, limits);
      await writeFile(path.join(dir, 'cgroup.procs'), String(carrierPid));
    } catch (err) {
      logger.warn(`host cgroup ${relative} in ${hierarchy.mountPoint}: ${messageOf(err)}`);
    }
  }
  return placed;
}

/** An exec's carrier joins the container's cgroup, as runc's exec puts the process there. */
export async function addToContainerCgroup(cgroup: ContainerCgroup, pid: number, logger: Logger): Promise<void> {
  for (const hierarchy of parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''))) {
    await writeFile(path.join(hierarchy.mountPoint, cgroup.path, 'cgroup.procs'), String(pid)).catch((err: unknown) => {
      logger.debug(`host cgroup ${cgroup.path} in ${hierarchy.mountPoint}: ${messageOf(err)}`);
    });
  }
}

/** update: the new limits, mirrored as at create (what update leaves unset stays as it was). */
export async function updateContainerCgroup(cgroup: ContainerCgroup, limits: ContainerLimits, logger: Logger): Promise<void> {
  for (const hierarchy of parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''))) {
    await applyLimits(hierarchy, path.join(hierarchy.mountPoint, cgroup.path), limits).catch((err: unknown) => {
      logger.warn(`host cgroup ${cgroup.path} in ${hierarchy.mountPoint}: ${messageOf(err)}`);
    });
  }
}

/** The host pids in the container's cgroup (its carriers), from the first hierarchy that has the dir. */
export async function containerCgroupPids(cgroup: ContainerCgroup): Promise<number[]> {
  for (const hierarchy of parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''))) {
    const text = await readFile(path.join(hierarchy.mountPoint, cgroup.path, 'cgroup.procs'), 'utf8').catch(() => undefined);
    if (text !== undefined) return text.split('\n').filter(Boolean).map(Number);
  }
  return [];
}

/** At delete, once the carriers are gone: the directories placeContainerCarrier made. */
export async function removeContainerCgroup(cgroup: ContainerCgroup, logger: Logger): Promise<void> {
  await removeCgroupDirs(cgroup.created, logger);
}

/** v2 limits need their controllers enabled on the way down (subtree_control); what the host does not delegate stays off. */
async function enableV2Controllers(hierarchy: CgroupHierarchy, relative: string): Promise<void> {
  const available = (await readFile(path.join(hierarchy.mountPoint, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
  const wanted = ['cpu', 'memory', 'pids'].filter((c) => available.includes(c));
  let dir = hierarchy.mountPoint;
  for (const part of relative.split('/').filter(Boolean)) {
    for (const controller of wanted) await writeFile(path.join(dir, 'cgroup.subtree_control'), `+${controller}`).catch(() => undefined);
    dir = path.join(dir, part);
  }
}

async function applyLimits(hierarchy: CgroupHierarchy, dir: string, limits: ContainerLimits): Promise<void> {
  const { memory, pids, cpu } = limits;
  if (hierarchy.version === 1) {
    const has = (c: string): boolean => hierarchy.controllers.includes(c);
    if (has('memory') && memory?.limit && memory.limit > 0) await writeFile(path.join(dir, 'memory.limit_in_bytes'), String(memory.limit));
    if (has('memory') && memory?.reservation && memory.reservation > 0) await writeFile(path.join(dir, 'memory.soft_limit_in_bytes'), String(memory.reservation));
    if (has('pids') && pids?.limit && pids.limit > 0) await writeFile(path.join(dir, 'pids.max'), String(pids.limit));
    if (has('cpu') && cpu) await applyCpuV1(dir, cpu);
    return;
  }
  const enabled = (await readFile(path.join(dir, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
  if (enabled.includes('memory') && memory?.limit && memory.limit > 0) await writeFile(path.join(dir, 'memory.max'), String(memory.limit));
  if (enabled.includes('memory') && memory?.reservation && memory.reservation > 0) await writeFile(path.join(dir, 'memory.low'), String(memory.reservation));
  if (enabled.includes('pids') && pids?.limit && pids.limit > 0) await writeFile(path.join(dir, 'pids.max'), String(pids.limit));
  if (cpu) await applyCpuV2(dir, cpu);
}

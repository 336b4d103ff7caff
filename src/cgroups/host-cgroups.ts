import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** One mounted hierarchy: a v1 controller set (or named hierarchy), or the v2 unified one. */
export interface CgroupHierarchy {
  mountPoint: string;
  version: 1 | 2;
  /** v1: the controllers (and name=...) it carries; v2: empty. */
  controllers: string[];
}

/** What a sandbox's host cgroup placement made: undone after QEMU exits. */
export interface HostCgroup {
  /** The sandbox's cgroup, as a path below each hierarchy's root. */
  path: string;
  /** Directories created, in creation order (removed deepest first). */
  created: string[];
  /** sandbox_cgroup_only = false: the v1 dirs whose `tasks` take the vCPU threads (hot-plugged ones too). */
  vcpuDirs?: string[];
}

/**
 * Kata's two placements (design/host-cgroups.md). sandbox_cgroup_only =
 * true: every host process of the sandbox (QEMU, the pod process) in
 * <parent of cgroupsPath>/kata-sandbox-<id>, unlimited (the caller sizes the
 * parent). false (Kata's default, "legacy"): only QEMU's vCPU threads, in
 * <parent>/kata_<name> of the cpu and cpuset hierarchies, with the sandbox
 * container's CPU limits; the rest of QEMU and the pod process stay where
 * the caller runs them. A v2 tree cannot hold single threads of a domain
 * cgroup: there the whole QEMU process goes.
 */
export function sandboxCgroupRelative(cgroupsPath: string, sandboxId: string, sandboxCgroupOnly: boolean): string {
  const relative = checkPath(cgroupRelativePath(cgroupsPath));
  const parent = path.posix.dirname(relative);
  return path.posix.join(parent, sandboxCgroupOnly ? `kata-sandbox-${sandboxId}` : `kata_${path.posix.basename(relative)}`);
}

/** The sandbox's host processes: QEMU's pid first, then the pod process's (if any), and QEMU's vCPU thread ids. */
export interface SandboxMembers {
  processes: number[];
  vcpuThreads: number[];
}

/** The cgroup hierarchies mounted on this host, v1, v2 or both (hybrid), from mountinfo's text. */
export function parseCgroupMounts(mountinfo: string): CgroupHierarchy[] {
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const mountPoint = before.split(' ')[4];
    const [fstype, , superOptions = ''] = after.split(' ');
    if (!mountPoint) continue;
    if (fstype === 'cgroup2') hierarchies.push({ mountPoint, version: 2, controllers: [] });
    if (fstype === 'cgroup') hierarchies.push({ mountPoint, version: 1, controllers: superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro') });
  }
  return hierarchies;
}

/**
 * runtime-spec's cgroupsPath as a path below a hierarchy's root: an absolute
 * cgroupfs path as it is, and the systemd driver's "slice:prefix:name" the way
 * runc expands it ("kubepods-burstable.slice" lives in "kubepods.slice").
 */
export function cgroupRelativePath(cgroupsPath: string): string {
  if (!cgroupsPath.includes(':')) return path.posix.normalize(`/${cgroupsPath}`);
  const [slice = '', prefix = '', name = ''] = cgroupsPath.split(':');
  const sliceDirs: string[] = [];
  if (slice && slice !== '-.slice') {
    const base = slice.replace(/\.slice$/, '');
    const parts = base.split('-');
    for (let i = 1; i <= parts.length; i++) sliceDirs.push(`${parts.slice(0, i).join('-')}.slice`);
  }
  return path.posix.join('/', ...sliceDirs, `${prefix}-${name}.scope`);
}

export function checkPath(relative: string): string {
  if (relative.split('/').includes('..') || relative.includes('\0')) throw new Error(`bad cgroupsPath ${JSON.stringify(relative)}`);
  return relative;
}

/** mkdir -p below a hierarchy, recording each directory made; v1 cpuset dirs get their parent's cpus and mems (they start empty). */
export async function makeCgroupDirs(hierarchy: CgroupHierarchy, relative: string, created: string[]): Promise<string> {
  let dir = hierarchy.mountPoint;
  for (const part of relative.split('/').filter(Boolean)) {
    const parent = dir;
    dir = path.join(dir, part);
    if (await stat(dir).then(() => true, () => false)) continue;
    await mkdir(dir);
    created.push(dir);
    if (hierarchy.version === 1 && hierarchy.controllers.includes('cpuset')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) await writeFile(path.join(dir, file), await readFile(path.join(parent, file), 'utf8'));
    }
  }
  return dir;
}

export interface SandboxCpuLimits {
  quota?: number;
  period?: number;
  shares?: number;
}

/**
 * Places the sandbox on the host as sandboxCgroupRelative says, in every
 * mounted hierarchy that takes it (v1, v2 or this host's hybrid of both).
 * Memory is not limited on the host: the VM's size bounds it (a container
 * limit below QEMU's own footprint would kill the VM). A failure is a
 * warning: the pod runs.
 */
export async function placeSandboxInCgroup(cgroupsPath: string, sandboxId: string, sandboxCgroupOnly: boolean, members: SandboxMembers, cpu: SandboxCpuLimits, logger: Logger): Promise<HostCgroup | undefined> {
  let relative: string;
  try {
    relative = sandboxCgroupRelative(cgroupsPath, sandboxId, sandboxCgroupOnly);
  } catch (err) {
    logger.warn(`cgroupsPath ${cgroupsPath}: ${messageOf(err)}; the sandbox stays in the caller's cgroup`);
    return undefined;
  }
  const hierarchies = parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
  const placed: HostCgroup = { path: relative, created: [], ...(sandboxCgroupOnly ? {} : { vcpuDirs: [] }) };
  for (const hierarchy of hierarchies) {
    const takesThreads = hierarchy.version === 1 && (hierarchy.controllers.includes('cpu') || hierarchy.controllers.includes('cpuset'));
    if (!sandboxCgroupOnly && hierarchy.version === 1 && !takesThreads) continue;
    try {
      const dir = await makeCgroupDirs(hierarchy, relative, placed.created);
      if (sandboxCgroupOnly) {
        for (const pid of members.processes) await writeFile(path.join(dir, 'cgroup.procs'), String(pid));
      } else if (hierarchy.version === 1) {
        if (hierarchy.controllers.includes('cpu')) await applyCpuV1(dir, cpu);
        placed.vcpuDirs!.push(dir);
        await addThreads(dir, members.vcpuThreads);
      } else {
        await applyCpuV2(dir, cpu);
        if (members.processes[0]) await writeFile(path.join(dir, 'cgroup.procs'), String(members.processes[0]));
      }
    } catch (err) {
      logger.warn(`host cgroup ${relative} in ${hierarchy.mountPoint}: ${messageOf(err)}`);
    }
  }
  return placed;
}

async function addThreads(dir: string, threads: number[]): Promise<void> {
  for (const tid of threads) await writeFile(path.join(dir, 'tasks'), String(tid));
}

/** vCPU threads that came with hot-plugged vCPUs join the others (sandbox_cgroup_only = false). */
export async function addVcpuThreads(cgroup: HostCgroup, threads: number[], logger: Logger): Promise<void> {
  for (const dir of cgroup.vcpuDirs ?? []) await addThreads(dir, threads).catch((err: unknown) => logger.warn(`host cgroup ${dir}: ${messageOf(err)}`));
}

export async function applyCpuV1(dir: string, cpu: SandboxCpuLimits): Promise<void> {
  if (cpu.shares) await writeFile(path.join(dir, 'cpu.shares'), String(cpu.shares));
  if (cpu.period) await writeFile(path.join(dir, 'cpu.cfs_period_us'), String(cpu.period));
  if (cpu.quota) await writeFile(path.join(dir, 'cpu.cfs_quota_us'), String(cpu.quota));
}

/** v2 only where the cpu controller is enabled for the cgroup (a hybrid host's unified tree may have none). */
export async function applyCpuV2(dir: string, cpu: SandboxCpuLimits): Promise<void> {
  if (!(await readFile(path.join(dir, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/).includes('cpu')) return;
  if (cpu.quota) await writeFile(path.join(dir, 'cpu.max'), `${cpu.quota} ${cpu.period ?? 100000}`);
  // cgroup v2 weight from v1 shares, as runc converts it.
  if (cpu.shares) await writeFile(path.join(dir, 'cpu.weight'), String(Math.round(1 + ((cpu.shares - 2) * 9999) / 262142)));
}

/** How long a cgroup may stay busy after its last process was stopped: a big QEMU takes seconds to finish exiting. */
const emptiesWithinMs = 30_000;

/**
 * Removes cgroup directories kata-ts made (a sandbox's and its containers'
 * together, when both go), deepest first. A process that was just stopped may
 * still count (EBUSY) until all its threads have exited: waited for, then a dir
 * still in use stays, said. A dir that holds another cgroup is not ours to empty.
 */
export async function removeCgroupDirs(created: string[], logger: Logger): Promise<void> {
  const depth = (dir: string): number => dir.split('/').length;
  for (const dir of [...new Set(created)].sort((a, b) => depth(b) - depth(a))) {
    const deadline = Date.now() + emptiesWithinMs;
    for (;;) {
      const failure = await rmdir(dir).then(() => undefined, (err: unknown) => err);
      if (!failure || errnoCode(failure) === 'ENOENT') break;
      if (errnoCode(failure) === 'EBUSY' && (await holdsCgroups(dir))) {
        logger.debug(`host cgroup ${dir} stays: it holds another cgroup`);
        break;
      }
      if (errnoCode(failure) !== 'EBUSY' || Date.now() > deadline) {
        logger.warn(`host cgroup ${dir} stays: ${messageOf(failure)}`);
        break;
      }
      await sleep(100);
    }
  }
}

async function holdsCgroups(dir: string): Promise<boolean> {
  return (await readdir(dir, { withFileTypes: true }).catch(() => [])).some((e) => e.isDirectory());
}

import { addVcpuThreads } from '../cgroups/host-cgroups.js';
import type { StateStore } from '../store/state-store.js';
import type { Logger } from '../util/logger.js';
import type { RuntimeContainerState } from './container-record.js';
import type { OciLinuxResources } from './oci-spec-types.js';
import { withSandboxAgent, withSandboxHypervisor } from './sandbox-agent.js';
import type { SandboxRecord } from './sandbox-record.js';
import type { VmResources } from './sandbox-vm.js';

/** What a container adds to its VM, as Kata 1.x counts it. */
export interface ResourceNeeds {
  /** ceil(quota / period) for a quota. */
  vcpus: number;
  /** The memory limit, in MiB (rounded up). */
  memoryMiB: number;
}

export function containerNeeds(resources: OciLinuxResources | undefined): ResourceNeeds {
  const quota = resources?.cpu?.quota ?? 0;
  // A quota without a period has the kernel's default period (100 ms), as crun and runc apply it.
  const period = resources?.cpu?.period ?? 100_000;
  const limit = resources?.memory?.limit ?? 0;
  return {
    vcpus: quota > 0 && period > 0 ? Math.ceil(quota / period) : 0,
    memoryMiB: limit > 0 ? Math.ceil(limit / (1024 * 1024)) : 0,
  };
}

/** What the VM should have: its defaults plus every container's needs, within its maximums. */
export function sandboxTarget(defaults: { vcpus: number; memoryMiB: number }, needs: ResourceNeeds[], limits: Pick<VmResources, 'maxVcpus' | 'maxMemoryMiB'>): { vcpus: number; memoryMiB: number; capped: boolean } {
  const vcpus = defaults.vcpus + needs.reduce((sum, n) => sum + n.vcpus, 0);
  const memoryMiB = defaults.memoryMiB + needs.reduce((sum, n) => sum + n.memoryMiB, 0);
  return {
    vcpus: Math.min(vcpus, limits.maxVcpus),
    memoryMiB: Math.min(memoryMiB, limits.maxMemoryMiB),
    capped: vcpus > limits.maxVcpus || memoryMiB > limits.maxMemoryMiB,
  };
}

/** The DIMM to plug for `missingMiB`: whole guest memory blocks, within what maxmem leaves. */
export function dimmSize(missingMiB: number, blockMiB: number, roomMiB: number): number {
  const block = Math.max(1, blockMiB);
  const size = Math.ceil(missingMiB / block) * block;
  return Math.min(size, Math.floor(roomMiB / block) * block);
}

/** The needs of a sandbox's containers, as recorded in their states (those not yet recorded count as none). */
export async function memberNeeds(store: StateStore, record: SandboxRecord, except: string): Promise<ResourceNeeds[]> {
  const needs: ResourceNeeds[] = [];
  for (const id of record.containers) {
    if (id === except) continue;
    const state = (await store.read(id).catch(() => undefined)) as RuntimeContainerState | undefined;
    if (state?.needs) needs.push(state.needs);
  }
  return needs;
}

/**
 * Grows the VM to what its containers need (Kata 1.x's sandbox resource
 * update): QMP device_add of vCPUs and of a pc-dimm, through the pod
 * process, then OnlineCPUMem so that the guest uses them. The guest's memory
 * block size (GetGuestDetails) sizes the DIMM. It never shrinks the VM
 * (shrinkSandbox does, at delete).
 * Returns the record's new resources.
 */
export async function growSandbox(record: SandboxRecord, needs: ResourceNeeds[], logger: Logger): Promise<VmResources | undefined> {
  const current = record.resources;
  // A record from before memory and vCPU hot-plug: the VM keeps its size.
  if (!current) return undefined;
  const target = sandboxTarget({ vcpus: current.baseVcpus, memoryMiB: current.baseMemoryMiB }, needs, current);
  if (target.capped) logger.warn(`sandbox ${record.sandboxId}: its containers ask for more than the VM may have (${current.maxVcpus} vCPUs, ${current.maxMemoryMiB} MiB): it gets the most`);
  const next = { ...current };
  const missingCpus = target.vcpus - current.vcpus;
  const missingMiB = target.memoryMiB - current.memoryMiB;
  let pluggedCpus = 0;
  let pluggedMemory = false;
  if (missingCpus > 0) {
    pluggedCpus = await withSandboxHypervisor(record, (qemu) => qemu.plugVcpus(missingCpus));
    next.vcpus += pluggedCpus;
    // sandbox_cgroup_only = false: the new vCPU threads join the sandbox's host cgroup.
    if (pluggedCpus > 0 && record.hostCgroup?.vcpuDirs) await addVcpuThreads(record.hostCgroup, await withSandboxHypervisor(record, (qemu) => qemu.vcpuThreads()), logger);
  }
  if (missingMiB > 0 && current.dimms < current.memorySlots) {
    const details = await withSandboxAgent(record, (agent) => agent.getGuestDetails());
    const blockMiB = Number(details.mem_block_size_bytes ?? 0) / (1024 * 1024) || 128;
    const size = dimmSize(missingMiB, blockMiB, current.maxMemoryMiB - current.memoryMiB);
    if (size > 0) {
      await withSandboxHypervisor(record, (qemu) => qemu.plugMemory(current.dimms, size, blockMiB, record.vm.sharedRam ?? false));
      next.memoryMiB += size;
      next.dimms += 1;
      pluggedMemory = true;
    }
  } else if (missingMiB > 0) {
    logger.warn(`sandbox ${record.sandboxId}: no memory slot left (memory_slots = ${current.memorySlots}): the VM stays at ${current.memoryMiB} MiB`);
  }
  if (pluggedCpus > 0 || pluggedMemory) {
    await withSandboxAgent(record, (agent) => agent.onlineCpuMem(pluggedCpus, !pluggedMemory));
    logger.info(`sandbox ${record.sandboxId} grew to ${next.vcpus} vCPUs and ${next.memoryMiB} MiB`);
  }
  return next;
}

/**
 * Shrinks the VM's vCPUs to what its remaining containers need, when one
 * goes (Kata 1.x's sandbox resource update at container delete): the
 * hot-plugged vCPUs above the target come out, under KVM (TCG: see below).
 * Memory stays, as in Kata 1.x (a pc-dimm the guest uses cannot be taken
 * back safely). A failure is a warning: the container is gone either way.
 * Returns the record's new resources.
 */
export async function shrinkSandbox(record: SandboxRecord, needs: ResourceNeeds[], logger: Logger): Promise<VmResources | undefined> {
  const current = record.resources;
  if (!current) return undefined;
  const target = sandboxTarget({ vcpus: current.baseVcpus, memoryMiB: current.baseMemoryMiB }, needs, current);
  const extra = current.vcpus - Math.max(target.vcpus, current.baseVcpus);
  if (extra <= 0) return current;
  if (record.accelerator === 'tcg') {
    // QEMU 7.2 aborts on a vCPU unplug under single-threaded TCG (cpu_remove_sync joins the
    // vCPU thread all vCPUs share; seen in a core dump here), and multi-threaded TCG aborts on plug.
    logger.debug(`sandbox ${record.sandboxId} keeps its ${current.vcpus} vCPUs: QEMU cannot unplug one under TCG`);
    return current;
  }
  try {
    const removed = await withSandboxHypervisor(record, (qemu) => qemu.unplugVcpus(extra));
    if (removed > 0) logger.info(`sandbox ${record.sandboxId} shrank to ${current.vcpus - removed} vCPUs`);
    return { ...current, vcpus: current.vcpus - removed };
  } catch (err) {
    logger.warn(`sandbox ${record.sandboxId}: cannot take out ${extra} vCPUs: ${(err as Error).message}`);
    // Some may have gone out before the failure: QEMU's list of vCPUs says how many are left.
    const present = await withSandboxHypervisor(record, (qemu) => qemu.vcpuThreads()).catch(() => undefined);
    return { ...current, vcpus: present?.length ?? current.vcpus };
  }
}

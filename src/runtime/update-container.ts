import { resourcesToAgent } from './agent-spec.js';
import { updateContainerCgroup } from '../cgroups/container-cgroup.js';
import { loadContainer, requireStatus, type RuntimeContainerState } from './container-record.js';
import type { OciLinuxResources } from './oci-spec-types.js';
import { setsAnyLimit } from './resource-update.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord, withSandboxLock, writeSandboxRecord } from './sandbox-record.js';
import { containerNeeds, growSandbox, memberNeeds, type ResourceNeeds } from './sandbox-resources.js';

/**
 * update sets new memory, CPU and pids limits on a container's cgroup in the
 * guest (runc update; containerd's CRI UpdateContainerResources). One that
 * sets none (all zero or absent: docker update --restart) changes nothing. A container
 * that now asks for more vCPUs or memory than its VM has grows the VM first,
 * as create does.
 */
export async function updateContainer(ctx: RuntimeContext, id: string, resources: OciLinuxResources): Promise<void> {
  const { state: found } = await loadContainer(ctx.store, id);
  await withSandboxLock(ctx.store.root, found.sandboxId, () => ctx.store.withLock(id, async () => {
    const { state, status } = await loadContainer(ctx.store, id);
    requireStatus(id, status, ['created', 'running', 'paused'], 'update');
    if (!setsAnyLimit(resources)) {
      ctx.logger.debug(`update of ${id} sets no limit (zero means unchanged): nothing to do`);
      return;
    }
    const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
    const needs = mergedNeeds(state.needs, resources);
    const grown = await growSandbox(record, [...(await memberNeeds(ctx.store, record, id)), needs], ctx.logger);
    if (grown) await writeSandboxRecord({ ...record, resources: grown });
    await withSandboxAgent(record, (agent) => agent.updateContainer(id, resourcesToAgent({ ...resources, devices: [] })));
    if (state.hostCgroup) await updateContainerCgroup(state.hostCgroup, resources, ctx.logger);
    await ctx.store.write({ ...state, needs } satisfies RuntimeContainerState);
  }));
}

/** An update names only what changes: the rest of what the container asked for stands. */
function mergedNeeds(previous: ResourceNeeds | undefined, resources: OciLinuxResources): ResourceNeeds {
  const given = containerNeeds(resources);
  // Zero is "unchanged" too (runc's reading): only a value given and non-zero replaces the need.
  const cpuGiven = Boolean(resources.cpu?.quota || resources.cpu?.period);
  return {
    vcpus: cpuGiven ? given.vcpus : (previous?.vcpus ?? 0),
    memoryMiB: resources.memory?.limit ? given.memoryMiB : (previous?.memoryMiB ?? 0),
  };
}

import { resourcesToAgent } from './agent-spec.js';
import { loadContainer, requireStatus } from './container-record.js';
import type { OciLinuxResources } from './oci-spec-types.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** update sets new memory, CPU and pids limits on a container's cgroup in the guest (runc update; containerd's CRI UpdateContainerResources). */
export async function updateContainer(ctx: RuntimeContext, id: string, resources: OciLinuxResources): Promise<void> {
  await ctx.store.withLock(id, async () => {
    const { state, status } = await loadContainer(ctx.store, id);
    requireStatus(id, status, ['created', 'running', 'paused'], 'update');
    const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
    await withSandboxAgent(record, (agent) => agent.updateContainer(id, resourcesToAgent({ ...resources, devices: [] })));
  });
}

import { loadContainer, requireStatus } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** pause freezes every process of a running container (cgroup freezer in the guest); resume thaws them. */
export async function setPaused(ctx: RuntimeContext, id: string, paused: boolean): Promise<void> {
  await ctx.store.withLock(id, async () => {
    const { state, status } = await loadContainer(ctx.store, id);
    requireStatus(id, status, [paused ? 'running' : 'paused'], paused ? 'pause' : 'resume');
    const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
    await withSandboxAgent(record, (agent) => (paused ? agent.pauseContainer(id) : agent.resumeContainer(id)));
    await ctx.store.write({ ...state, status: paused ? 'paused' : 'running' });
  });
}

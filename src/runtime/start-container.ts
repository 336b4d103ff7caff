import { faultPoint } from '../util/fault-point.js';
import { loadContainer, requireStatus } from './container-record.js';
import { ociVersion } from './describe-container.js';
import { runHooks } from './oci-hooks.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** start: runs the process that create prepared. */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  await ctx.store.withLock(id, async () => {
    const { state, status } = await loadContainer(ctx.store, id);
    requireStatus(id, status, ['created'], 'start');
    const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
    await withSandboxAgent(record, (agent) => agent.startContainer(id));
    faultPoint('start:after-agent');
    await ctx.store.write({ ...state, status: 'running' });
    const pid = state.carrier?.pid ?? 0;
    await runHooks(state.hooks, 'poststart', { ociVersion, id, status: 'running', pid, bundle: state.bundle, annotations: state.annotations }, ctx.logger, false);
  });
}

import { loadContainer, requireStatus } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** kill: signals the container's init process, or with all every process in it. */
export async function killContainer(ctx: RuntimeContext, id: string, signal: number, all: boolean): Promise<void> {
  const { state, status } = await loadContainer(ctx.store, id);
  requireStatus(id, status, ['created', 'running', 'paused'], 'kill');
  const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
  // The agent takes an empty exec id as "every process of the container".
  await withSandboxAgent(record, (agent) => agent.signalProcess(id, all ? '' : id, signal));
}

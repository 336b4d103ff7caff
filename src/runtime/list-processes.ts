import { loadContainer, requireStatus } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** ps: the container's processes as the guest sees them (a ps table, or a JSON list of pids). */
export async function listProcesses(ctx: RuntimeContext, id: string, format: 'table' | 'json'): Promise<string> {
  const { state, status } = await loadContainer(ctx.store, id);
  requireStatus(id, status, ['created', 'running', 'paused'], 'list the processes of');
  const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
  return withSandboxAgent(record, (agent) => agent.listProcesses(id, format));
}

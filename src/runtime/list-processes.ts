import { containerCgroupPids } from '../cgroups/container-cgroup.js';
import { isSameProcessAlive } from '../util/process-identity.js';
import { loadContainer, requireStatus } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/**
 * ps. The table is the container's processes as the guest sees them. The JSON
 * list is what runc's callers take it for, host pids (docker top filters the
 * host's ps by them): the container's processes run in the VM, so their host
 * side is its carriers, the container's and its execs' (the pids in its host
 * cgroup, or its own carrier without one). Never guest pids, which name
 * unrelated host processes.
 */
export async function listProcesses(ctx: RuntimeContext, id: string, format: 'table' | 'json'): Promise<string> {
  const { state, status } = await loadContainer(ctx.store, id);
  requireStatus(id, status, ['created', 'running', 'paused'], 'list the processes of');
  if (format === 'json') {
    const pids = new Set(state.hostCgroup ? await containerCgroupPids(state.hostCgroup) : []);
    if (state.carrier && (await isSameProcessAlive(state.carrier))) pids.add(state.carrier.pid);
    return JSON.stringify([...pids].sort((a, b) => a - b));
  }
  const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
  return withSandboxAgent(record, (agent) => agent.listProcesses(id, format));
}

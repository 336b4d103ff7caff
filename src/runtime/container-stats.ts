import { loadContainer, requireStatus } from './container-record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';

/** The container's cgroup figures in the guest, as the agent reads them (cgroup v2 files). */
export interface ContainerStats {
  cpu: { totalNs: number; kernelNs: number; userNs: number };
  memory: { usage: number; limit: number };
  pids: { current: number; limit: number };
}

interface AgentStats {
  cgroup_stats?: {
    cpu_stats?: { cpu_usage?: { total_usage?: number | string; usage_in_kernelmode?: number | string; usage_in_usermode?: number | string } };
    memory_stats?: { usage?: { usage?: number | string; limit?: number | string } };
    pids_stats?: { current?: number | string; limit?: number | string };
  };
}

/** Stats of a live container: the agent's StatsContainer. */
export async function containerStats(ctx: RuntimeContext, id: string): Promise<ContainerStats> {
  const { state, status } = await loadContainer(ctx.store, id);
  requireStatus(id, status, ['created', 'running', 'paused'], 'read the stats of');
  const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
  const stats = (await withSandboxAgent(record, (agent) => agent.statsContainer(id))) as AgentStats;
  const c = stats.cgroup_stats ?? {};
  const cpu = c.cpu_stats?.cpu_usage ?? {};
  return {
    cpu: { totalNs: Number(cpu.total_usage ?? 0), kernelNs: Number(cpu.usage_in_kernelmode ?? 0), userNs: Number(cpu.usage_in_usermode ?? 0) },
    memory: { usage: Number(c.memory_stats?.usage?.usage ?? 0), limit: Number(c.memory_stats?.usage?.limit ?? 0) },
    pids: { current: Number(c.pids_stats?.current ?? 0), limit: Number(c.pids_stats?.limit ?? 0) },
  };
}

/** runc events' event: its type, the container, and (for stats) runc's types.Stats shape. */
export interface RuncEvent {
  type: 'stats';
  id: string;
  data: Record<string, unknown>;
}

/** The guest's figures in runc's types.Stats shape, as `runc events` prints them (what kata-ts cannot know is left out, not invented). */
export function runcStatsEvent(id: string, stats: ContainerStats): RuncEvent {
  return {
    type: 'stats',
    id,
    data: {
      cpu: { usage: { total: stats.cpu.totalNs, kernel: stats.cpu.kernelNs, user: stats.cpu.userNs }, throttling: {} },
      memory: { usage: { usage: stats.memory.usage, limit: stats.memory.limit } },
      pids: { current: stats.pids.current, limit: stats.pids.limit },
    },
  };
}

import { AgentClient } from '../agent-client/agent-client.js';
import { vmIsRunning } from '../hypervisor/qemu-vm.js';
import { KataError } from '../util/errors.js';
import type { SandboxRecord } from './sandbox-record.js';

/** Runs fn with a client of the sandbox's agent; a dead VM is an error that says so. */
export async function withSandboxAgent<T>(record: SandboxRecord, fn: (agent: AgentClient) => Promise<T>): Promise<T> {
  if (!(await vmIsRunning(record.vm))) {
    throw new KataError('VM', `the VM of sandbox ${record.sandboxId} is not running (QEMU pid ${record.vm.qemu.pid} is gone)`);
  }
  const agent = new AgentClient(record.agentUrl);
  try {
    return await fn(agent);
  } finally {
    agent.close();
  }
}

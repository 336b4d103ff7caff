import { vmIsRunning } from '../hypervisor/qemu-vm.js';
import { podAgent, podHypervisor, podRelays, type SandboxAgent } from '../pod/pod-agent.js';
import type { SandboxRelays } from '../pod/output-watch.js';
import type { SandboxHypervisor } from '../pod/pod-hypervisor.js';
import { KataError } from '../util/errors.js';
import { spawnPod } from './pod-spawn.js';
import type { RuntimeContext } from './runtime-context.js';
import type { SandboxRecord } from './sandbox-record.js';

/** How long a pod process started again may take to reach the agent. */
const podRestartTimeoutMs = 60_000;

/**
 * Runs fn with the sandbox's agent, reached through its pod process (started
 * again if it died); a dead VM is an error that says so.
 */
export async function withSandboxAgent<T>(record: Pick<SandboxRecord, 'sandboxId' | 'vm'>, fn: (agent: SandboxAgent) => Promise<T>, log: Partial<RuntimeContext['log']> = {}): Promise<T> {
  return fn(podAgent(...(await podOf(record, log))));
}

/** Runs fn with the sandbox's QEMU hot-plug, done by its pod process (the owner of QMP). */
export async function withSandboxHypervisor<T>(record: Pick<SandboxRecord, 'sandboxId' | 'vm'>, fn: (hypervisor: SandboxHypervisor) => Promise<T>, log: Partial<RuntimeContext['log']> = {}): Promise<T> {
  return fn(podHypervisor(...(await podOf(record, log))));
}

/** Runs fn with the sandbox's I/O relays, in its pod process. */
export async function withSandboxRelays<T>(record: Pick<SandboxRecord, 'sandboxId' | 'vm'>, fn: (relays: SandboxRelays) => Promise<T>, log: Partial<RuntimeContext['log']> = {}): Promise<T> {
  return fn(podRelays(...(await podOf(record, log))));
}

async function podOf(record: Pick<SandboxRecord, 'sandboxId' | 'vm'>, log: Partial<RuntimeContext['log']>): Promise<[string, () => Promise<void>]> {
  if (!(await vmIsRunning(record.vm))) {
    throw new KataError('VM', `the VM of sandbox ${record.sandboxId} is not running (QEMU pid ${record.vm.qemu.pid} is gone)`);
  }
  const vmDir = record.vm.layout.dir;
  return [vmDir, async () => {
    await spawnPod(vmDir, log, podRestartTimeoutMs, false);
  }];
}

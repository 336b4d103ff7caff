import type { StateStore } from '../store/state-store.js';
import type { LogFormat, Logger } from '../util/logger.js';
import type { ProcessIdentity } from '../util/process-identity.js';

/** What every runtime operation needs from the command that runs it. */
export interface RuntimeContext {
  store: StateStore;
  logger: Logger;
  /** Passed on to the processes we start (pod process, carriers), so their logs go where the caller asked. */
  log: { file?: string; format: LogFormat; debug: boolean };
  /**
   * Starts a new sandbox's pod process; by default a `kata-ts pod` process of its
   * own. The containerd shim serves the pod in its own process instead.
   */
  startPod?: PodStarter;
}

/** Starts the pod process of a VM dir whose VM has just started, and resolves once it answers. */
export type PodStarter = (vmDir: string, readyTimeoutMs: number) => Promise<ProcessIdentity>;

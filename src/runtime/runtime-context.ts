import type { StateStore } from '../store/state-store.js';
import type { LogFormat, Logger } from '../util/logger.js';

/** What every runtime operation needs from the command that runs it. */
export interface RuntimeContext {
  store: StateStore;
  logger: Logger;
  /** Passed on to the processes we start (pod process, carriers), so their logs go where the caller asked. */
  log: { file?: string; format: LogFormat; debug: boolean };
}

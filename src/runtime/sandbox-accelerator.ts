import type { RuntimeConfig } from '../config/runtime-config.js';
import { acceleratorDecision } from '../host/accelerator.js';
import { KataError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/**
 * The accelerator a new sandbox VM boots with: the same decision check and env
 * print. accelerator = "kvm" on a host where KVM does not work fails here,
 * before anything is created.
 */
export async function sandboxAccelerator(config: RuntimeConfig, logger: Logger): Promise<'kvm' | 'tcg'> {
  const decision = await acceleratorDecision(config.hypervisor);
  if (decision.accelerator === null) throw new KataError('HOST_UNSUPPORTED', decision.reason);
  logger.info(`accelerator ${decision.accelerator}: ${decision.reason}`);
  return decision.accelerator;
}

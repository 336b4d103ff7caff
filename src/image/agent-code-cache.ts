import path from 'node:path';
import { runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';
import { agentNodeFlags } from './init-script.js';

/**
 * Records V8's code cache of the agent bundle in `agentDir`, by running the
 * agent's warm-up with the node binary and flags the guest runs it with.
 */
export async function recordAgentCodeCache(node: string, agentDir: string): Promise<void> {
  try {
    await runCommand(node, [...agentNodeFlags, path.join(agentDir, 'kata-agent-loader.cjs'), '--write-code-cache'], { timeoutMs: 60_000 });
  } catch (err) {
    throw new KataError('IO', `cannot record the agent's code cache: ${messageOf(err)}`, { cause: err });
  }
}

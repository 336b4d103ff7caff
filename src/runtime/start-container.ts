import { faultPoint } from '../util/fault-point.js';
import { loadContainer, requireStatus } from './container-record.js';
import { ociVersion } from './describe-container.js';
import { runHooks } from './oci-hooks.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent, withSandboxRelays } from './sandbox-agent.js';
import { messageOf } from '../util/errors.js';
import { readSandboxRecord } from './sandbox-record.js';

/** How long start waits for the process's first output before poststart hooks run. */
const poststartOutputWaitMs = 2000;

/** start: runs the process that create prepared; poststart hooks run once it has started (and spoken, if it does at once). */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  await ctx.store.withLock(id, async () => {
    const { state, status } = await loadContainer(ctx.store, id);
    requireStatus(id, status, ['created'], 'start');
    const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
    await withSandboxAgent(record, (agent) => agent.startContainer(id));
    faultPoint('start:after-agent');
    await ctx.store.write({ ...state, status: 'running' });
    const pid = state.carrier?.pid ?? 0;
    if (state.hooks?.poststart?.length) {
      // The agent has let the process go; its first output still crosses the VM. A poststart
      // hook that looks for it finds it (a silent process costs start at most this wait).
      const seen = await withSandboxRelays(record, (relays) => relays.firstOutput(id, id, poststartOutputWaitMs)).catch((err: unknown) => `unknown (${messageOf(err)})`);
      ctx.logger.debug(`poststart hooks run; the process's first output: ${seen}`);
    }
    await runHooks(state.hooks, 'poststart', { ociVersion, id, status: 'running', pid, bundle: state.bundle, annotations: state.annotations }, ctx.logger, false);
  });
}

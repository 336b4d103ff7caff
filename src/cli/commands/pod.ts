import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

/** Hidden: the per-sandbox pod process that create starts (and a carrier or a command starts again). */
export function registerPod(program: Command): void {
  program
    .command('pod', { hidden: true })
    .description("own a sandbox VM's agent session and its processes' I/O (started by kata-ts itself)")
    .requiredOption('--vm-dir <dir>', "the sandbox's VM dir")
    .option('--ready-timeout <ms>', 'how long to wait for the agent', '120000')
    .option('--fresh', 'started with the VM: no agent session to take over')
    .action(async (options: { vmDir: string; readyTimeout: string; fresh?: boolean }, command: Command) => {
      const { runPod } = await import('../../pod/pod-process.js');
      const ctx = contextFor(command);
      // Never stdout or stderr: they are /dev/null, and the log file is the caller's --log.
      await runPod({ vmDir: options.vmDir, fresh: Boolean(options.fresh), readyTimeoutMs: Number(options.readyTimeout), logger: ctx.logger.fileOnly(), log: ctx.runtime.log });
      process.exit(0);
    });
}

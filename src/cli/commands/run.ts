import type { Command } from 'commander';
import { messageOf } from '../../util/errors.js';
import { contextFor, setExitCode, stderrIsContainerOutput } from '../command-context.js';
import { addCreateFlags, type CreateFlags } from './create.js';

export function registerRun(program: Command): void {
  addCreateFlags(program.command('run').description('create and start a container; in the foreground, relay its stdio, delete it when it exits, and exit with its status'))
    .argument('<container-id>')
    .option('-d, --detach', 'return once the container has started')
    .action(async (id: string, flags: CreateFlags & { detach?: boolean }, command: Command) => {
      const { waitForCarrier } = await import('../../runtime/carrier-process.js');
      const { createContainer } = await import('../../runtime/create-container.js');
      const { deleteContainer } = await import('../../runtime/delete-container.js');
      const { startContainer } = await import('../../runtime/start-container.js');
      const ctx = contextFor(command, { warningsOnStderr: !stderrIsContainerOutput(flags, Boolean(flags.detach)) });
      const config = await ctx.loadConfig();
      const { carrier } = await createContainer(ctx.runtime, config, {
        id, bundle: flags.bundle, consoleSocket: flags.consoleSocket, pidFile: flags.pidFile, foreground: !flags.detach,
      });
      try {
        await startContainer(ctx.runtime, id);
      } catch (err) {
        await deleteContainer(ctx.runtime, id, true).catch((e: unknown) => ctx.logger.warn(`cleaning up: ${messageOf(e)}`));
        throw err;
      }
      if (flags.detach) return;
      const status = await waitForCarrier(carrier);
      await deleteContainer(ctx.runtime, id, true);
      setExitCode(status);
    });
}

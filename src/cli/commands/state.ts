import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerState(program: Command): void {
  program
    .command('state')
    .description('print the OCI state of a container as JSON')
    .argument('<container-id>')
    .action(async (id: string, _options: object, command: Command) => {
      const { describeContainer } = await import('../../runtime/describe-container.js');
      const ctx = contextFor(command);
      const state = await ctx.store.read(id);
      ctx.print(JSON.stringify(await describeContainer(ctx.store, state), null, 2));
    });
}

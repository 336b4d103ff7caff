import { Option, type Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerPs(program: Command): void {
  program
    .command('ps')
    .description('list the processes running in a container (as the guest sees them)')
    .argument('<container-id>')
    .addOption(new Option('-f, --format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (id: string, flags: { format: 'table' | 'json' }, command: Command) => {
      const { listProcesses } = await import('../../runtime/list-processes.js');
      const ctx = contextFor(command);
      ctx.print((await listProcesses(ctx.runtime, id, flags.format)).trimEnd());
    });
}

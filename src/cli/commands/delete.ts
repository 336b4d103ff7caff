import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerDelete(program: Command): void {
  program
    .command('delete')
    .alias('rm')
    .description('delete a stopped container (and its VM with the last container); --force kills it first')
    .argument('<container-id>')
    .option('-f, --force', 'kill a running container, then delete it')
    .action(async (id: string, flags: { force?: boolean }, command: Command) => {
      const { deleteContainer } = await import('../../runtime/delete-container.js');
      await deleteContainer(contextFor(command).runtime, id, Boolean(flags.force));
    });
}

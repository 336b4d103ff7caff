import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the process of a created container')
    .argument('<container-id>')
    .action(async (id: string, _flags: object, command: Command) => {
      const { startContainer } = await import('../../runtime/start-container.js');
      await startContainer(contextFor(command).runtime, id);
    });
}

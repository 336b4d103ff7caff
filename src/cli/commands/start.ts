import type { Command } from 'commander';
import { startContainer } from '../../runtime/start-container.js';
import { contextFor } from '../command-context.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the process of a created container')
    .argument('<container-id>')
    .action(async (id: string, _flags: object, command: Command) => {
      await startContainer(contextFor(command).runtime, id);
    });
}

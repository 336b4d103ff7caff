import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerPause(program: Command): void {
  program
    .command('pause')
    .description('suspend every process of a running container')
    .argument('<container-id>')
    .action(async (id: string, _flags: object, command: Command) => {
      const { setPaused } = await import('../../runtime/pause-container.js');
      await setPaused(contextFor(command).runtime, id, true);
    });
}

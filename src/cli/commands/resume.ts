import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerResume(program: Command): void {
  program
    .command('resume')
    .description('resume a paused container')
    .argument('<container-id>')
    .action(async (id: string, _flags: object, command: Command) => {
      const { setPaused } = await import('../../runtime/pause-container.js');
      await setPaused(contextFor(command).runtime, id, false);
    });
}

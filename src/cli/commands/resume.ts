import type { Command } from 'commander';
import { setPaused } from '../../runtime/pause-container.js';
import { contextFor } from '../command-context.js';

export function registerResume(program: Command): void {
  program
    .command('resume')
    .description('resume a paused container')
    .argument('<container-id>')
    .action(async (id: string, _flags: object, command: Command) => {
      await setPaused(contextFor(command).runtime, id, false);
    });
}

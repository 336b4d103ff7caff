import type { Command } from 'commander';
import { parseSignal } from '../../util/signals.js';
import { contextFor } from '../command-context.js';

export function registerKill(program: Command): void {
  program
    .command('kill')
    .description('send a signal to the container process (SIGTERM by default)')
    .argument('<container-id>')
    .argument('[signal]', 'number, name or SIG-name', 'SIGTERM')
    .option('-a, --all', 'signal every process in the container')
    .action(async (id: string, signal: string, flags: { all?: boolean }, command: Command) => {
      const { killContainer } = await import('../../runtime/kill-container.js');
      await killContainer(contextFor(command).runtime, id, parseSignal(signal), Boolean(flags.all));
    });
}

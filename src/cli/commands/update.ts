import { text } from 'node:stream/consumers';
import type { Command } from 'commander';
import type { UpdateFlags } from '../../runtime/resource-update.js';
import { contextFor } from '../command-context.js';

export function registerUpdate(program: Command): void {
  program
    .command('update')
    .description('set new memory, CPU and pids limits on a container (its cgroup in the guest)')
    .argument('<container-id>')
    .option('-r, --resources <file>', 'OCI linux.resources JSON (- reads standard input, as containerd passes it)')
    .option('--memory <size>', 'memory limit (bytes, or with k/m/g)')
    .option('--memory-reservation <size>', 'memory soft limit')
    .option('--memory-swap <size>', 'memory plus swap limit')
    .option('--cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpu-quota <us>', 'CPU CFS quota in microseconds per period')
    .option('--cpu-period <us>', 'CPU CFS period in microseconds')
    .option('--pids-limit <n>', 'maximum number of processes')
    .action(async (id: string, flags: UpdateFlags, command: Command) => {
      const { resourcesFromFlags } = await import('../../runtime/resource-update.js');
      const { updateContainer } = await import('../../runtime/update-container.js');
      const ctx = contextFor(command);
      await updateContainer(ctx.runtime, id, await resourcesFromFlags(flags, () => text(process.stdin)));
    });
}

import type { Command } from 'commander';
import { startAgentProxy } from '../../proxy/agent-proxy.js';
import { contextFor } from '../command-context.js';

/** Hidden: the per-sandbox proxy process the runtime starts when use_vsock = false. */
export function registerProxy(program: Command): void {
  program
    .command('proxy', { hidden: true })
    .description('multiplex a VM agent channel with yamux (started by kata-ts itself)')
    .requiredOption('--channel <socket>', "the VM's virtio-serial chardev socket")
    .requiredOption('--listen <socket>', 'unix socket for host clients')
    .action(async (options: { channel: string; listen: string }, command: Command) => {
      const ctx = contextFor(command);
      const proxy = await startAgentProxy(options.channel, options.listen, ctx.logger);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void proxy.close());
      await proxy.closed;
    });
}

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
    .option('--ready-timeout <ms>', 'how long to wait for the agent', '120000')
    .action(async (options: { channel: string; listen: string; readyTimeout: string }, command: Command) => {
      const ctx = contextFor(command);
      const proxy = await startAgentProxy(options.channel, options.listen, ctx.logger, Number(options.readyTimeout));
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void proxy.close());
      await proxy.closed;
    });
}

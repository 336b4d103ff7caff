import { closeSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { shimReadyFd } from '../../runtime/shim-process.js';
import { runShim } from '../../shim/container-shim.js';
import { messageOf } from '../../util/errors.js';
import { contextFor } from '../command-context.js';

interface ShimFlags {
  agentUrl: string;
  container: string;
  execId: string;
  consoleSocket?: string;
  tty?: boolean;
}

/** One line to whoever started the shim, on the fd it left open for that. */
function report(line: string): void {
  try {
    writeSync(shimReadyFd, line + '\n');
    closeSync(shimReadyFd);
  } catch {
    // started by hand, without the report fd
  }
}

/** Hidden: the per-process shim that create, run and exec start; its pid is the container's pid for callers. */
export function registerShim(program: Command): void {
  program
    .command('shim', { hidden: true })
    .description('relay stdio and signals of one container process (started by kata-ts itself)')
    .requiredOption('--agent-url <url>', 'where the guest agent listens')
    .requiredOption('--container <id>', 'container id')
    .requiredOption('--exec-id <id>', 'process id in the agent (the container id for its init process)')
    .option('--console-socket <path>', 'send a pty master to this socket')
    .option('--tty', 'the process has a terminal')
    .action(async (flags: ShimFlags, command: Command) => {
      const ctx = contextFor(command);
      let status: number;
      try {
        // Never stderr: it belongs to the container process.
        const logger = ctx.logger.fileOnly().child({ container: flags.container, exec: flags.execId });
        status = await runShim({
          agentUrl: flags.agentUrl,
          containerId: flags.container,
          execId: flags.execId,
          consoleSocket: flags.consoleSocket,
          tty: Boolean(flags.tty),
          logger,
          onReady: () => report('ready'),
        });
      } catch (err) {
        report(messageOf(err));
        throw err;
      }
      // stdin may still hold the event loop open: leave with the process's status.
      process.exit(status);
    });
}

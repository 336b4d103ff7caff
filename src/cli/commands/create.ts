import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export interface CreateFlags {
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
}

/** Flags that create and run share, as runc names them. */
export function addCreateFlags(command: Command): Command {
  return command
    .option('-b, --bundle <dir>', 'the OCI bundle (config.json and rootfs)', '.')
    .option('--console-socket <path>', 'unix socket that receives the pty master when process.terminal is true')
    .option('--pid-file <file>', 'write the container pid (its carrier) here, last')
    .option('--no-pivot', 'accepted for runc compatibility (the guest never pivots)')
    .option('--no-new-keyring', 'accepted for runc compatibility');
}

export function registerCreate(program: Command): void {
  addCreateFlags(program.command('create').description('create a container in its VM (boots the sandbox VM, or joins the CRI sandbox)'))
    .argument('<container-id>')
    .action(async (id: string, flags: CreateFlags, command: Command) => {
      const { createContainer } = await import('../../runtime/create-container.js');
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      await createContainer(ctx.runtime, config, { id, bundle: flags.bundle, consoleSocket: flags.consoleSocket, pidFile: flags.pidFile });
    });
}

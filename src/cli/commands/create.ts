import { InvalidArgumentError, Option, type Command } from 'commander';
import { contextFor, stderrIsContainerOutput } from '../command-context.js';

export interface CreateFlags {
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
}

/**
 * runc's --preserve-fds N (podman adds it for --preserve-fds and socket
 * activation): 0 is taken; more is refused, since the container's processes run
 * in a VM, where the host's file descriptors cannot be handed.
 */
export function preserveFdsOption(): Option {
  return new Option('--preserve-fds <n>', 'extra file descriptors to pass (only 0: a VM cannot receive the host\'s)').argParser((value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('a number of file descriptors is expected.');
    if (Number(value) > 0) throw new InvalidArgumentError(`the container runs in a VM, which cannot receive the host's file descriptors (${value} asked; only 0 works).`);
    return 0;
  });
}

/** Flags that create and run share, as runc names them. */
export function addCreateFlags(command: Command): Command {
  return command
    .option('-b, --bundle <dir>', 'the OCI bundle (config.json and rootfs)', '.')
    .option('--console-socket <path>', 'unix socket that receives the pty master when process.terminal is true')
    .option('--pid-file <file>', 'write the container pid (its carrier) here, last')
    .option('--no-pivot', 'accepted for runc compatibility (the guest never pivots)')
    .option('--no-new-keyring', 'accepted for runc compatibility')
    .addOption(preserveFdsOption());
}

export function registerCreate(program: Command): void {
  addCreateFlags(program.command('create').description('create a container in its VM (boots the sandbox VM, or joins the CRI sandbox)'))
    .argument('<container-id>')
    .action(async (id: string, flags: CreateFlags, command: Command) => {
      const { createContainer } = await import('../../runtime/create-container.js');
      const ctx = contextFor(command, { warningsOnStderr: !stderrIsContainerOutput(flags, true) });
      const config = await ctx.loadConfig();
      await createContainer(ctx.runtime, config, { id, bundle: flags.bundle, consoleSocket: flags.consoleSocket, pidFile: flags.pidFile });
    });
}

import type { Command } from 'commander';
import { preserveFdsOption } from './create.js';
import { contextFor, setExitCode } from '../command-context.js';

interface ExecFlagsCli {
  process?: string;
  tty?: boolean;
  detach?: boolean;
  consoleSocket?: string;
  pidFile?: string;
  env: string[];
  cwd?: string;
  user?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a process in a running container; in the foreground, relay its stdio and exit with its status')
    .argument('<container-id>')
    .argument('[command...]', 'command and arguments (unless --process)')
    .option('-p, --process <file>', 'process.json describing the process')
    .option('-t, --tty', 'give the process a terminal')
    .option('-d, --detach', 'do not wait for the process')
    .option('--console-socket <path>', 'unix socket that receives the pty master (with --tty)')
    .option('--pid-file <file>', 'write the process pid (its carrier) here')
    .option('-e, --env <KEY=VALUE>', 'extra environment variable (repeatable)', collect, [])
    .option('--cwd <dir>', 'working directory in the container')
    .option('-u, --user <uid[:gid]>', 'user to run as')
    .addOption(preserveFdsOption())
    .passThroughOptions()
    .action(async (id: string, args: string[], flags: ExecFlagsCli, command: Command) => {
      const { execProcess } = await import('../../runtime/exec-process.js');
      const { waitForCarrier } = await import('../../runtime/carrier-process.js');
      const ctx = contextFor(command);
      const { carrier } = await execProcess(ctx.runtime, {
        id,
        flags: { processFile: flags.process, args, tty: flags.tty, env: flags.env, cwd: flags.cwd, user: flags.user },
        detach: Boolean(flags.detach), pidFile: flags.pidFile, consoleSocket: flags.consoleSocket,
      });
      if (!flags.detach) setExitCode(await waitForCarrier(carrier));
    });
}

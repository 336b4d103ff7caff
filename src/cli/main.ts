import { Command, CommanderError, Option } from 'commander';
import { defaultConfigPaths } from '../config/config-paths.js';
import { isKataError, messageOf } from '../util/errors.js';
import { Logger } from '../util/logger.js';
import { contextFor, defaultRoot, setExitCode, writeStderr } from './command-context.js';
import { registerBlockVolume } from './commands/block-volume.js';
import { registerCheck } from './commands/check.js';
import { registerCreate } from './commands/create.js';
import { registerDelete } from './commands/delete.js';
import { registerExec } from './commands/exec.js';
import { registerKill } from './commands/kill.js';
import { registerPause } from './commands/pause.js';
import { registerPs } from './commands/ps.js';
import { registerResume } from './commands/resume.js';
import { registerUpdate } from './commands/update.js';
import { registerRun } from './commands/run.js';
import { registerPod } from './commands/pod.js';
import { registerSpec } from './commands/spec.js';
import { registerStart } from './commands/start.js';
import { registerEnv } from './commands/env.js';
import { registerCheckpoint } from './commands/checkpoint.js';
import { registerEvents } from './commands/events.js';
import { registerFeatures } from './commands/features.js';
import { registerKataNetwork } from './commands/kata-network.js';
import { registerImage } from './commands/image.js';
import { registerFactory } from './commands/factory.js';
import { registerList } from './commands/list.js';
import { registerState } from './commands/state.js';
import { registerVersion, runcVersionText } from './commands/version.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function buildProgram(): Command {
  const program = new Command('kata-ts')
    .description('OCI runtime that runs each container inside a lightweight QEMU virtual machine')
    .option('--kata-config <path>', 'configuration file (skips the search order)')
    .option('--config <path>', 'alias of --kata-config')
    .option('--root <dir>', 'directory holding container state', defaultRoot)
    .option('--log <file>', 'append log entries to this file (never stdout)')
    .addOption(new Option('--log-format <format>', 'log entry format').choices(['text', 'json']).default('text'))
    .option('--debug', 'log debug messages')
    .option('--systemd-cgroup', 'accepted for runc compatibility; ignored')
    .option('--rootless <value>', 'accepted for runc compatibility; ignored')
    .option('--kata-show-default-config-paths', 'print the configuration files searched, in order, and exit')
    .version(runcVersionText(), '-v, --version', 'print the version and exit')
    // Global flags go before the command (as with runc); exec passes what follows its command on.
    .enablePositionalOptions()
    // A usage error is one line, with where to look (callers parse stderr line by line).
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`kata-ts: ${text.replace(/^error: /, '').trim().replaceAll('\n', ' ')} (see kata-ts --help)\n`),
    })
    .exitOverride();

  // Handled while parsing, like --version: it needs no command.
  program.hook('preAction', (_program, action) => {
    commandLogger = contextFor(action).logger.fileOnly();
  });

  program.on('option:kata-show-default-config-paths', () => {
    print(defaultConfigPaths().join('\n'));
    process.exit(0);
  });

  registerCheck(program);
  registerFactory(program);
  registerEnv(program);
  registerVersion(program, print);
  registerCreate(program);
  registerStart(program);
  registerRun(program);
  registerState(program);
  registerList(program);
  registerPs(program);
  registerExec(program);
  registerKill(program);
  registerPause(program);
  registerResume(program);
  registerUpdate(program);
  registerDelete(program);
  registerSpec(program);
  registerBlockVolume(program);
  registerCheckpoint(program);
  registerFeatures(program);
  registerKataNetwork(program);
  registerEvents(program);
  registerImage(program);
  registerPod(program);

  // Subcommands inherit the error handling and output of the program.
  const withSubcommands = (commands: readonly Command[]): Command[] => commands.flatMap((c) => [c, ...withSubcommands(c.commands)]);
  for (const sub of withSubcommands(program.commands)) {
    sub.exitOverride().configureOutput(program.configureOutput());
  }
  return program;
}

/** The logger of the command being run, so failures reach its --log file too. */
let commandLogger: Logger | undefined;

/** Logs a failure to the log file (when --log is set) and, as one line, to stderr. */
function reportFailure(err: unknown): void {
  const message = messageOf(err).split('\n')[0] ?? 'unknown error';
  commandLogger?.error(message);
  writeStderr(`kata-ts: ${message}`);
  if (!isKataError(err) && process.env.KATA_TS_STACK) writeStderr(String((err as Error).stack));
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed usage errors.
      setExitCode(err.exitCode === 0 ? 0 : 1);
      return;
    }
    reportFailure(err);
    setExitCode(1);
  }
}

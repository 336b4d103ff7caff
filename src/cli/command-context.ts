import type { Command } from 'commander';
import { loadRuntimeConfig } from '../config/load-config.js';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { RuntimeContext } from '../runtime/runtime-context.js';
import { StateStore } from '../store/state-store.js';
import { Logger, type LogFormat } from '../util/logger.js';

/** Flags accepted by every command (runc and kata-runtime compatible). */
export interface GlobalOptions {
  kataConfig?: string;
  config?: string;
  root: string;
  log?: string;
  logFormat: LogFormat;
  debug?: boolean;
  systemdCgroup?: boolean;
  rootless?: string;
}

export const defaultRoot = '/run/kata-ts';

/** What a command file gets: parsed globals, a logger, and lazy access to config and state. */
export interface CommandContext {
  globals: GlobalOptions;
  logger: Logger;
  store: StateStore;
  loadConfig(): Promise<RuntimeConfig>;
  /** The only way commands write to stdout. */
  print(text: string): void;
  /** What runtime operations need: the store, the logger, and where child processes log. */
  runtime: RuntimeContext;
}

export function writeStderr(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

/**
 * Whether this command's stderr becomes the container's: create and run -d hand
 * their stdio to the container when it has no terminal, and conmon, CRI-O and
 * containerd's shim read that as the container's output. Warnings then stay out
 * of it (they go to --log when given); a person at a terminal still sees them,
 * and errors always go to stderr (the container then never runs).
 */
export function stderrIsContainerOutput(flags: { consoleSocket?: string; detach?: boolean }, handsStdio: boolean): boolean {
  return handsStdio && !flags.consoleSocket && !process.stderr.isTTY;
}

export function contextFor(command: Command, options: { warningsOnStderr?: boolean } = {}): CommandContext {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const stderr = options.warningsOnStderr === false ? undefined : writeStderr;
  const logger = new Logger({ file: globals.log, format: globals.logFormat, debug: Boolean(globals.debug), ...(stderr ? { stderr } : {}) });
  let config: Promise<RuntimeConfig> | undefined;
  const store = new StateStore(globals.root);
  return {
    globals,
    logger,
    store,
    runtime: { store, logger, log: { file: globals.log, format: globals.logFormat, debug: Boolean(globals.debug) } },
    loadConfig() {
      config ??= loadRuntimeConfig({
        explicitPath: globals.kataConfig ?? globals.config,
        envPath: process.env.KATA_CONF_FILE,
      }).then((loaded) => {
        for (const warning of loaded.warnings) logger.warn(warning);
        return loaded;
      });
      return config;
    },
    print(text: string) {
      process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    },
  };
}

/** Commands set this instead of calling process.exit, so pending writes flush. */
export function setExitCode(code: number): void {
  process.exitCode = code;
}

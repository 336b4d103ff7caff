import { closeSync, openSync } from 'node:fs';
import { execa } from 'execa';
import { kataTsBin } from './fixtures.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  /** Send the command's stdout and stderr to this file (a detached carrier keeps them open). */
  outputFile?: string;
  timeoutMs?: number;
}

/** Runs another tool (ctr, podman) the same way: a result, never a throw on a non-zero exit. */
export async function runTool(file: string, args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await execa(file, args, { reject: false, timeout: options.timeoutMs ?? 60_000, stdin: 'ignore', ...(options.env ? { env: options.env } : {}) });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Runs the built bin/kata-ts as a user would, never throwing on a non-zero exit. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  // An fd of our own, not a pipe: a detached carrier inherits it and would keep a pipe open.
  const outputFd = options.outputFile ? openSync(options.outputFile, 'a') : undefined;
  const result = await execa(kataTsBin, args, {
    reject: false,
    env: { KATA_CONF_FILE: '', ...options.env },
    timeout: options.timeoutMs ?? 60_000,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
    ...(outputFd !== undefined ? { stdout: outputFd, stderr: outputFd } : {}),
  }).finally(() => {
    if (outputFd !== undefined) closeSync(outputFd);
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

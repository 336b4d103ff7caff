import { execa } from 'execa';
import { kataTsBin } from './fixtures.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the built bin/kata-ts as a user would, never throwing on a non-zero exit. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await execa(kataTsBin, args, { reject: false, env: { KATA_CONF_FILE: '', ...env }, timeout: 60_000 });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

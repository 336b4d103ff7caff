import { execFile } from 'node:child_process';
import { failed } from './agent-error.js';

/**
 * Runs a command of the guest image (busybox applets, modprobe, mknod...) and
 * resolves with its stdout; a failure is an INTERNAL agent error that says
 * `what` (by default the command line) and the command's stderr.
 */
export function runGuestCommand(cmd: string, args: string[], options: { what?: string; timeoutMs?: number } = {}): Promise<string> {
  const what = options.what ?? `${cmd} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: options.timeoutMs ?? 0 }, (err, stdout, stderr) => (err ? reject(failed(`${what}: ${(stderr || err.message).trim()}`)) : resolve(stdout)));
  });
}

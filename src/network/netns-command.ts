import { runCommand, type RunResult } from '../util/run-command.js';

/**
 * Runs a command inside a network namespace named by path (a bind mount under
 * /var/run/netns, or /proc/PID/ns/net), the way the caller's CNI left it. No
 * fork is needed to enter a network namespace, so nsenter execs the command.
 */
export function inNetns(netns: string, file: string, args: readonly string[]): Promise<RunResult> {
  return runCommand('nsenter', [`--net=${netns}`, '--', file, ...args], { timeoutMs: 20_000 });
}

/** `ip -j ...` in the namespace, parsed. */
export async function ipJson<T>(netns: string, args: readonly string[]): Promise<T[]> {
  const { stdout } = await inNetns(netns, 'ip', ['-j', ...args]);
  return stdout.trim() ? (JSON.parse(stdout) as T[]) : [];
}

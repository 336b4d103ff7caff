import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { failed } from './agent-error.js';

const crunRoot = '/run/crun';

/** The last line of what crun wrote: its error message. */
export function lastLine(text: string, fallback: string): string {
  return text.trim().split('\n').pop() || fallback;
}

/** Runs a crun command to completion; its stderr becomes the error message. */
export function crun(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('crun', ['--root', crunRoot, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(failed(`crun ${args[0]} failed: ${lastLine(stderr, err.message)}`));
      else resolve(stdout);
    });
  });
}

/** Starts a long-lived crun command (create or exec) with the given stdio. */
export function spawnCrun(args: string[], stdio: StdioOptions): ChildProcess {
  return spawn('crun', ['--root', crunRoot, ...args], { stdio });
}

import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { failed } from './agent-error.js';

const crunRoot = '/run/crun';

/** What crun wrote on failure, as one line: its error message. */
export function crunMessage(text: string, fallback: string): string {
  // crun prints the cause first and its own summary last ("error loading config.json"): keep both, on one line.
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3);
  return lines.join('; ') || fallback;
}

/** Runs a crun command to completion; its stderr becomes the error message. */
export function crun(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('crun', ['--root', crunRoot, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(failed(`crun ${args[0]} failed: ${crunMessage(stderr, err.message)}`));
      else resolve(stdout);
    });
  });
}

/** Starts a long-lived crun command (create or exec) with the given stdio. */
export function spawnCrun(args: string[], stdio: StdioOptions): ChildProcess {
  return spawn('crun', ['--root', crunRoot, ...args], { stdio });
}

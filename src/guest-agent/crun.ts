import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';
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

/**
 * Starts a created container the way `crun start` does (open its exec fifo,
 * unlink it, write one byte), without paying for a crun process: under TCG
 * that costs 300 ms. It applies because this guest runs no OCI hooks and no
 * notify socket (the only other work `crun start` does). Returns false when
 * the fifo is not there or has no reader (started already, or its init died):
 * then `crun start` gives the error crun users expect.
 */
export async function releaseCreatedContainer(id: string): Promise<boolean> {
  const fifo = path.join(crunRoot, id, 'exec.fifo');
  let handle;
  try {
    // Non-blocking: with no reader, opening for write fails (ENXIO) instead of waiting forever.
    handle = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    await unlink(fifo);
    await handle.write(Buffer.alloc(1));
    return true;
  } finally {
    await handle.close();
  }
}

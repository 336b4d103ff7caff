import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultPoint } from '../../src/util/fault-point.js';
import { readProcStat } from '../../src/util/process-identity.js';
import { kataTsBin, repoRoot } from './fixtures.js';

/** A kata-ts command stopped (SIGSTOP) at `point`; `exited` settles when it ends, however. */
export interface StoppedCommand {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Runs kata-ts with KATA_TS_FAULT_POINT=point and waits until it stops itself there. */
export async function runUntil(root: string, point: FaultPoint, args: string[], output: 'ignore' | number = 'ignore'): Promise<StoppedCommand> {
  const child = spawn(kataTsBin, ['--root', root, '--kata-config', path.join(repoRoot, 'configuration.toml'), ...args], {
    stdio: ['ignore', output, output],
    env: { ...process.env, KATA_TS_FAULT_POINT: point },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while ((await readProcStat(child.pid!))?.state !== 'T') {
    assert.ok(child.exitCode === null && Date.now() < deadline, `kata-ts ${args.join(' ')} never reached ${point} (exit ${child.exitCode})`);
    await sleep(20);
  }
  return { child, exited };
}

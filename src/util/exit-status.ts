import os from 'node:os';

/** A child's exit as callers expect it (shells, runc): its code, or 128 + the signal that killed it. */
export function exitStatusOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? os.constants.signals[signal] : 0);
}

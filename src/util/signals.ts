import os from 'node:os';
import { KataError } from './errors.js';

/** A signal as runc's kill takes it: a number, a name (KILL) or a SIG-name (SIGKILL), any case. */
export function parseSignal(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const n = Number(trimmed);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = trimmed.toUpperCase().replace(/^SIG/, '');
    const n = (os.constants.signals as Record<string, number>)[`SIG${name}`];
    if (n !== undefined) return n;
  }
  throw new KataError('USAGE', `unknown signal ${JSON.stringify(text)}`);
}

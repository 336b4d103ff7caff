import path from 'node:path';
import { packageRoot } from '../util/package-root.js';
import type { RuntimeContext } from './runtime-context.js';

/** Arguments for process.execPath that run this kata-ts, logging where the calling command logs. */
export function kataTsArgv(log: Partial<RuntimeContext['log']>, args: string[]): string[] {
  return [
    path.join(packageRoot, 'bin', 'kata-ts'),
    ...(log.file ? ['--log', log.file] : []),
    ...(log.format ? ['--log-format', log.format] : []),
    ...(log.debug ? ['--debug'] : []),
    ...args,
  ];
}

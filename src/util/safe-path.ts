import path from 'node:path';
import { KataError } from './errors.js';

/**
 * Joins untrusted components under a base directory and refuses any result
 * that escapes it (absolute parts, `..`, or a trailing `..`).
 */
export function safeJoin(base: string, ...parts: string[]): string {
  const root = path.resolve(base);
  const joined = path.resolve(root, ...parts.map((p) => p.replace(/^\/+/, '')));
  if (joined !== root && !joined.startsWith(root + path.sep)) {
    throw new KataError('INVALID_ID', `path ${JSON.stringify(parts.join('/'))} escapes ${root}`);
  }
  return joined;
}

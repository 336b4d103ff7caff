import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-root.js';

/** The package version, read once from package.json. */
export const kataTsVersion: string = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** The commit the build came from (dist/build-info.json, written by npm run build), or "unknown". */
export function buildCommit(): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot, 'dist', 'build-info.json'), 'utf8')) as { commit?: string }).commit ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

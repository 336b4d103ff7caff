import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { KataError } from '../util/errors.js';
import { bundledConfigPath } from '../util/package-root.js';
import { systemConfigPaths } from './config-paths.js';
import type { ConfigOrigin } from './runtime-config.js';

export interface ConfigSearch {
  /** --kata-config / --config */
  explicitPath?: string;
  /** The value of KATA_CONF_FILE, passed in by cli. */
  envPath?: string;
  /** Overridable for tests. */
  systemPaths?: readonly string[];
  bundledPath?: string;
}

async function readable(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kata's search order: an explicit path or KATA_CONF_FILE must exist (a typo
 * there is an error, never a silent fallback); the system paths are tried in
 * turn; the bundled default comes last.
 */
export async function findConfig(search: ConfigSearch): Promise<{ path: string; origin: ConfigOrigin }> {
  const named: Array<[string | undefined, ConfigOrigin, string]> = [
    [search.explicitPath, 'flag', '--kata-config'],
    [search.envPath, 'env', 'KATA_CONF_FILE'],
  ];
  for (const [candidate, origin, label] of named) {
    if (!candidate) continue;
    const file = path.resolve(candidate);
    if (!(await readable(file))) {
      throw new KataError('CONFIG_NOT_FOUND', `configuration file ${file} (from ${label}) does not exist or is not readable`);
    }
    return { path: file, origin };
  }
  for (const file of search.systemPaths ?? systemConfigPaths) {
    if (await readable(file)) return { path: file, origin: 'system' };
  }
  const bundled = search.bundledPath ?? bundledConfigPath;
  if (await readable(bundled)) return { path: bundled, origin: 'bundled' };
  throw new KataError('CONFIG_NOT_FOUND', `no configuration file found (the bundled default ${bundled} is missing too)`);
}

import { bundledConfigPath } from '../util/package-root.js';

/** Kata 1.x system locations, searched after --kata-config and KATA_CONF_FILE. */
export const systemConfigPaths: readonly string[] = [
  '/etc/kata-containers/configuration.toml',
  '/usr/share/defaults/kata-containers/configuration.toml',
];

/** The full default search order, as `--kata-show-default-config-paths` prints it. */
export function defaultConfigPaths(): string[] {
  return [...systemConfigPaths, bundledConfigPath];
}

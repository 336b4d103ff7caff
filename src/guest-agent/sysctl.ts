import { writeFile } from 'node:fs/promises';
import { invalid } from './agent-error.js';

/** `net.ipv4.ping_group_range` -> `/proc/sys/net/ipv4/ping_group_range`; refuses keys that would leave /proc/sys. */
export function sysctlPath(key: string): string {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw invalid(`bad sysctl name ${JSON.stringify(key)}`);
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/** Sets sysctls of this VM (the pod's network namespace), e.g. the `net.*` ones of a container spec. */
export async function applySysctls(sysctls: Record<string, string>): Promise<void> {
  for (const [key, value] of Object.entries(sysctls)) {
    await writeFile(sysctlPath(key), value).catch((e: unknown) => {
      throw invalid(`cannot set sysctl ${key}=${value}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
}

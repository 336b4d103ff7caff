import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';

/** The first executable named `name` on PATH, or undefined. */
export async function findCommand(name: string, searchPath = process.env.PATH ?? '/usr/bin:/bin'): Promise<string | undefined> {
  for (const dir of searchPath.split(':').filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

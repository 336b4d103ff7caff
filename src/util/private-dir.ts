import { lstat, mkdir } from 'node:fs/promises';
import { errnoCode, messageOf } from './errors.js';

/**
 * Creates `dir` (0700) if needed and says why it cannot be trusted, or
 * undefined: it must be a real directory (not a symlink) of this user that no
 * one else can write. What root writes goes only into such a directory, never
 * to a predictable name in /tmp, where a planted symlink would redirect it.
 */
export async function preparePrivateDir(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') return `cannot create ${dir}: ${messageOf(err)}`;
  }
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== process.geteuid?.()) return `${dir} belongs to uid ${st.uid}, not to this user`;
  if ((st.mode & 0o022) !== 0) return `${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

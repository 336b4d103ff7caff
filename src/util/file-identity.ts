import { stat } from 'node:fs/promises';

/**
 * A file as a cache key sees it: path, device, inode, size and mtime, so that a
 * replaced or rewritten file makes a new key ('' for no file).
 */
export async function fileIdentity(file: string): Promise<string> {
  if (!file) return '';
  const st = await stat(file).catch(() => undefined);
  return st ? `${file} dev=${st.dev} ino=${st.ino} size=${st.size} mtime=${st.mtimeMs}` : `${file} missing`;
}

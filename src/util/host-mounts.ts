import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { passedFdPath, pinPath, type PinnedPath } from './pinned-path.js';
import { runCommand } from './run-command.js';
import { KataError, messageOf } from './errors.js';

/** Bind-mounts a host file or directory (recursively), read-only on request. */
export async function bindMount(source: string, target: string, readonly = false): Promise<void> {
  const pinned = await pinPath(source);
  try {
    await bindPinned(pinned, target, readonly);
  } finally {
    await pinned.close();
  }
}

/** bindMount of a pinned source: mount(8) gets its fd and mounts through it (no path lookup, no canonicalizing). */
export async function bindPinned(source: PinnedPath, target: string, readonly = false): Promise<void> {
  try {
    await runCommand('mount', ['--rbind', '--no-canonicalize', '--', passedFdPath, target], { passFds: [source.fd] });
    // Make it private: the mount must not propagate back into the source's peers.
    await runCommand('mount', ['--make-rprivate', '--', target]);
    // ro covers every submount an rbind brought along, not only the top: none stays writable through the share.
    if (readonly) {
      for (const point of (await mountPointsUnder(target)).reverse()) await runCommand('mount', ['-o', 'remount,bind,ro', '--', point]);
    }
  } catch (err) {
    await unmount(target).catch(() => undefined);
    throw new KataError('IO', `cannot bind-mount ${source.path} on ${target}: ${stderrOf(err)}`, { cause: err });
  }
}

/** Unmounts a mount point and everything under it; a busy one is detached lazily. */
export async function unmount(target: string): Promise<void> {
  for (const point of await mountPointsUnder(target)) {
    const result = await runCommand('umount', ['--', point], { reject: false });
    if (result.exitCode !== 0) await runCommand('umount', ['-l', '--', point], { reject: false });
  }
}

/** Every mount point at or below dir, deepest first (from /proc/self/mountinfo). */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const prefix = path.resolve(dir);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountPath)
    .filter((p) => p === prefix || p.startsWith(prefix + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything below dir and checks that nothing stayed: a later rm -r must not reach into a bind source. */
export async function unmountAllUnder(dir: string): Promise<void> {
  await unmount(dir);
  const left = await mountPointsUnder(dir);
  if (left.length > 0) throw new KataError('IO', `cannot unmount ${left.join(', ')}`);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function stderrOf(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  return typeof stderr === 'string' && stderr.trim() ? stderr.trim().split('\n')[0] ?? '' : messageOf(err);
}

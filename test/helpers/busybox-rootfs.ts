import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/** A minimal container rootfs: Debian's static busybox with its applets linked in /bin. */
export async function makeBusyboxRootfs(rootfs: string): Promise<void> {
  for (const dir of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc', 'root']) await mkdir(path.join(rootfs, dir), { recursive: true });
  await copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  await chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await execa('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) {
    await symlink('busybox', path.join(rootfs, 'bin', applet)).catch(() => undefined);
  }
}

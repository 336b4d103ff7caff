import { chmod, copyFile, mkdir, readdir, symlink, writeFile, rm, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { runCommand } from '../util/run-command.js';

/** A directory tree that becomes the initrd. */
export class InitrdTree {
  constructor(readonly root: string) {}

  async reset(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
    for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib', 'lib64', 'etc/kata-ts', 'proc', 'sys', 'dev', 'run', 'tmp', 'mnt', 'root']) {
      await mkdir(path.join(this.root, dir), { recursive: true });
    }
    await chmod(path.join(this.root, 'tmp'), 0o1777);
  }

  private inside(guestPath: string): string {
    return path.join(this.root, guestPath);
  }

  /** Copies a host file to the same path (or `guestPath`) in the tree, keeping its mode. */
  async addFile(hostPath: string, guestPath = hostPath): Promise<void> {
    const target = this.inside(guestPath);
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(hostPath, target);
    await chmod(target, (await stat(hostPath)).mode & 0o7777);
  }

  async writeFile(guestPath: string, content: string, mode = 0o644): Promise<void> {
    const target = this.inside(guestPath);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content, { mode });
  }

  async symlink(target: string, guestPath: string): Promise<void> {
    const link = this.inside(guestPath);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(target, link);
  }

  async addDir(hostDir: string, guestDir: string): Promise<void> {
    for (const entry of await readdir(hostDir, { withFileTypes: true })) {
      const from = path.join(hostDir, entry.name);
      const to = path.join(guestDir, entry.name);
      if (entry.isDirectory()) await this.addDir(from, to);
      else if (entry.isFile()) await this.addFile(from, to);
    }
  }

  /** busybox and one symlink per applet, so /bin/sh, mount, modprobe... exist. */
  async addBusybox(busybox: string): Promise<void> {
    await this.addFile(busybox, '/bin/busybox');
    const { stdout } = await runCommand(busybox, ['--list-full']);
    for (const applet of stdout.split('\n').filter(Boolean)) {
      const link = this.inside(applet);
      await mkdir(path.dirname(link), { recursive: true });
      await symlink('/bin/busybox', link).catch(() => undefined);
    }
  }

  /** Packs the tree as a newc cpio archive (uncompressed: it boots faster under TCG than gzip). */
  async pack(output: string, busybox: string): Promise<void> {
    const { stdout: list } = await runCommand('find', ['.', '-mindepth', '1'], { cwd: this.root });
    const cpio = spawn(busybox, ['cpio', '-o', '-H', 'newc'], { cwd: this.root, stdio: ['pipe', 'pipe', 'ignore'] });
    cpio.stdin.end(list + '\n');
    const exited = new Promise<number | null>((resolve, reject) => {
      cpio.once('error', reject);
      cpio.once('close', resolve);
    });
    await pipeline(cpio.stdout, createWriteStream(output));
    const code = await exited;
    if (code !== 0) throw new Error(`busybox cpio exited with status ${code}`);
  }
}

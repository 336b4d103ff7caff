import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import { downloadPackage, resolveKernelPackage } from './kernel-package.js';

/** The config fragment: in src/image/kernel (build-assets copies it to dist/image/kernel for installs without src). */
export const kernelConfigFragment = [path.join(packageRoot, 'src', 'image', 'kernel', 'kata-ts-guest.config'), path.join(packageRoot, 'dist', 'image', 'kernel', 'kata-ts-guest.config')].find((f) => existsSync(f)) ?? path.join(packageRoot, 'src', 'image', 'kernel', 'kata-ts-guest.config');

/** Bump when the way the kernel is built changes. */
const kernelBuilderVersion = '1';

/** The options the fragment wants on: each must survive olddefconfig, or the kernel lacks something a sandbox needs. */
export function wantedOptions(fragment: string): string[] {
  return fragment.split('\n').map((l) => l.trim()).filter((l) => /^CONFIG_\w+=(y|\d+)$/.test(l));
}

export function missingOptions(fragment: string, config: string): string[] {
  const have = new Set(config.split('\n').map((l) => l.trim()));
  return wantedOptions(fragment).filter((o) => !have.has(o));
}

async function run(cmd: string, args: string[], cwd: string, onStdout?: (chunk: Buffer) => void): Promise<void> {
  try {
    await runCommand(cmd, args, { cwd, ...(onStdout ? { onStdout } : {}) });
  } catch (err) {
    throw new KataError('IO', `kernel build: ${messageOf(err)}`, { cause: err });
  }
}

/** How often the kernel build says how far it got. */
export const kernelProgressEveryMs = 30_000;

/** Kbuild's step lines ("  CC      fs/ext4/inode.o"): how many so far, and the latest. */
export class BuildProgress {
  steps = 0;
  private latest = '';
  private partial = '';

  take(chunk: Buffer | string): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const step = line.match(/^\s+([A-Z][A-Z0-9_]*(?: \[M\])?)\s+(\S.*)$/);
      if (!step) continue;
      this.steps++;
      this.latest = `${step[1]} ${step[2]}`;
    }
  }

  line(elapsedMs: number): string {
    const seconds = Math.round(elapsedMs / 1000);
    const clock = `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    return `compiling the guest kernel: ${clock} so far, ${this.steps} build steps${this.latest ? `, now ${this.latest}` : ''}`;
  }
}

/**
 * The kata-ts guest kernel, built from Debian's linux-source with everything
 * a sandbox needs built in (kernel/kata-ts-guest.config): about a fifth of the
 * Debian kernel's loaded size, and faster to boot. Cached in `cacheDir` by
 * source package, config fragment, compiler and builder version: it builds
 * once (about 10 minutes on 2 cores) and is instant afterwards.
 */
export async function buildMinimalKernel(cacheDir: string, progress: (step: string) => void): Promise<{ vmlinux: string; cached: boolean; sourcePackage: string }> {
  const sourcePackage = await resolveKernelPackage('linux-source');
  const deb = await downloadPackage(sourcePackage, cacheDir);
  const fragment = await readFile(kernelConfigFragment, 'utf8');
  const { stdout: gcc } = await runCommand('gcc', ['--version']).catch(() => ({ stdout: 'no gcc' }));
  const key = createHash('sha256').update([kernelBuilderVersion, path.basename(deb), fragment, gcc.split('\n')[0] ?? ''].join('\0')).digest('hex').slice(0, 16);
  const cached = path.join(cacheDir, `kernel-${key}`, 'vmlinux');
  if (existsSync(cached)) return { vmlinux: cached, cached: true, sourcePackage };

  const work = path.join(cacheDir, `.kernel-build-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    progress(`unpacking ${path.basename(deb)}`);
    await run('dpkg-deb', ['-x', deb, path.join(work, 'deb')], work);
    const tarball = (await readdir(path.join(work, 'deb', 'usr', 'src'))).find((f) => /^linux-source-.*\.tar\.xz$/.test(f));
    if (!tarball) throw new KataError('IO', `${deb} holds no linux-source tarball`);
    await run('tar', ['-xf', path.join(work, 'deb', 'usr', 'src', tarball)], work);
    await rm(path.join(work, 'deb'), { recursive: true, force: true });
    const src = path.join(work, tarball.replace(/\.tar\.xz$/, ''));
    progress('configuring: tinyconfig + kata-ts-guest.config');
    await run('make', ['-s', 'tinyconfig'], src);
    await run('scripts/kconfig/merge_config.sh', ['-m', '.config', kernelConfigFragment], src);
    await run('make', ['-s', 'olddefconfig'], src);
    const missing = missingOptions(fragment, await readFile(path.join(src, '.config'), 'utf8'));
    if (missing.length > 0) throw new KataError('IO', `kernel config: olddefconfig dropped ${missing.join(' ')} (a dependency is missing from kata-ts-guest.config)`);
    const jobs = os.cpus().length + 1;
    progress(`compiling vmlinux with ${jobs} jobs (about 10 minutes on 2 cores, once)`);
    const started = Date.now();
    const build = new BuildProgress();
    // A long silent wait reads as a hang: what is being compiled, and the time so far, every 30 s.
    const ticker = setInterval(() => progress(build.line(Date.now() - started)), kernelProgressEveryMs);
    try {
      await run('make', [`-j${jobs}`, 'vmlinux'], src, (chunk) => build.take(chunk));
    } finally {
      clearInterval(ticker);
    }
    progress(`compiled in ${Math.round((Date.now() - started) / 1000)} s (${build.steps} build steps)`);
    await mkdir(path.dirname(cached), { recursive: true });
    await copyFile(path.join(src, 'vmlinux'), `${cached}.new`);
    await run('strip', ['--strip-all', `${cached}.new`], work);
    await rename(`${cached}.new`, cached);
    return { vmlinux: cached, cached: false, sourcePackage };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';

/** The versioned package that a metapackage (linux-image-amd64, linux-source) points at, resolved now. */
export async function resolveKernelPackage(metapackage = 'linux-image-amd64'): Promise<string> {
  const { stdout } = await runCommand('apt-cache', ['depends', metapackage]).catch((err: unknown) => {
    throw new KataError('IO', `apt-cache depends ${metapackage} failed: ${messageOf(err)}`, { cause: err });
  });
  const name = /Depends: (linux-(?:image|source)-\d\S*)/.exec(stdout)?.[1];
  if (!name) throw new KataError('IO', `cannot tell which package ${metapackage} depends on (run apt-get update?)`);
  return name;
}

/** Downloads the .deb into cacheDir once; later calls find it there. */
export async function downloadPackage(name: string, cacheDir: string): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const existing = (await readdir(cacheDir)).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (existing) return path.join(cacheDir, existing);
  const scratch = path.join(cacheDir, `.download-${process.pid}`);
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch);
  try {
    await runCommand('apt-get', ['download', name], { cwd: scratch });
    const deb = (await readdir(scratch)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new KataError('IO', `apt-get download ${name} produced no .deb`);
    await rename(path.join(scratch, deb), path.join(cacheDir, deb));
    return path.join(cacheDir, deb);
  } catch (err) {
    if (err instanceof KataError) throw err;
    throw new KataError('IO', `apt-get download ${name} failed: ${messageOf(err)}`, { cause: err });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface ExtractedKernel {
  version: string;
  vmlinuz: string;
  modulesDir: string;
}

export async function extractKernel(deb: string, dir: string): Promise<ExtractedKernel> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await runCommand('dpkg-deb', ['-x', deb, dir]);
  const versions = await readdir(path.join(dir, 'lib', 'modules'));
  const version = versions[0];
  if (!version) throw new KataError('IO', `${deb} holds no kernel modules`);
  return { version, vmlinuz: path.join(dir, 'boot', `vmlinuz-${version}`), modulesDir: path.join(dir, 'lib', 'modules', version) };
}

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { KataError } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import { guestModules } from './guest-modules.js';
import { guestAgentDir, initScript } from './init-script.js';
import { InitrdTree } from './initrd-builder.js';
import { downloadPackage, extractKernel, resolveKernelPackage } from './kernel-package.js';
import { moduleClosure } from './module-closure.js';
import { sharedLibraries } from './shared-libraries.js';

/** Bump when the image layout changes, so that old builds are not taken as current. */
const builderVersion = '2';

export const defaultImageDir = path.join(packageRoot, 'guest');
export const kernelFileName = 'vmlinuz';
export const initrdFileName = 'kata-ts-initrd.img';

export interface ImageBuildOptions {
  outputDir?: string;
  /** Where the guest agent bundle and its protos are (npm run build writes them). */
  agentDir?: string;
  busybox?: string;
  progress?: (step: string) => void;
}

export interface ImageBuildResult {
  kernel: string;
  initrd: string;
  kernelPackage: string;
  upToDate: boolean;
  digest: string;
  seconds: number;
}

async function hashFile(hash: ReturnType<typeof createHash>, file: string): Promise<void> {
  hash.update(`\0${file}\0`);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out.sort();
}

/**
 * Builds the guest kernel and initrd from Debian packages and the bundled
 * agent. Every input is hashed first; when the digest matches the last build
 * nothing is done.
 */
export async function buildImage(options: ImageBuildOptions = {}): Promise<ImageBuildResult> {
  const started = Date.now();
  const progress = options.progress ?? (() => undefined);
  const outputDir = path.resolve(options.outputDir ?? defaultImageDir);
  const agentDir = options.agentDir ?? path.join(packageRoot, 'dist', 'guest-bundle');
  const busybox = await realpath(options.busybox ?? '/bin/busybox');
  const agentBundle = path.join(agentDir, 'kata-agent.mjs');
  if (!existsSync(agentBundle)) throw new KataError('IO', `guest agent bundle ${agentBundle} is missing: run npm run build`);

  progress('resolving the kernel package from linux-image-amd64');
  const kernelPackage = await resolveKernelPackage();
  const node = await realpath(process.execPath);
  const crun = await realpath((await execa('sh', ['-c', 'command -v crun'])).stdout.trim());
  const binaries = [busybox, node, crun];
  const libraries = [...new Set((await Promise.all([node, crun].map((b) => sharedLibraries(b)))).flat())].sort();

  progress('hashing the inputs');
  const hash = createHash('sha256');
  hash.update(`${builderVersion}\0${kernelPackage}\0${guestModules.join(',')}\0${initScript()}`);
  for (const file of [...binaries, ...libraries, ...(await filesUnder(agentDir))]) await hashFile(hash, file);
  const digest = hash.digest('hex');

  const kernel = path.join(outputDir, kernelFileName);
  const initrd = path.join(outputDir, initrdFileName);
  const digestFile = path.join(outputDir, 'image.sha256');
  const previous = await readFile(digestFile, 'utf8').catch(() => '');
  if (previous.trim() === digest && existsSync(kernel) && existsSync(initrd)) {
    progress(`guest image is up to date (${digest.slice(0, 12)})`);
    return { kernel, initrd, kernelPackage, upToDate: true, digest, seconds: (Date.now() - started) / 1000 };
  }

  const work = path.join(outputDir, '.build');
  await mkdir(work, { recursive: true });
  progress(`downloading ${kernelPackage}`);
  const deb = await downloadPackage(kernelPackage, path.join(outputDir, 'cache'));
  progress(`extracting ${path.basename(deb)}`);
  const extracted = await extractKernel(deb, path.join(work, 'kernel'));

  progress('assembling the initrd tree');
  const tree = new InitrdTree(path.join(work, 'initrd'));
  await tree.reset();
  await tree.addBusybox(busybox);
  await tree.addFile(crun, '/usr/bin/crun');
  await tree.addFile(node, '/usr/bin/node');
  // Symbols are dead weight in the guest: the initrd is copied through the firmware byte for byte.
  await execa('strip', ['--strip-unneeded', path.join(tree.root, 'usr/bin/node')]).catch(() => progress('strip not found: node stays unstripped'));
  for (const lib of libraries) await tree.addFile(lib);
  const modules = await moduleClosure(extracted.modulesDir, guestModules);
  const guestModulesDir = `/lib/modules/${extracted.version}`;
  for (const module of modules) await tree.addFile(path.join(extracted.modulesDir, module), path.join(guestModulesDir, module));
  for (const meta of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    const file = path.join(extracted.modulesDir, meta);
    if (existsSync(file)) await tree.addFile(file, path.join(guestModulesDir, meta));
  }
  await execa('depmod', ['-b', tree.root, extracted.version]);
  await tree.addDir(agentDir, guestAgentDir);
  await tree.writeFile('/init', initScript(), 0o755);
  await tree.writeFile('/etc/kata-ts/modules', guestModules.join('\n') + '\n');
  await tree.writeFile('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await tree.writeFile('/etc/group', 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  await tree.writeFile('/etc/kata-ts/image.sha256', digest + '\n');

  progress('packing the initrd');
  const newInitrd = `${initrd}.new`;
  await tree.pack(newInitrd, busybox);
  const newKernel = `${kernel}.new`;
  await copyFile(extracted.vmlinuz, newKernel);
  await rename(newKernel, kernel);
  await rename(newInitrd, initrd);
  await writeFile(digestFile, digest + '\n');
  await rm(work, { recursive: true, force: true });
  progress(`guest image ready: ${kernel}, ${initrd}`);
  return { kernel, initrd, kernelPackage, upToDate: false, digest, seconds: (Date.now() - started) / 1000 };
}

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../util/run-command.js';
import type { RootfsType } from '../config/runtime-config.js';
import { KataError } from '../util/errors.js';
import { fileURLToPath } from 'node:url';
import { cpuFeaturesBinaryPath, packageRoot } from '../util/package-root.js';
import { findCommand } from '../util/find-command.js';
import { defaultImageDir } from './image-dir.js';
import { recordAgentCodeCache } from './agent-code-cache.js';
import { recordAgentSnapshot, userModeEmulator } from './agent-snapshot.js';
import { bootModules, guestModules } from './guest-modules.js';
import { agentNodeFlags, bootInitScript, guestAgentDir, guestCpuFeatures, initScript } from './init-script.js';
import { InitrdTree } from './initrd-builder.js';
import { downloadPackage, extractKernel, resolveKernelPackage } from './kernel-package.js';
import { moduleClosure } from './module-closure.js';
import { buildMinimalKernel } from './minimal-kernel.js';
import { makeRootfsImage } from './rootfs-image.js';
import { sharedLibraries } from './shared-libraries.js';
import { extractVmlinux } from './vmlinux.js';

/** Bump when the image layout changes, so that old builds are not taken as current. */
const builderVersion = '3';

export { defaultImageDir };
/** The files an image build writes, by role. */
export const imageFiles = {
  /** The kata-ts guest kernel (everything built in), booted through PVH. */
  vmlinux: 'vmlinux',
  /** The Debian bzImage, as packaged (its drivers are modules in the image). */
  bzImage: 'vmlinuz',
  /** The uncompressed kernel inside it, booted through PVH (no decompression in the guest). */
  vmlinuxDebian: 'vmlinux-debian',
  /** The whole guest as one initrd (initrd = ...): everything in RAM. */
  fullInitrd: 'kata-ts-initrd.img',
  /** The small initrd that loads the root device's drivers and mounts the image. */
  bootInitrd: 'kata-ts-boot.img',
  /** The guest as a read-only root image (image = ...). */
  rootfs: 'kata-ts-rootfs.img',
} as const;

export interface ImageBuildOptions {
  outputDir?: string;
  /** Where the guest agent bundle and its protos are (npm run build writes them). */
  agentDir?: string;
  busybox?: string;
  rootfsType?: RootfsType;
  /** Start the agent from a V8 startup snapshot (default), or from its bundle and code cache. */
  agentSnapshot?: boolean;
  progress?: (step: string) => void;
}

export interface ImageBuildResult {
  files: { [role in keyof typeof imageFiles]: string };
  rootfsType: RootfsType;
  /** Whether the guest's agent starts from a V8 startup snapshot (on a CPU like the one it was built on). */
  agentSnapshot: boolean;
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

/** The image builder's own code: src/image under tsx, dist/image once built (never the CLI bundle). */
function builderCodeDir(): string {
  const compiled = path.join(packageRoot, 'dist', 'image');
  const here = path.dirname(fileURLToPath(import.meta.url));
  return here.endsWith(`${path.sep}image`) ? here : compiled;
}

/** Kernel modules from the package, with their dependencies, into a tree; depmod writes modules.dep and modules.alias. */
async function addModules(tree: InitrdTree, modulesDir: string, version: string, wanted: readonly string[]): Promise<void> {
  const guestModulesDir = `/lib/modules/${version}`;
  for (const module of await moduleClosure(modulesDir, wanted)) await tree.addFile(path.join(modulesDir, module), path.join(guestModulesDir, module));
  for (const meta of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    const file = path.join(modulesDir, meta);
    if (existsSync(file)) await tree.addFile(file, path.join(guestModulesDir, meta));
  }
  await runCommand('depmod', ['-b', tree.root, version]);
}

/**
 * Builds the guest from Debian packages and the bundled agent: the kata-ts
 * kernel (from linux-source), the Debian kernel (as packaged and uncompressed),
 * the guest as a read-only root image with a small boot initrd for the Debian
 * kernel, and the same guest as one full initrd. Every input
 * is hashed first; when the digest matches the last build nothing is done.
 */
export async function buildImage(options: ImageBuildOptions = {}): Promise<ImageBuildResult> {
  const started = Date.now();
  const progress = options.progress ?? (() => undefined);
  const rootfsType = options.rootfsType ?? 'erofs';
  const outputDir = path.resolve(options.outputDir ?? defaultImageDir);
  const agentDir = options.agentDir ?? path.join(packageRoot, 'dist', 'guest-bundle');
  const busybox = await realpath(options.busybox ?? '/bin/busybox');
  const agentLoader = path.join(agentDir, 'kata-agent-loader.cjs');
  if (!existsSync(agentLoader)) throw new KataError('IO', `guest agent ${agentLoader} is missing: run npm run build`);

  progress('resolving the kernel package from linux-image-amd64');
  const kernelPackage = await resolveKernelPackage();
  const node = await realpath(process.execPath);
  const crunOnPath = await findCommand('crun');
  if (!crunOnPath) throw new KataError('IO', 'crun is not installed (Debian: crun): the guest runs containers with it');
  const crun = await realpath(crunOnPath);
  const binaries = [busybox, node, crun];
  const libraries = [...new Set((await Promise.all([node, crun].map((b) => sharedLibraries(b)))).flat())].sort();

  // The snapshot needs QEMU's user-mode emulator (qemu-user); without it the agent starts from its code cache.
  const snapshotWanted = options.agentSnapshot ?? true;
  const agentSnapshot = snapshotWanted && (await findCommand(userModeEmulator)) !== undefined;
  if (snapshotWanted && !agentSnapshot) progress(`${userModeEmulator} not found (Debian: qemu-user): the agent will start from its code cache, without a startup snapshot`);
  progress('hashing the inputs');
  const hash = createHash('sha256');
  hash.update([builderVersion, kernelPackage, rootfsType, String(agentSnapshot), guestModules.join(','), JSON.stringify(bootModules), agentNodeFlags.join(' '), initScript(), bootInitScript()].join('\0'));
  // The builder's own code is an input too: a change in how the image is made rebuilds it.
  const builderCode = (await filesUnder(builderCodeDir())).filter((f) => /\.(ts|js|config)$/.test(f));
  for (const file of [...binaries, cpuFeaturesBinaryPath, ...libraries, ...(await filesUnder(agentDir)), ...builderCode]) await hashFile(hash, file);
  const digest = hash.digest('hex');

  const files = Object.fromEntries(Object.entries(imageFiles).map(([role, name]) => [role, path.join(outputDir, name)])) as ImageBuildResult['files'];
  const digestFile = path.join(outputDir, 'image.sha256');
  const previous = await readFile(digestFile, 'utf8').catch(() => '');
  if (previous.trim() === digest && Object.values(files).every((f) => existsSync(f))) {
    progress(`guest image is up to date (${digest.slice(0, 12)})`);
    return { files, rootfsType, agentSnapshot, kernelPackage, upToDate: true, digest, seconds: (Date.now() - started) / 1000 };
  }

  const work = path.join(outputDir, '.build');
  await mkdir(work, { recursive: true });
  progress('the kata-ts guest kernel (built from linux-source once, then cached)');
  const minimal = await buildMinimalKernel(path.join(outputDir, 'cache'), progress);
  progress(`downloading ${kernelPackage}`);
  const deb = await downloadPackage(kernelPackage, path.join(outputDir, 'cache'));
  progress(`extracting ${path.basename(deb)}`);
  const extracted = await extractKernel(deb, path.join(work, 'kernel'));

  progress('assembling the guest tree');
  const tree = new InitrdTree(path.join(work, 'guest'));
  await tree.reset();
  await tree.addBusybox(busybox);
  await tree.addFile(crun, '/usr/bin/crun');
  await tree.addFile(node, '/usr/bin/node');
  // Symbols are dead weight in the guest.
  await runCommand('strip', ['--strip-unneeded', path.join(tree.root, 'usr/bin/node')]).catch(() => progress('strip not found: node stays unstripped'));
  for (const lib of libraries) await tree.addFile(lib);
  await addModules(tree, extracted.modulesDir, extracted.version, guestModules);
  await tree.addDir(agentDir, guestAgentDir);
  progress('recording the agent\'s code cache');
  await recordAgentCodeCache(node, path.join(tree.root, guestAgentDir));
  await tree.addFile(cpuFeaturesBinaryPath, guestCpuFeatures);
  if (agentSnapshot) {
    progress(`building the agent's startup snapshot (under ${userModeEmulator})`);
    await recordAgentSnapshot(node, path.join(tree.root, guestAgentDir), cpuFeaturesBinaryPath);
  }
  await tree.writeFile('/init', initScript(), 0o755);
  await tree.writeFile('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await tree.writeFile('/etc/group', 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  await tree.writeFile('/etc/kata-ts/image.sha256', digest + '\n');
  // The root is read-only: what the agent writes at run time lives in /run (a tmpfs).
  await tree.symlink('/run/resolv.conf', '/etc/resolv.conf');

  progress('assembling the boot initrd');
  const boot = new InitrdTree(path.join(work, 'boot'));
  await boot.reset();
  await boot.addBusybox(busybox);
  await addModules(boot, extracted.modulesDir, extracted.version, [...bootModules.always, ...bootModules.pmem, ...bootModules.virtioBlk, ...bootModules.fileSystems]);
  await boot.writeFile('/init', bootInitScript(), 0o755);

  progress(`packing the ${rootfsType} root image, the boot initrd and the full initrd`);
  const fresh = (file: string): string => `${file}.new`;
  await makeRootfsImage(tree.root, fresh(files.rootfs), rootfsType);
  await boot.pack(fresh(files.bootInitrd), busybox);
  await tree.pack(fresh(files.fullInitrd), busybox);
  progress('extracting the uncompressed kernel');
  await copyFile(extracted.vmlinuz, fresh(files.bzImage));
  await extractVmlinux(extracted.vmlinuz, fresh(files.vmlinuxDebian));
  await copyFile(minimal.vmlinux, fresh(files.vmlinux));
  for (const file of Object.values(files)) await rename(fresh(file), file);
  await writeFile(digestFile, digest + '\n');
  await rm(work, { recursive: true, force: true });
  progress(`guest image ready in ${outputDir}`);
  return { files, rootfsType, agentSnapshot, kernelPackage, upToDate: false, digest, seconds: (Date.now() - started) / 1000 };
}

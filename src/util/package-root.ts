import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * The directory holding package.json. This file sits at src/util (tsx) or
 * dist/util (compiled), two levels below it either way.
 */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The configuration.toml shipped with the package: the last entry of the search order. */
export const bundledConfigPath: string = path.join(packageRoot, 'configuration.toml');

/** The carrier (native/carrier.c), built by `npm run build`. */
export const carrierBinaryPath: string = path.join(packageRoot, 'native', 'build', 'kata-ts-carrier');

/** native/mount-ns.c: QEMU's own mount namespace, and the share's mounts in it. */
export const mountNsBinaryPath: string = path.join(packageRoot, 'native', 'build', 'kata-ts-mountns');

/** native/netns-exec.c: an OCI hook run in the sandbox's network namespace, argv[0] kept. */
export const netnsExecBinaryPath: string = path.join(packageRoot, 'native', 'build', 'kata-ts-netns-exec');

/** native/cpu-features.c: the CPU features a V8 startup snapshot is checked against (guest image). */
export const cpuFeaturesBinaryPath: string = path.join(packageRoot, 'native', 'build', 'kata-ts-cpu-features');

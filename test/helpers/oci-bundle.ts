import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultSpec } from '../../src/runtime/default-spec.js';
import type { OciHooks, OciMountSpec } from '../../src/runtime/oci-spec-types.js';
import { makeBusyboxRootfs } from './busybox-rootfs.js';

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  annotations?: Record<string, string>;
  mounts?: OciMountSpec[];
  /** Extra capabilities (e.g. CAP_SYS_ADMIN to mount a file system). */
  capabilities?: string[];
  hooks?: OciHooks;
  /** The network namespace to name in linux.namespaces (a path), or null for none (the host's network). */
  networkNamespace?: string | null;
  /** No pid namespace of its own: the container sees every process of the VM, the agent's included. */
  vmPidNamespace?: boolean;
  /** process.rlimits, replacing the default spec's. */
  rlimits?: Array<{ type: string; soft: number; hard: number }>;
}

/** An OCI bundle at dir: a busybox rootfs and a config.json from kata-ts's default spec. */
export async function makeBundle(dir: string, options: BundleOptions): Promise<string> {
  await mkdir(dir, { recursive: true });
  await makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const spec = defaultSpec({ args: options.args, terminal: options.terminal ?? false });
  spec.process = { ...spec.process, env: ['PATH=/bin', 'TERM=xterm'] };
  if (options.capabilities && spec.process) {
    const caps = spec.process.capabilities ?? {};
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...(caps[set] ?? []), ...(options.capabilities ?? [])];
    spec.process.capabilities = caps;
  }
  if (options.annotations) spec.annotations = options.annotations;
  if (options.rlimits && spec.process) spec.process.rlimits = options.rlimits;
  if (options.mounts) spec.mounts = [...(spec.mounts ?? []), ...options.mounts];
  if (options.networkNamespace !== undefined && spec.linux) {
    const others = (spec.linux.namespaces ?? []).filter((ns) => ns.type !== 'network');
    spec.linux.namespaces = options.networkNamespace === null ? others : [...others, { type: 'network', path: options.networkNamespace }];
  }
  if (options.vmPidNamespace && spec.linux) spec.linux.namespaces = (spec.linux.namespaces ?? []).filter((ns) => ns.type !== 'pid');
  if (options.hooks) (spec as { hooks?: OciHooks }).hooks = options.hooks;
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

/** CRI-containerd's annotations for a container that joins sandbox sandboxId. */
export function joinSandbox(sandboxId: string): Record<string, string> {
  return { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': sandboxId };
}

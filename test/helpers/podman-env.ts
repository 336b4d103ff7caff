import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { unmountAllUnder } from '../../src/util/host-mounts.js';
import { runTool, type CliResult } from './run-cli.js';

export interface PodmanEnv {
  dir: string;
  /** podman's global flags that keep all of its state in `dir`. */
  globalFlags: string[];
  /** Runs podman with those flags and `containers.conf` as its only config, never throwing on a non-zero exit. */
  podman(args: string[], options?: { timeoutMs?: number }): Promise<CliResult>;
  remove(): Promise<void>;
}

/**
 * Podman 4.3 (Debian's, with conmon) with storage, run and tmp dirs, network
 * config and events of its own in a temp dir. `containersConf` becomes its
 * CONTAINERS_CONF (no system config is read).
 */
export async function makePodmanEnv(containersConf = '', options: { netns?: string } = {}): Promise<PodmanEnv> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-podman-'));
  const confFile = path.join(dir, 'containers.conf');
  await writeFile(confFile, containersConf);
  await mkdir(path.join(dir, 'networks'));
  const globalFlags = [
    '--root', path.join(dir, 'storage'),
    '--runroot', path.join(dir, 'run'),
    '--tmpdir', path.join(dir, 'tmp'),
    '--network-config-dir', path.join(dir, 'networks'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    // No --runtime-flag root=...: podman's exit command (cleanup after --rm) drops it and
    // would then delete in the wrong root. kata-ts keeps its state in its default root.
  ];
  const env = { CONTAINERS_CONF: confFile };
  // In a network namespace the test made (its CNI bridge and addresses live there); the mount namespace stays the host's.
  const podman: PodmanEnv['podman'] = (args, { timeoutMs = 180_000 } = {}) =>
    options.netns
      ? runTool('nsenter', [`--net=${options.netns}`, '--', 'podman', ...globalFlags, ...args], { timeoutMs, env })
      : runTool('podman', [...globalFlags, ...args], { timeoutMs, env });
  const remove = async (): Promise<void> => {
    await podman(['rm', '--all', '--force', '--time', '0'], { timeoutMs: 120_000 });
    // podman's overlay storage mounts image layers under storage/: never rm -r through a mount.
    await unmountAllUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, globalFlags, podman, remove };
}

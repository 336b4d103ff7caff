import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { unmountAllUnder } from '../../src/util/host-mounts.js';
import { execa } from 'execa';
import { repoRoot } from './fixtures.js';
import { runTool, type CliResult } from './run-cli.js';

export interface ContainerdDaemon {
  dir: string;
  socket: string;
  /** Where containerd's runc shim keeps the runtime's state: kata-ts's --root. */
  runcRoot: string;
  pid: number;
  /** Runs `ctr --address <socket> ...`, never throwing on a non-zero exit. */
  ctr(args: string[], options?: { namespace?: string; timeoutMs?: number }): Promise<CliResult>;
  /** The daemon's log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops the daemon by its pid and removes its dir. */
  stop(): Promise<void>;
  /** Stops the daemon (SIGTERM: its shims live on) and starts it again on the same dir. */
  restart(): Promise<void>;
}

/** The CRI plugin's config for tests: the sandbox ("pause") image, an empty CNI dir, runc as the default runtime, then `runtimes` (TOML lines). */
export function criPluginConfig(dir: string, pauseImage: string, runtimes: string): string {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = "${pauseImage}"`,
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    `  conf_dir = "${dir}/cni"`,
    '  bin_dir = "/usr/lib/cni"',
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    '  default_runtime_name = "runc"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '  runtime_type = "io.containerd.runc.v2"',
    runtimes.trimEnd(),
  ].join('\n');
}

export interface ContainerdOptions {
  /** Keep the CRI plugin (the kubelet's API on the same socket) with this TOML (runtimes, sandbox image), given the daemon's dir. */
  criConfig?: (dir: string) => string;
  /** Directories put before PATH, where containerd looks for shim binaries (containerd-shim-kata-ts-v2). */
  pathPrefix?: string[];
  /** A network namespace (path) to run containerd in: its CNI bridge and pod veths then live there. */
  netns?: string;
  /** Files to write into the daemon's dir before it starts (name relative to the dir, given the dir). */
  files?: (dir: string) => Record<string, string>;
}

/**
 * A containerd of our own (Debian's 1.6): config, root, state, sockets and
 * the runc shim's root all in a temp dir, so it touches nothing of the host's.
 */
export async function startContainerd(options: ContainerdOptions = {}): Promise<ContainerdDaemon> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-ctd-'));
  const socket = path.join(dir, 'containerd.sock');
  const runcRoot = path.join(dir, 'runc');
  const config = [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    options.criConfig === undefined ? 'disabled_plugins = ["io.containerd.grpc.v1.cri"]' : '',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    options.criConfig?.(dir) ?? '',
  ].join('\n');
  await writeFile(path.join(dir, 'config.toml'), `${config}\n`);
  for (const [name, text] of Object.entries(options.files?.(dir) ?? {})) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  const logFile = path.join(dir, 'containerd.log');
  const env = options.pathPrefix ? { ...process.env, PATH: [...options.pathPrefix, process.env.PATH ?? ''].join(':') } : process.env;
  const launch = (): { child: ChildProcess; exited: Promise<void> } => {
    const fd = openSync(logFile, 'a');
    const argv = ['containerd', '--config', path.join(dir, 'config.toml')];
    const [file, ...args] = options.netns ? ['nsenter', `--net=${options.netns}`, '--', ...argv] : argv;
    const started: ChildProcess = spawn(file ?? 'containerd', args, { stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    return { child: started, exited: new Promise<void>((resolve) => started.once('exit', () => resolve())) };
  };
  let { child, exited } = launch();
  const log = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');

  const ctr: ContainerdDaemon['ctr'] = (args, { namespace = 'default', timeoutMs = 180_000 } = {}) =>
    runTool('ctr', ['--address', socket, '--namespace', namespace, ...args], { timeoutMs });

  const terminate = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if ((await Promise.race([exited.then(() => 'exited'), sleep(15_000, 'timeout')])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    }
  };
  const stop = async (): Promise<void> => {
    await terminate();
    // Snapshots of containers a failed test left behind: never rm -r through a mount.
    await unmountAllUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const ready = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) {
        const text = await log();
        await stop();
        throw new Error(`containerd exited at start: ${text.slice(-2000)}`);
      }
      if ((await ctr(['version'], { timeoutMs: 5_000 })).exitCode === 0) return;
      if (Date.now() > deadline) {
        await stop();
        throw new Error('containerd did not answer on its socket within 30 s');
      }
      await sleep(200);
    }
  };
  await ready();
  const daemon: ContainerdDaemon = {
    dir, socket, runcRoot, pid: child.pid ?? -1, ctr, log, stop,
    restart: async () => {
      await terminate();
      ({ child, exited } = launch());
      daemon.pid = child.pid ?? -1;
      await ready();
    },
  };
  return daemon;
}

/** What a failed test left in containerd: tasks killed and deleted, containers removed (their VMs stop with them). */
export async function removeAllContainers(ctd: ContainerdDaemon, namespace = 'default'): Promise<void> {
  const ids = (await ctd.ctr(['containers', 'ls', '-q'], { namespace })).stdout.split('\n').filter(Boolean);
  for (const id of ids) {
    await ctd.ctr(['task', 'delete', '--force', id], { namespace });
    await ctd.ctr(['containers', 'rm', id], { namespace });
  }
}

/** The images the CRI tests run: Debian's busybox-static, and the same as a pod sandbox ("pause") image. */
export const busyboxImage = 'docker.io/kata-ts/busybox:latest';
export const pauseImage = 'docker.io/kata-ts/pause:latest';

/** Writes both images as OCI archives in `dir` (scripts/make-busybox-image.sh) and imports them into each namespace. */
export async function importPodImages(ctd: ContainerdDaemon, dir: string, namespaces: string[]): Promise<void> {
  const script = path.join(repoRoot, 'scripts', 'make-busybox-image.sh');
  await execa('bash', [script, path.join(dir, 'busybox.tar'), busyboxImage]);
  await execa('bash', [script, path.join(dir, 'pause.tar'), pauseImage, '["sleep","2147483647"]']);
  for (const namespace of namespaces) {
    for (const archive of ['busybox.tar', 'pause.tar']) {
      const r = await ctd.ctr(['images', 'import', path.join(dir, archive)], { namespace });
      if (r.exitCode !== 0) throw new Error(`ctr images import ${archive} (${namespace}): ${r.stderr}`);
    }
  }
}

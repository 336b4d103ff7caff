import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CreateContainerRequest, CreateSandboxRequest, Device, OciProcess, OciResources, Storage } from '../agent-protocol/messages.js';
import { AgentError, checkId, failed, invalid, notFound } from './agent-error.js';
import { fdDuplex } from '../transport/fd-stream.js';
import { exitStatusOf } from '../util/exit-status.js';
import { AgentProcess, type ProcessIo } from './agent-process.js';
import { findBlockDevice, type GuestBlockDevice } from './block-device.js';
import { ConsoleSocket } from './console-socket.js';
import { crun, crunMessage, releaseCreatedContainer, spawnCrun } from './crun.js';
import { limitsToOci, ociJson, specToOciConfig, processToOci, splitNetworkSysctls } from './oci-spec.js';
import { applySysctls } from './sysctl.js';
import { OutputBuffer } from './output-buffer.js';
import { waitForeignExit } from './process-exit.js';
import { loadRequestedModules } from './kernel-modules.js';
import { runGuestCommand } from './guest-command.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { mountStorage, unmount } from './storage.js';
import * as grpc from '@grpc/grpc-js';

const containersDir = '/run/kata-containers';

export interface Container {
  id: string;
  bundle: string;
  init: AgentProcess;
  execs: Map<string, AgentProcess>;
  storages: Storage[];
  paused: boolean;
  /** Block devices hot-plugged into the running container, by their path in it. */
  devices: Map<string, GuestBlockDevice>;
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code, signal) => resolve(exitStatusOf(code, signal)));
  });
}

/** Console sockets live in a short directory: unix socket paths are limited to 108 bytes. */
const consoleDir = '/run/kata-ts-console';

function openConsoleSocket(): ConsoleSocket {
  mkdirSync(consoleDir, { recursive: true, mode: 0o700 });
  return ConsoleSocket.listen(path.join(consoleDir, `${randomBytes(8).toString('hex')}.sock`));
}


function pipeIo(child: ChildProcess): ProcessIo {
  return { stdin: child.stdin, stdout: new OutputBuffer(child.stdout), stderr: new OutputBuffer(child.stderr) };
}

/** A terminal merges stdout and stderr: everything is read from the pty master. */
function terminalIo(master: number): ProcessIo {
  const tty = fdDuplex(master);
  tty.on('error', () => undefined); // EIO once the process's side of the pty is closed
  return { stdin: tty, stdout: new OutputBuffer(tty), stderr: new OutputBuffer(null), terminal: { fd: master, stream: tty } };
}

/** A crun create or exec on its way: its child, and how the process's stdio will be reached. */
interface CrunStart {
  child: ChildProcess;
  /** What crun wrote to stderr so far (for its error message); stopRecording() ends the recording. */
  crunErrors: () => string;
  stopRecording: () => void;
  /** The process's stdio: the pipes, or the pty master that crun sends to the console socket. */
  io: () => Promise<ProcessIo>;
  /** Gives up on a console socket nobody will use. */
  abandon: () => Promise<void>;
}

/**
 * Starts crun with args and, last, the container id. With a terminal, crun
 * hands the pty master to a console socket. The pipes are listened to at
 * once: when crun exits, Node resumes unlistened stdio and drops its data.
 */
function startCrun(args: string[], containerId: string, terminal: boolean): CrunStart {
  const consoleSocket = terminal ? openConsoleSocket() : undefined;
  const child = spawnCrun(
    [...args, ...(consoleSocket ? ['--console-socket', consoleSocket.path] : []), containerId],
    consoleSocket ? ['ignore', 'ignore', 'pipe'] : ['pipe', 'pipe', 'pipe'],
  );
  const pipes = consoleSocket ? undefined : pipeIo(child);
  const master = consoleSocket?.receive();
  const chunks: Buffer[] = [];
  const record = (c: Buffer): void => void chunks.push(c);
  child.stderr?.on('data', record);
  return {
    child,
    crunErrors: () => Buffer.concat(chunks).toString(),
    stopRecording: () => child.stderr?.off('data', record),
    io: async () => (master ? terminalIo(await master) : pipes ?? pipeIo(child)),
    abandon: async () => {
      consoleSocket?.close();
      await master?.catch(() => undefined);
    },
  };
}

/** Everything the agent runs: sandbox storages and containers with their processes. */
/**
 * The host-side path of `containerPath` in a container, reached through
 * /proc/<pid>/root. Every directory on the way must be a real directory: a
 * symlink the container planted (/dev/x -> /etc) would resolve against the
 * guest's root, not the container's, and mknod or rm would land outside it.
 */
async function nodeInContainer(pid: number, containerPath: string): Promise<string> {
  const root = `/proc/${pid}/root`;
  let dir = root;
  for (const part of path.posix.dirname(containerPath).split('/').filter(Boolean)) {
    dir = path.join(dir, part);
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new AgentError(grpc.status.FAILED_PRECONDITION, `${containerPath}: ${dir.slice(root.length)} is ${info?.isSymbolicLink() ? 'a symbolic link' : info ? 'not a directory' : 'missing'} in the container`);
    }
  }
  return path.join(dir, path.posix.basename(containerPath));
}

export class Sandbox {
  private readonly containers = new Map<string, Container>();
  private storages: Storage[] = [];
  id = '';

  container(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw notFound(`container ${id}`);
    return c;
  }

  /** Kata passes the container id as the exec id of the init process. */
  process(containerId: string, execId: string): AgentProcess {
    const c = this.container(containerId);
    if (execId === '' || execId === containerId) return c.init;
    const p = c.execs.get(execId);
    if (!p) throw notFound(`process ${execId} of container ${containerId}`);
    return p;
  }

  /**
   * Forgets an exec whose life is over for the host: exited, waited for, and
   * its output read to the end. Its buffers and its files in the bundle go, so
   * periodic exec probes (CRI health checks) do not grow the guest's memory.
   */
  async settleExec(containerId: string, execId: string): Promise<void> {
    const c = this.containers.get(containerId);
    const p = c?.execs.get(execId);
    if (!c || !p || p.exitStatus === undefined || !p.waited || !p.stdout.drained || !p.stderr.drained) return;
    c.execs.delete(execId);
    for (const suffix of ['json', 'pid']) await rm(path.join(c.bundle, `exec-${execId}.${suffix}`), { force: true });
  }

  async create(req: CreateSandboxRequest): Promise<void> {
    this.id = req.sandbox_id;
    await loadRequestedModules(req.kernel_modules ?? []).catch((err: Error) => {
      throw failed(err.message);
    });
    if (req.hostname) await writeFile('/proc/sys/kernel/hostname', req.hostname);
    if (req.dns.length > 0) await writeFile('/etc/resolv.conf', req.dns.map((d) => (d.includes(' ') ? d : `nameserver ${d}`)).join('\n') + '\n');
    for (const storage of req.storages) await mountStorage(storage);
    this.storages.push(...req.storages);
  }

  async destroy(): Promise<void> {
    for (const id of [...this.containers.keys()]) await this.removeContainer(id, 5);
    for (const storage of [...this.storages].reverse()) await unmount(storage.mount_point).catch(() => undefined);
    this.storages = [];
  }

  async createContainer(req: CreateContainerRequest): Promise<void> {
    const id = checkId(req.container_id, 'container id');
    if (this.containers.has(id)) throw new AgentError(grpc.status.ALREADY_EXISTS, `container ${id} already exists`);
    if (!req.OCI) throw invalid('CreateContainer without an OCI spec');
    for (const storage of req.storages) await mountStorage(storage);
    const rootfs = req.OCI.Root?.Path;
    if (!rootfs) throw invalid('OCI spec has no root path');
    const bundle = path.join(containersDir, id);
    await applySysctls(splitNetworkSysctls(req.OCI.Linux?.Sysctl ?? {}).network);
    await mkdir(bundle, { recursive: true });
    await writeFile(path.join(bundle, 'config.json'), ociJson(specToOciConfig(req.OCI, id, rootfs)));
    const pidFile = path.join(bundle, 'init.pid');
    // The container's init inherits crun's stdio pipes and keeps them after crun exits.
    const start = startCrun(['create', '--bundle', bundle, '--pid-file', pidFile, '--no-pivot'], id, Boolean(req.OCI.Process?.Terminal));
    const code = await exitOf(start.child);
    // From here on, stderr is the container's own.
    start.stopRecording();
    if (code !== 0) {
      start.child.stdin?.destroy();
      await start.abandon();
      await rm(bundle, { recursive: true, force: true });
      throw failed(`crun create failed: ${crunMessage(start.crunErrors(), `exit ${code}`)}`);
    }
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    const io = await start.io();
    const init = new AgentProcess(id, pid, io, waitForeignExit(pid, 50, (zombie) => loadNativeAddon().reap(zombie)));
    this.containers.set(id, { id, bundle, init, execs: new Map(), storages: req.storages, paused: false, devices: new Map() });
  }

  async startContainer(id: string): Promise<void> {
    this.container(id);
    if (!(await releaseCreatedContainer(id))) await crun(['start', id]);
  }

  async exec(containerId: string, execId: string, proc: OciProcess): Promise<void> {
    const c = this.container(containerId);
    checkId(execId, 'exec id');
    if (execId === containerId || c.execs.has(execId)) throw new AgentError(grpc.status.ALREADY_EXISTS, `process ${execId} already exists`);
    const processFile = path.join(c.bundle, `exec-${execId}.json`);
    const pidFile = path.join(c.bundle, `exec-${execId}.pid`);
    await writeFile(processFile, ociJson(processToOci(proc)));
    // crun exec stays in the foreground as the process's parent and exits with its status.
    const start = startCrun(['exec', '--process', processFile, '--pid-file', pidFile], containerId, proc.Terminal);
    // Without a terminal, crun's stderr is the process's stderr: keep none of it here.
    if (!proc.Terminal) start.stopRecording();
    const exit = exitOf(start.child);
    try {
      const pid = await waitForPidFile(pidFile, exit, start.crunErrors);
      c.execs.set(execId, new AgentProcess(execId, pid, await start.io(), exit));
      start.stopRecording();
    } catch (err) {
      await start.abandon();
      throw err;
    }
  }

  async signal(containerId: string, execId: string, signal: number): Promise<void> {
    this.container(containerId);
    if (execId === '') {
      await crun(['kill', '--all', containerId, String(signal)]);
      return;
    }
    const p = this.process(containerId, execId);
    try {
      p.signal(signal);
    } catch (err) {
      if (p.exitStatus === undefined) throw failed(`cannot signal process ${execId}: ${(err as Error).message}`);
    }
  }

  async removeContainer(id: string, timeoutSeconds: number): Promise<void> {
    const c = this.container(id);
    const deleteFailure = await crun(['delete', '--force', id]).then(() => undefined, (err: Error) => err);
    const deadline = timeoutSeconds > 0 ? timeoutSeconds * 1000 : 60_000;
    await Promise.race([c.init.exited, sleep(deadline)]);
    // A container whose processes may still run is not forgotten: its record stays, so the host can try again.
    if (c.init.exitStatus === undefined) {
      throw failed(`container ${id} did not stop within ${deadline} ms${deleteFailure ? ` (crun delete --force: ${deleteFailure.message})` : ''}`);
    }
    if (deleteFailure && !/does not exist|not found/i.test(deleteFailure.message)) {
      // The init is gone; crun's own state may not be: once more, and a failure is said.
      await crun(['delete', '--force', id]).catch((err: Error) => {
        if (!/does not exist|not found/i.test(err.message)) throw failed(`crun delete --force ${id}: ${err.message}`);
      });
    }
    for (const p of [c.init, ...c.execs.values()]) {
      p.stdin?.destroy();
      p.stdout.finish();
      p.stderr.finish();
    }
    for (const storage of [...c.storages].reverse()) await unmount(storage.mount_point).catch(() => undefined);
    await rm(c.bundle, { recursive: true, force: true });
    this.containers.delete(id);
  }

  /**
   * Hot-plug, guest side: find the disk by where it was plugged, let the
   * container's device cgroup use it, and create its node in the container's
   * mount namespace (through /proc/<init pid>/root).
   */
  async addDevice(containerId: string, device: Device, timeoutMs: number): Promise<void> {
    const c = this.container(containerId);
    const containerPath = checkDevicePath(device.container_path);
    if (c.devices.has(containerPath)) throw new AgentError(grpc.status.ALREADY_EXISTS, `${containerPath} is already a hot-plugged device of container ${containerId}`);
    const node = await nodeInContainer(c.init.pid, containerPath);
    if (await lstat(node).then(() => true, () => false)) throw new AgentError(grpc.status.ALREADY_EXISTS, `${containerPath} already exists in container ${containerId}`);
    const found = await findBlockDevice(device, timeoutMs);
    c.devices.set(containerPath, found);
    try {
      await this.updateDeviceCgroup(c);
      await runGuestCommand('mknod', ['-m', '0660', '--', node, 'b', String(found.major), String(found.minor)], { what: 'mknod failed' });
    } catch (err) {
      c.devices.delete(containerPath);
      await this.updateDeviceCgroup(c).catch(() => undefined);
      throw err;
    }
  }

  /** Unplug, guest side: the node goes first, then the cgroup permission. */
  async removeDevice(containerId: string, containerPath: string): Promise<void> {
    const c = this.container(containerId);
    const checked = checkDevicePath(containerPath);
    if (!c.devices.has(checked)) throw notFound(`hot-plugged device ${checked} in container ${containerId}`);
    const node = await nodeInContainer(c.init.pid, checked);
    // Only the node we made goes: whatever the container put in its place stays.
    if ((await lstat(node).catch(() => undefined))?.isBlockDevice()) await rm(node, { force: true });
    c.devices.delete(checked);
    await this.updateDeviceCgroup(c);
  }

  /** crun update replaces the device cgroup program: the spec's rules, the usual defaults, and every hot-plugged disk. */
  private async updateDeviceCgroup(c: Container): Promise<void> {
    const config = JSON.parse(await readFile(path.join(c.bundle, 'config.json'), 'utf8')) as { linux?: { resources?: { devices?: unknown[] } } };
    const devices = [
      ...(config.linux?.resources?.devices ?? []),
      ...defaultDeviceRules,
      ...[...c.devices.values()].map((d) => ({ allow: true, type: 'b', major: d.major, minor: d.minor, access: 'rwm' })),
    ];
    const file = path.join(c.bundle, 'device-resources.json');
    await writeFile(file, JSON.stringify({ devices }));
    await crun(['update', '--resources', file, c.id]);
  }

  /**
   * New memory, CPU and pids limits (crun update); the device rules stay as the
   * agent keeps them. Zero means "unchanged", as in runc: an update that sets
   * nothing changes nothing and succeeds.
   */
  async updateLimits(id: string, resources: OciResources | null): Promise<void> {
    const c = this.container(id);
    const limits = limitsToOci(resources);
    if (Object.keys(limits).length === 0) return;
    const file = path.join(c.bundle, 'limits.json');
    await writeFile(file, JSON.stringify(limits));
    await crun(['update', '--resources', file, c.id]);
  }

  async pause(id: string, pause: boolean): Promise<void> {
    const c = this.container(id);
    await crun([pause ? 'pause' : 'resume', id]);
    c.paused = pause;
  }

  /** Pids of the container's processes, from crun. */
  async pids(id: string): Promise<number[]> {
    this.container(id);
    const out = await crun(['ps', '--format', 'json', id]);
    const parsed: unknown = JSON.parse(out || '[]');
    return Array.isArray(parsed) ? parsed.filter((p): p is number => typeof p === 'number') : [];
  }

  /** The cgroup (v2) directory of the container's init. */
  async cgroupDir(id: string): Promise<string> {
    const c = this.container(id);
    const line = (await readFile(`/proc/${c.init.pid}/cgroup`, 'utf8')).split('\n').find((l) => l.startsWith('0::'));
    if (!line) throw failed(`no cgroup v2 entry for container ${id}`);
    return path.join('/sys/fs/cgroup', line.slice(3));
  }
}

/** The devices every container may use (runc's and crun's defaults). */
const defaultDeviceRules = [
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
];

function checkDevicePath(p: string): string {
  const normalized = path.posix.normalize(p);
  if (!normalized.startsWith('/dev/') || normalized !== p) throw invalid(`device path ${JSON.stringify(p)} must be an absolute path under /dev`);
  return normalized;
}


async function waitForPidFile(pidFile: string, exit: Promise<number>, crunErrors: () => string): Promise<number> {
  let exited = false;
  void exit.then(() => (exited = true));
  for (let i = 0; i < 400; i++) {
    try {
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    if (exited) throw failed(`crun exec failed: ${crunMessage(crunErrors(), 'it exited before starting the process')}`);
    await sleep(25);
  }
  throw failed('crun exec did not report a pid within 10 s');
}

import type { RuntimeConfig } from '../config/runtime-config.js';
import { containerStats } from '../runtime/container-stats.js';
import { createContainer } from '../runtime/create-container.js';
import { deleteContainer } from '../runtime/delete-container.js';
import { execProcess } from '../runtime/exec-process.js';
import { killContainer } from '../runtime/kill-container.js';
import { listProcesses } from '../runtime/list-processes.js';
import type { OciLinuxResources, OciProcessSpec } from '../runtime/oci-spec-types.js';
import { setPaused } from '../runtime/pause-container.js';
import type { RuntimeContext } from '../runtime/runtime-context.js';
import type { SpawnedCarrier } from '../runtime/carrier-process.js';
import { startContainer } from '../runtime/start-container.js';
import { updateContainer } from '../runtime/update-container.js';
import { TtrpcError } from '../ttrpc/ttrpc-error.js';
import { StatusCode } from '../ttrpc/ttrpc-messages.js';
import type { TtrpcMethod } from '../ttrpc/ttrpc-server.js';
import { isKataError, messageOf } from '../util/errors.js';
import { exitStatusOf } from '../util/exit-status.js';
import type { Logger } from '../util/logger.js';
import { kataTsVersion } from '../util/version.js';
import type { EventPublisher } from './event-publisher.js';
import { mountRootfs, unmountRootfs } from './rootfs-mounts.js';
import { TaskIo, type TaskIoPaths } from './task-io.js';
import { TerminalIo } from './terminal-io.js';
import { decodeMessage, encodeMessage, packAny, TaskStatus, taskTypes, timestampOf, type AnyMessage, type MountMessage } from './task-messages.js';

/** One process containerd knows: a container's init (execId '') or an exec. */
interface TaskProcess {
  containerId: string;
  execId: string;
  bundle: string;
  io: TaskIoPaths & { terminal: boolean };
  status: 'created' | 'running' | 'stopped';
  pid: number;
  exitStatus: number;
  exitedAt?: Date;
  exited: Promise<void>;
  markExited: () => void;
  taskIo?: TaskIo | TerminalIo;
  carrier?: SpawnedCarrier;
  /** An exec's process spec, from Exec until Start. */
  spec?: OciProcessSpec;
}

export interface TaskServiceOptions {
  ctx: RuntimeContext;
  logger: Logger;
  events: EventPublisher;
  /** The configuration: the runtime options' ConfigPath when containerd passes one, else the search order. */
  loadConfig(configPath?: string): Promise<RuntimeConfig>;
  /** Called when the last container is gone and containerd asked for Shutdown. */
  shutdown(): void;
}

type Request = Record<string, unknown>;

/** A kata-ts error as a ttrpc status containerd understands (errdefs maps NotFound, AlreadyExists...). */
function ttrpcErrorOf(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  const message = messageOf(err);
  if (isKataError(err, 'NOT_FOUND') || /does not exist|not running|not found/i.test(message)) return new TtrpcError(StatusCode.NotFound, message);
  if (isKataError(err, 'ALREADY_EXISTS')) return new TtrpcError(StatusCode.AlreadyExists, message);
  if (isKataError(err, 'USAGE')) return new TtrpcError(StatusCode.FailedPrecondition, message);
  return new TtrpcError(StatusCode.Unknown, message);
}

/**
 * containerd's Task service (shim v2) on top of the kata-ts runtime: the
 * containers' carriers are this process's children, so their exits are seen
 * here; their I/O is containerd's FIFOs.
 */
export class TaskService {
  private readonly processes = new Map<string, TaskProcess>();

  constructor(private readonly options: TaskServiceOptions) {}

  /** The ttrpc methods, each decoding its request and encoding its reply. */
  methods(): Record<string, TtrpcMethod> {
    const method = (requestType: string, replyType: string, handler: (req: Request) => Promise<object>): TtrpcMethod => async (payload) => {
      const req = decodeMessage<Request>(`${taskTypes}.${requestType}`, payload);
      try {
        return encodeMessage(replyType.includes('.') ? replyType : `${taskTypes}.${replyType}`, await handler(req));
      } catch (err) {
        const failure = ttrpcErrorOf(err);
        this.options.logger.debug(`${requestType}: ${failure.message}`);
        throw failure;
      }
    };
    const empty = 'google.protobuf.Empty';
    return {
      Create: method('CreateTaskRequest', 'CreateTaskResponse', (r) => this.create(r)),
      Start: method('StartRequest', 'StartResponse', (r) => this.start(r)),
      State: method('StateRequest', 'StateResponse', (r) => this.state(r)),
      Delete: method('DeleteRequest', 'DeleteResponse', (r) => this.delete(r)),
      Pids: method('PidsRequest', 'PidsResponse', (r) => this.pids(r)),
      Pause: method('PauseRequest', empty, (r) => this.pause(r, true)),
      Resume: method('ResumeRequest', empty, (r) => this.pause(r, false)),
      Checkpoint: method('CheckpointTaskRequest', empty, async () => {
        throw new TtrpcError(StatusCode.Unimplemented, 'checkpoint is not supported by kata-ts');
      }),
      Kill: method('KillRequest', empty, (r) => this.kill(r)),
      Exec: method('ExecProcessRequest', empty, (r) => this.exec(r)),
      ResizePty: method('ResizePtyRequest', empty, (r) => this.resizePty(r)),
      CloseIO: method('CloseIORequest', empty, (r) => this.closeIo(r)),
      Update: method('UpdateTaskRequest', empty, (r) => this.update(r)),
      Wait: method('WaitRequest', 'WaitResponse', (r) => this.wait(r)),
      Stats: method('StatsRequest', 'StatsResponse', (r) => this.stats(r)),
      Connect: method('ConnectRequest', 'ConnectResponse', async (r) => ({ shim_pid: process.pid, task_pid: this.processes.get(key(String(r.id), ''))?.pid ?? 0, version: kataTsVersion })),
      Shutdown: method('ShutdownRequest', empty, (r) => this.shutdownRequest(r)),
    };
  }

  /** The containers still here: the shim stays while there are any. */
  get containerCount(): number {
    return [...this.processes.values()].filter((p) => p.execId === '').length;
  }

  private process(req: Request): TaskProcess {
    const id = String(req.id ?? '');
    const execId = String(req.exec_id ?? '');
    const found = this.processes.get(key(id, execId));
    if (!found) throw new TtrpcError(StatusCode.NotFound, execId ? `process ${execId} of container ${id} does not exist` : `container ${id} does not exist`);
    return found;
  }

  private async create(req: Request): Promise<object> {
    const id = String(req.id);
    const bundle = String(req.bundle);
    if (this.processes.has(key(id, ''))) throw new TtrpcError(StatusCode.AlreadyExists, `container ${id} already exists`);
    if (req.checkpoint) throw new TtrpcError(StatusCode.Unimplemented, 'restoring a checkpoint is not supported by kata-ts');
    const options = req.options as AnyMessage | undefined;
    // CRI and ctr --runtime-config-path pass runtimeoptions.v1.Options; other options are not ours to read.
    const configPath = options?.type_url.endsWith('runtimeoptions.v1.Options') && options.value.length
      ? decodeMessage<{ config_path: string }>('containerd.runtimeoptions.Options', options.value).config_path
      : '';
    const config = await this.options.loadConfig(configPath || undefined);
    const paths = { stdin: String(req.stdin ?? ''), stdout: String(req.stdout ?? ''), stderr: String(req.stderr ?? ''), terminal: Boolean(req.terminal) };
    await mountRootfs(bundle, (req.rootfs as MountMessage[]) ?? []);
    const io = paths.terminal ? new TerminalIo(paths) : new TaskIo(paths);
    let created;
    try {
      created = await createContainer(this.options.ctx, config, io instanceof TerminalIo ? { id, bundle, consoleSocket: io.consoleSocket } : { id, bundle, stdio: io.stdio });
      await attachIo(io, created.carrier);
    } catch (err) {
      io.close();
      if (created) await deleteContainer(this.options.ctx, id, true).catch(() => undefined);
      await unmountRootfs(bundle);
      throw err;
    }
    const proc = this.track({ containerId: id, execId: '', bundle, io: paths, status: 'created', pid: created.carrier.id.pid, taskIo: io, carrier: created.carrier });
    this.options.events.publish('/tasks/create', 'TaskCreate', {
      container_id: id, bundle, rootfs: req.rootfs ?? [], io: paths, checkpoint: '', pid: proc.pid,
    });
    return { pid: proc.pid };
  }

  private async start(req: Request): Promise<object> {
    const proc = this.process(req);
    if (proc.execId === '') {
      await startContainer(this.options.ctx, proc.containerId);
      proc.status = 'running';
      this.options.events.publish('/tasks/start', 'TaskStart', { container_id: proc.containerId, pid: proc.pid });
      return { pid: proc.pid };
    }
    if (proc.status !== 'created' || !proc.spec) throw new TtrpcError(StatusCode.FailedPrecondition, `exec ${proc.execId} was started already`);
    const io = proc.io.terminal ? new TerminalIo(proc.io) : new TaskIo(proc.io);
    let started;
    try {
      const flags = { args: [], process: { ...proc.spec, terminal: proc.io.terminal } };
      started = await execProcess(this.options.ctx, io instanceof TerminalIo ? { id: proc.containerId, flags, detach: true, consoleSocket: io.consoleSocket } : { id: proc.containerId, flags, detach: true, stdio: io.stdio });
      await attachIo(io, started.carrier);
    } catch (err) {
      io.close();
      if (started) process.kill(started.carrier.id.pid, 'SIGKILL');
      throw err;
    }
    Object.assign(proc, { taskIo: io, carrier: started.carrier, pid: started.carrier.id.pid, status: 'running' });
    this.watchExit(proc);
    this.options.events.publish('/tasks/exec-started', 'TaskExecStarted', { container_id: proc.containerId, exec_id: proc.execId, pid: proc.pid });
    return { pid: proc.pid };
  }

  private async state(req: Request): Promise<object> {
    const proc = this.process(req);
    const status = proc.status === 'created' ? TaskStatus.Created : proc.status === 'running' ? TaskStatus.Running : TaskStatus.Stopped;
    return {
      id: proc.containerId, exec_id: proc.execId, bundle: proc.bundle, pid: proc.pid, status, ...proc.io,
      exit_status: proc.exitStatus, ...(proc.exitedAt ? { exited_at: timestampOf(proc.exitedAt) } : {}),
    };
  }

  private async delete(req: Request): Promise<object> {
    const proc = this.process(req);
    if (proc.status === 'running') throw new TtrpcError(StatusCode.FailedPrecondition, `process ${proc.execId || proc.containerId} is running`);
    if (proc.execId === '') {
      for (const p of [...this.processes.values()]) if (p.containerId === proc.containerId && p.execId !== '') this.processes.delete(key(p.containerId, p.execId));
      await deleteContainer(this.options.ctx, proc.containerId, true);
      await unmountRootfs(proc.bundle);
      this.options.events.publish('/tasks/delete', 'TaskDelete', {
        container_id: proc.containerId, pid: proc.pid, exit_status: proc.exitStatus, exited_at: timestampOf(proc.exitedAt ?? new Date()), id: '',
      });
    }
    proc.taskIo?.close();
    this.processes.delete(key(proc.containerId, proc.execId));
    return { pid: proc.pid, exit_status: proc.exitStatus, exited_at: timestampOf(proc.exitedAt ?? new Date()) };
  }

  private async pids(req: Request): Promise<object> {
    const proc = this.process(req);
    const pids = JSON.parse(await listProcesses(this.options.ctx, proc.containerId, 'json')) as number[];
    return { processes: pids.map((pid) => ({ pid })) };
  }

  private async pause(req: Request, paused: boolean): Promise<object> {
    const proc = this.process(req);
    await setPaused(this.options.ctx, proc.containerId, paused);
    this.options.events.publish(paused ? '/tasks/paused' : '/tasks/resumed', paused ? 'TaskPaused' : 'TaskResumed', { container_id: proc.containerId });
    return {};
  }

  private async kill(req: Request): Promise<object> {
    const proc = this.process(req);
    const signal = Number(req.signal);
    if (proc.status === 'stopped') throw new TtrpcError(StatusCode.NotFound, `process ${proc.execId || proc.containerId} has exited`);
    if (proc.execId === '') {
      await killContainer(this.options.ctx, proc.containerId, signal, Boolean(req.all));
    } else if (proc.carrier) {
      // The carrier passes the signal on; SIGKILL takes the carrier down, and the pod process its process.
      process.kill(proc.pid, signal);
    }
    return {};
  }

  private async exec(req: Request): Promise<object> {
    const container = this.process({ id: req.id, exec_id: '' });
    const execId = String(req.exec_id);
    if (this.processes.has(key(container.containerId, execId))) throw new TtrpcError(StatusCode.AlreadyExists, `exec ${execId} already exists`);
    const spec = req.spec as AnyMessage | undefined;
    if (!spec?.value?.length) throw new TtrpcError(StatusCode.InvalidArgument, `exec ${execId} has no process spec`);
    const paths = { stdin: String(req.stdin ?? ''), stdout: String(req.stdout ?? ''), stderr: String(req.stderr ?? ''), terminal: Boolean(req.terminal) };
    this.track({ containerId: container.containerId, execId, bundle: container.bundle, io: paths, status: 'created', pid: 0, spec: JSON.parse(spec.value.toString()) as OciProcessSpec }, false);
    this.options.events.publish('/tasks/exec-added', 'TaskExecAdded', { container_id: container.containerId, exec_id: execId });
    return {};
  }

  private async resizePty(req: Request): Promise<object> {
    const proc = this.process(req);
    if (!(proc.taskIo instanceof TerminalIo)) throw new TtrpcError(StatusCode.FailedPrecondition, `process ${proc.execId || proc.containerId} has no terminal`);
    proc.taskIo.resize(Number(req.height), Number(req.width));
    return {};
  }

  /** The container's cgroup figures from the guest, as cgroups v1 Metrics (what ctr task metrics and CRI read). */
  private async stats(req: Request): Promise<object> {
    const proc = this.process({ id: req.id, exec_id: '' });
    const stats = await containerStats(this.options.ctx, proc.containerId);
    const metrics = {
      pids: { current: stats.pids.current, limit: stats.pids.limit },
      cpu: { usage: { total: stats.cpu.totalNs, kernel: stats.cpu.kernelNs, user: stats.cpu.userNs } },
      memory: { usage: { usage: stats.memory.usage, limit: stats.memory.limit } },
    };
    return { stats: packAny('io.containerd.cgroups.v1.Metrics', metrics) };
  }

  private async closeIo(req: Request): Promise<object> {
    const proc = this.process(req);
    if (req.stdin) proc.taskIo?.closeStdin();
    return {};
  }

  private async update(req: Request): Promise<object> {
    const proc = this.process(req);
    const resources = req.resources as AnyMessage | undefined;
    if (!resources?.value?.length) return {};
    await updateContainer(this.options.ctx, proc.containerId, JSON.parse(resources.value.toString()) as OciLinuxResources);
    return {};
  }

  private async wait(req: Request): Promise<object> {
    const proc = this.process(req);
    await proc.exited;
    return { exit_status: proc.exitStatus, exited_at: timestampOf(proc.exitedAt ?? new Date()) };
  }

  private async shutdownRequest(req: Request): Promise<object> {
    if (this.containerCount > 0 && !req.now) return {};
    // Shutdown now with containers left: they go too, so that no VM outlives its shim.
    for (const proc of [...this.processes.values()].filter((p) => p.execId === '')) {
      await deleteContainer(this.options.ctx, proc.containerId, true).catch((err: unknown) => this.options.logger.warn(`shutdown: ${messageOf(err)}`));
      await unmountRootfs(proc.bundle);
      this.processes.delete(key(proc.containerId, ''));
    }
    this.options.shutdown();
    return {};
  }

  private track(fields: Omit<TaskProcess, 'exited' | 'markExited' | 'exitStatus'>, watch = true): TaskProcess {
    let markExited: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const proc: TaskProcess = { ...fields, exitStatus: 0, exited, markExited };
    this.processes.set(key(proc.containerId, proc.execId), proc);
    if (watch) this.watchExit(proc);
    return proc;
  }

  /** The carrier's exit is the process's: its status, the time, TaskExit, and every Wait answered. */
  private watchExit(proc: TaskProcess): void {
    const child = proc.carrier?.child;
    if (!child) return;
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      proc.exitStatus = exitStatusOf(code, signal);
      proc.exitedAt = new Date();
      proc.status = 'stopped';
      if (proc.taskIo instanceof TerminalIo) void proc.taskIo.closeAfterExit();
      else proc.taskIo?.close();
      this.options.logger.info(`process ${proc.execId || proc.containerId} of container ${proc.containerId} exited with ${proc.exitStatus}`);
      this.options.events.publish('/tasks/exit', 'TaskExit', {
        container_id: proc.containerId, id: proc.execId || proc.containerId, pid: proc.pid, exit_status: proc.exitStatus, exited_at: timestampOf(proc.exitedAt),
      });
      proc.markExited();
    };
    // It may have ended while create or start was still writing state.
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    else child.once('exit', onExit);
  }
}

async function attachIo(io: TaskIo | TerminalIo, carrier: SpawnedCarrier): Promise<void> {
  if (io instanceof TerminalIo) await io.attach();
  else io.attach(carrier.child);
}

function key(containerId: string, execId: string): string {
  return `${containerId}\0${execId}`;
}

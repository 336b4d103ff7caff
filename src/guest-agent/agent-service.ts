import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  agentVersion,
  type AddContainerDeviceRequest,
  type UpdateContainerRequest,
  type RemoveContainerDeviceRequest,
  type ContainerRequest,
  type CreateContainerRequest,
  type CreateSandboxRequest,
  type ExecProcessRequest,
  type GuestDetailsResponse,
  type ListProcessesRequest,
  type ProcessRequest,
  type ReadStreamRequest,
  type RemoveContainerRequest,
  type ReseedRandomDevRequest,
  type SetGuestDateTimeRequest,
  type SignalProcessRequest,
  type TtyWinResizeRequest,
  type WriteStreamRequest,
  type UpdateInterfaceRequest,
  type UpdateRoutesRequest,
  type AddArpNeighborsRequest,
} from '../agent-protocol/messages.js';
import { onlineCpuMem, type OnlineCpuMemRequest } from './cpu-memory.js';
import { addArpNeighbors, listInterfaces, listRoutes, updateInterface, updateRoutes } from './network.js';
import { AgentError, failed, invalid } from './agent-error.js';
import { formatTable } from '../util/text-table.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { messageOf } from '../util/errors.js';
import type { AgentLog } from './agent-log.js';
import type { AgentOptions } from './agent-options.js';
import type { Sandbox } from './sandbox.js';

type Handler = (request: never) => Promise<unknown>;

/** Wraps an async handler: AgentError keeps its status, anything else is INTERNAL; the agent never crashes on a request. */
function unary(name: string, log: AgentLog, handler: Handler): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    log.debug(`${name} ${JSON.stringify(call.request, (_k, v: unknown) => (Buffer.isBuffer(v) ? `<${v.length} bytes>` : v)).slice(0, 300)}`);
    const started = performance.now();
    handler(call.request as never).then(
      (reply) => {
        log.debug(`${name} done in ${Math.round(performance.now() - started)} ms`);
        callback(null, reply ?? {});
      },
      (err: unknown) => {
        const status = err instanceof AgentError ? err.status : grpc.status.INTERNAL;
        const message = err instanceof Error ? err.message : String(err);
        log.debug(`${name} failed: ${message}`);
        callback({ code: status, details: message, name: 'AgentError', message });
      },
    );
  };
}

async function readStream(sandbox: Sandbox, req: ReadStreamRequest, which: 'stdout' | 'stderr'): Promise<{ data: Buffer }> {
  const proc = sandbox.process(req.container_id, req.exec_id);
  const data = await proc[which].read(req.len > 0 ? req.len : 64 * 1024);
  // Kata's agent answers a drained, closed stream with an "EOF" error.
  if (data.length === 0) {
    await sandbox.settleExec(req.container_id, req.exec_id);
    throw new AgentError(grpc.status.UNKNOWN, 'EOF');
  }
  return { data };
}

async function waitProcess(sandbox: Sandbox, req: ProcessRequest): Promise<{ status: number }> {
  const proc = sandbox.process(req.container_id, req.exec_id);
  const status = await proc.exited;
  proc.waited = true;
  await sandbox.settleExec(req.container_id, req.exec_id);
  return { status };
}

/** A ps-like table from /proc: the guest may have no ps, and a container's own ps sees only its pid namespace. */
async function psTable(pids: number[]): Promise<string> {
  const rows = [['PID', 'UID', 'STAT', 'CMD']];
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const field = (name: string): string => /^(\S+)/.exec(status.split('\n').find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? '')?.[1] ?? '?';
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
    rows.push([String(pid), field('Uid'), field('State'), cmdline || `[${field('Name')}]`]);
  }
  return formatTable(rows, '  ') + '\n';
}

async function readNumber(file: string): Promise<number> {
  const text = (await readFile(file, 'utf8').catch(() => '0')).trim();
  return text === 'max' ? 0 : Number(text) || 0;
}

async function statsContainer(sandbox: Sandbox, req: ContainerRequest): Promise<unknown> {
  const dir = await sandbox.cgroupDir(req.container_id);
  const cpuStat = Object.fromEntries(
    (await readFile(`${dir}/cpu.stat`, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]),
  );
  const usec = (key: string): number => Number(cpuStat[key] ?? 0) * 1000;
  return {
    cgroup_stats: {
      cpu_stats: { cpu_usage: { total_usage: usec('usage_usec'), percpu_usage: [], usage_in_kernelmode: usec('system_usec'), usage_in_usermode: usec('user_usec') } },
      memory_stats: { usage: { usage: await readNumber(`${dir}/memory.current`), limit: await readNumber(`${dir}/memory.max`) } },
      pids_stats: { current: await readNumber(`${dir}/pids.current`), limit: await readNumber(`${dir}/pids.max`) },
    },
    network_stats: [],
  };
}

async function guestDetails(): Promise<GuestDetailsResponse> {
  const blockSize = parseInt((await readFile('/sys/devices/system/memory/block_size_bytes', 'utf8').catch(() => '0')).trim(), 16) || 0;
  return {
    mem_block_size_bytes: blockSize,
    agent_details: { version: agentVersion, init_daemon: process.pid === 1, device_handlers: ['blk', 'scsi'], storage_handlers: ['9p', 'local', 'tmpfs'], supports_seccomp: false },
    support_mem_hotplug_probe: false,
  };
}

async function setDateTime(req: SetGuestDateTimeRequest): Promise<void> {
  const seconds = Number(req.Sec);
  const micros = Number(req.Usec ?? 0);
  if (!Number.isSafeInteger(seconds) || seconds < 0 || !Number.isInteger(micros) || micros < 0 || micros >= 1_000_000) {
    throw invalid(`SetGuestDateTime: bad time ${String(req.Sec)}.${String(req.Usec)}`);
  }
  try {
    loadNativeAddon().setRealtime(seconds, micros);
  } catch (err) {
    throw failed(`cannot set the date: ${messageOf(err)}`);
  }
}

/** Host bytes into the kernel's pool, and a reseed now: VMs restored from one template must not share the generator's state. */
async function reseedRandom(req: ReseedRandomDevRequest): Promise<void> {
  const data = Buffer.from(req.data ?? []);
  if (data.length === 0) throw invalid('ReseedRandomDev without data');
  try {
    loadNativeAddon().reseedCrng(data);
  } catch (err) {
    throw failed(`cannot reseed the random generator: ${messageOf(err)}`);
  } finally {
    data.fill(0);
  }
}

/** The grpc.AgentService implementation, one entry per RPC. */
export function agentServiceHandlers(sandbox: Sandbox, log: AgentLog, options: Pick<AgentOptions, 'hotplugTimeoutMs'>): grpc.UntypedServiceImplementation {
  const handlers: Record<string, Handler> = {
    CreateSandbox: (req: CreateSandboxRequest) => sandbox.create(req),
    DestroySandbox: () => sandbox.destroy(),
    OnlineCPUMem: (req: OnlineCpuMemRequest) => onlineCpuMem(req),
    GetGuestDetails: () => guestDetails(),
    SetGuestDateTime: (req: SetGuestDateTimeRequest) => setDateTime(req),
    ReseedRandomDev: (req: ReseedRandomDevRequest) => reseedRandom(req),
    CreateContainer: (req: CreateContainerRequest) => sandbox.createContainer(req),
    StartContainer: (req: ContainerRequest) => sandbox.startContainer(req.container_id),
    RemoveContainer: (req: RemoveContainerRequest) => sandbox.removeContainer(req.container_id, req.timeout),
    ExecProcess: async (req: ExecProcessRequest) => {
      if (!req.process) throw invalid('ExecProcess without a process');
      await sandbox.exec(req.container_id, req.exec_id, req.process);
    },
    SignalProcess: (req: SignalProcessRequest) => sandbox.signal(req.container_id, req.exec_id, req.signal),
    WaitProcess: (req: ProcessRequest) => waitProcess(sandbox, req),
    ListProcesses: async (req: ListProcessesRequest) => {
      const pids = await sandbox.pids(req.container_id);
      const list = req.format === 'json' ? JSON.stringify(pids) : await psTable(pids);
      return { process_list: Buffer.from(list) };
    },
    StatsContainer: (req: ContainerRequest) => statsContainer(sandbox, req),
    PauseContainer: (req: ContainerRequest) => sandbox.pause(req.container_id, true),
    ResumeContainer: (req: ContainerRequest) => sandbox.pause(req.container_id, false),
    UpdateContainer: (req: UpdateContainerRequest) => sandbox.updateLimits(req.container_id, req.resources),
    WriteStdin: async (req: WriteStreamRequest) => {
      const proc = sandbox.process(req.container_id, req.exec_id);
      if (!proc.stdin || proc.stdin.destroyed) throw new AgentError(grpc.status.FAILED_PRECONDITION, 'stdin is closed');
      await new Promise<void>((resolve, reject) => proc.stdin?.write(req.data, (err) => (err ? reject(failed(err.message)) : resolve())));
      return { len: req.data.length };
    },
    ReadStdout: (req: ReadStreamRequest) => readStream(sandbox, req, 'stdout'),
    ReadStderr: (req: ReadStreamRequest) => readStream(sandbox, req, 'stderr'),
    CloseStdin: async (req: ProcessRequest) => {
      sandbox.process(req.container_id, req.exec_id).stdin?.end();
    },
    AddContainerDevice: async (req: AddContainerDeviceRequest) => {
      if (!req.device) throw invalid('AddContainerDevice without a device');
      await sandbox.addDevice(req.container_id, req.device, options.hotplugTimeoutMs);
    },
    RemoveContainerDevice: (req: RemoveContainerDeviceRequest) => sandbox.removeDevice(req.container_id, req.container_path),
    UpdateInterface: (req: UpdateInterfaceRequest) => updateInterface(req.interface),
    UpdateRoutes: async (req: UpdateRoutesRequest) => ({ Routes: await updateRoutes(req.routes?.Routes ?? []) }),
    ListInterfaces: async () => ({ Interfaces: await listInterfaces() }),
    ListRoutes: async () => ({ Routes: await listRoutes() }),
    AddARPNeighbors: (req: AddArpNeighborsRequest) => addArpNeighbors(req.neighbors?.ARPNeighbors ?? []),
    TtyWinResize: async (req: TtyWinResizeRequest) => {
      const proc = sandbox.process(req.container_id, req.exec_id);
      if (!proc.hasTerminal) throw new AgentError(grpc.status.FAILED_PRECONDITION, `process ${req.exec_id} has no terminal`);
      proc.resize(req.row, req.column);
    },
  };
  return Object.fromEntries(Object.entries(handlers).map(([name, handler]) => [name, unary(name, log, handler)]));
}

export function healthHandlers(log: AgentLog): grpc.UntypedServiceImplementation {
  return {
    Check: unary('Check', log, async () => ({ status: 'SERVING' })),
    Version: unary('Version', log, async () => ({ grpc_version: agentVersion, agent_version: agentVersion })),
  };
}

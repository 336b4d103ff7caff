import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadAgentProtocol, type AgentProtocol } from '../agent-protocol/load-protos.js';
import type {
  CreateContainerRequest,
  CreateSandboxRequest,
  Device,
  GuestDetailsResponse,
  OciProcess,
  OciResources,
  ArpNeighbor,
  NetworkInterface,
  NetworkRoute,
} from '../agent-protocol/messages.js';
import { KataError } from '../util/errors.js';
import { parseVsockUrl, VsockBridge } from './vsock-bridge.js';

let protocol: AgentProtocol | undefined;

/** A gRPC failure from the agent, with its status code and the agent's message. */
export class AgentCallError extends KataError {
  constructor(
    readonly method: string,
    readonly grpcCode: grpc.status,
    readonly details: string,
  ) {
    super('VM', `agent ${method} failed: ${details || grpc.status[grpcCode]}`);
    this.name = 'AgentCallError';
  }
}

type Callback = (err: grpc.ServiceError | null, reply: unknown) => void;
type UnaryMethod = (request: unknown, options: grpc.CallOptions, callback: Callback) => void;


/**
 * Client of the guest agent (grpc.AgentService and grpc.Health) at an
 * address handed out by the hypervisor layer. It knows nothing of QEMU.
 */
export class AgentClient {
  private readonly agent: grpc.Client;
  private readonly health: grpc.Client;
  private readonly bridge: VsockBridge | undefined;

  constructor(readonly url: string) {
    protocol ??= loadAgentProtocol();
    const vsock = parseVsockUrl(url);
    if (vsock) this.bridge = new VsockBridge(vsock.cid, vsock.port);
    else if (!url.startsWith('unix://')) throw new KataError('VM', `unknown agent address ${url}`);
    const target = this.bridge ? `unix://${this.bridge.socketPath}` : url;
    // Reconnect fast: during boot the agent is not there yet.
    const options = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500, 'grpc.enable_retries': 0 };
    this.agent = new protocol.agentService(target, grpc.credentials.createInsecure(), options);
    this.health = new protocol.healthService(target, grpc.credentials.createInsecure(), options);
  }

  private call<T>(client: grpc.Client, method: string, request: unknown, timeoutMs = 60_000): Promise<T> {
    const fn = (client as unknown as Record<string, UnaryMethod>)[method];
    if (!fn) throw new KataError('VM', `agent has no method ${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, reply) => {
        if (err) reject(new AgentCallError(method, err.code, err.details));
        else resolve(reply as T);
      });
    });
  }

  private agentCall<T>(method: string, request: unknown, timeoutMs?: number): Promise<T> {
    return this.call<T>(this.agent, method, request, timeoutMs);
  }

  check(timeoutMs = 5000): Promise<{ status: string }> {
    return this.call(this.health, 'Check', { service: '' }, timeoutMs);
  }

  version(): Promise<{ grpc_version: string; agent_version: string }> {
    return this.call(this.health, 'Version', { service: '' });
  }

  /** Polls Health.Check until the agent answers SERVING or the time is up. */
  async waitReady(timeoutMs: number, onError?: () => Promise<string | undefined>): Promise<number> {
    const started = Date.now();
    let last = '';
    while (Date.now() - started < timeoutMs) {
      try {
        const reply = await this.check(Math.min(1000, timeoutMs - (Date.now() - started)));
        if (reply.status === 'SERVING') return Date.now() - started;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        const fatal = await onError?.();
        if (fatal) throw new KataError('VM', fatal);
      }
      await sleep(100);
    }
    throw new KataError('TIMEOUT', `agent did not answer within ${timeoutMs} ms${last ? ` (last error: ${last})` : ''}`);
  }

  createSandbox(req: Partial<CreateSandboxRequest>): Promise<void> {
    return this.agentCall('CreateSandbox', req);
  }
  destroySandbox(): Promise<void> {
    return this.agentCall('DestroySandbox', {});
  }
  /** Kata 1.x's OnlineCPUMem: the guest brings hot-plugged vCPUs (and, unless cpuOnly, memory) online. */
  onlineCpuMem(cpus: number, cpuOnly: boolean): Promise<void> {
    return this.agentCall('OnlineCPUMem', { wait: true, nb_cpus: cpus, cpu_only: cpuOnly });
  }
  getGuestDetails(): Promise<GuestDetailsResponse> {
    return this.agentCall('GetGuestDetails', { mem_block_size: true, mem_hotplug_probe: true });
  }
  /** The guest's clock set to the host's (milliseconds since the epoch). */
  setGuestDateTime(epochMs: number): Promise<void> {
    return this.agentCall('SetGuestDateTime', { Sec: Math.floor(epochMs / 1000), Usec: (epochMs % 1000) * 1000 });
  }
  /** The guest's random generator reseeded with these bytes (base64: they cross the pod protocol as JSON). */
  reseedRandomDev(base64: string): Promise<void> {
    return this.agentCall('ReseedRandomDev', { data: Buffer.from(base64, 'base64') });
  }
  createContainer(req: Partial<CreateContainerRequest>): Promise<void> {
    return this.agentCall('CreateContainer', req);
  }
  startContainer(containerId: string): Promise<void> {
    return this.agentCall('StartContainer', { container_id: containerId });
  }
  removeContainer(containerId: string, timeoutSeconds = 10): Promise<void> {
    return this.agentCall('RemoveContainer', { container_id: containerId, timeout: timeoutSeconds });
  }
  execProcess(containerId: string, execId: string, process: Partial<OciProcess>): Promise<void> {
    return this.agentCall('ExecProcess', { container_id: containerId, exec_id: execId, process });
  }
  signalProcess(containerId: string, execId: string, signal: number): Promise<void> {
    return this.agentCall('SignalProcess', { container_id: containerId, exec_id: execId, signal });
  }
  /**
   * Waits for the process's exit, however long it runs: each call has a
   * deadline (gRPC needs one to notice a dead connection), and a deadline
   * that passes only means "still running", so the wait is made again.
   */
  async waitProcess(containerId: string, execId: string, callMs = 3600_000): Promise<number> {
    for (;;) {
      try {
        return (await this.agentCall<{ status: number }>('WaitProcess', { container_id: containerId, exec_id: execId }, callMs)).status;
      } catch (err) {
        if (!(err instanceof AgentCallError && err.grpcCode === grpc.status.DEADLINE_EXCEEDED)) throw err;
      }
    }
  }
  /** Undefined at EOF. */
  async readStdout(containerId: string, execId: string, len = 64 * 1024): Promise<Buffer | undefined> {
    return this.readStream('ReadStdout', containerId, execId, len);
  }
  async readStderr(containerId: string, execId: string, len = 64 * 1024): Promise<Buffer | undefined> {
    return this.readStream('ReadStderr', containerId, execId, len);
  }
  private async readStream(method: string, containerId: string, execId: string, len: number): Promise<Buffer | undefined> {
    try {
      return (await this.agentCall<{ data: Buffer }>(method, { container_id: containerId, exec_id: execId, len }, 24 * 3600_000)).data;
    } catch (err) {
      if (err instanceof AgentCallError && err.details === 'EOF') return undefined;
      throw err;
    }
  }
  async writeStdin(containerId: string, execId: string, data: Buffer): Promise<number> {
    return (await this.agentCall<{ len: number }>('WriteStdin', { container_id: containerId, exec_id: execId, data })).len;
  }
  closeStdin(containerId: string, execId: string): Promise<void> {
    return this.agentCall('CloseStdin', { container_id: containerId, exec_id: execId });
  }
  /** New cgroup limits for a container (memory, CPU, pids); devices are not updated. */
  updateContainer(containerId: string, resources: OciResources): Promise<void> {
    return this.agentCall('UpdateContainer', { container_id: containerId, resources });
  }
  /** kata-ts extension: hot-plug a disk into a running container (device.container_path = the node to create). */
  addContainerDevice(containerId: string, device: Omit<Device, 'vm_path' | 'options'>): Promise<void> {
    return this.agentCall('AddContainerDevice', { container_id: containerId, device: { ...device, vm_path: '', options: [] } });
  }
  removeContainerDevice(containerId: string, containerPath: string): Promise<void> {
    return this.agentCall('RemoveContainerDevice', { container_id: containerId, container_path: containerPath });
  }
  ttyWinResize(containerId: string, execId: string, rows: number, columns: number): Promise<void> {
    return this.agentCall('TtyWinResize', { container_id: containerId, exec_id: execId, row: rows, column: columns });
  }
  async listProcesses(containerId: string, format: 'table' | 'json'): Promise<string> {
    return (await this.agentCall<{ process_list: Buffer }>('ListProcesses', { container_id: containerId, format, args: [] })).process_list.toString();
  }
  pauseContainer(containerId: string): Promise<void> {
    return this.agentCall('PauseContainer', { container_id: containerId });
  }
  resumeContainer(containerId: string): Promise<void> {
    return this.agentCall('ResumeContainer', { container_id: containerId });
  }
  statsContainer(containerId: string): Promise<Record<string, unknown>> {
    return this.agentCall('StatsContainer', { container_id: containerId });
  }

  updateInterface(iface: NetworkInterface): Promise<NetworkInterface> {
    return this.agentCall('UpdateInterface', { interface: iface });
  }
  async updateRoutes(routes: NetworkRoute[]): Promise<NetworkRoute[]> {
    return (await this.agentCall<{ Routes: NetworkRoute[] }>('UpdateRoutes', { routes: { Routes: routes } })).Routes;
  }
  async listInterfaces(): Promise<NetworkInterface[]> {
    return (await this.agentCall<{ Interfaces: NetworkInterface[] }>('ListInterfaces', {})).Interfaces;
  }
  async listRoutes(): Promise<NetworkRoute[]> {
    return (await this.agentCall<{ Routes: NetworkRoute[] }>('ListRoutes', {})).Routes;
  }
  addArpNeighbors(neighbors: ArpNeighbor[]): Promise<void> {
    return this.agentCall('AddARPNeighbors', { neighbors: { ARPNeighbors: neighbors } });
  }

  close(): void {
    this.agent.close();
    this.health.close();
    this.bridge?.close();
  }
}

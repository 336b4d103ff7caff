/**
 * The pod socket's messages: JSON, one per line. A carrier's first message is
 * `attach`, sent with its stdio fds (SCM_RIGHTS); a command's is a request.
 */

/**
 * The agent methods a command may call through the pod process (JSON in, JSON
 * out; process I/O never goes this way: it is the pod's own work).
 */
export const podAgentMethods = [
  'check', 'createSandbox', 'destroySandbox', 'createContainer', 'startContainer', 'removeContainer', 'execProcess',
  'signalProcess', 'updateContainer', 'addContainerDevice', 'removeContainerDevice', 'listProcesses', 'pauseContainer', 'resumeContainer',
  'statsContainer', 'updateInterface', 'updateRoutes', 'listInterfaces', 'listRoutes', 'addArpNeighbors', 'onlineCpuMem', 'getGuestDetails',
  'setGuestDateTime', 'reseedRandomDev',
] as const;
export type PodAgentMethod = (typeof podAgentMethods)[number];

/** The QMP work a command asks of the pod process, which owns QMP and does it one at a time. */
export const podHypervisorMethods = ['attachBlockDevice', 'detachBlockDevice', 'plugVcpus', 'unplugVcpus', 'plugMemory', 'vcpuThreads', 'attachNic', 'detachNic'] as const;
export type PodHypervisorMethod = (typeof podHypervisorMethods)[number];

/** What a command may ask of the pod process's I/O relays (output-watch.ts). */
export const podRelayMethods = ['firstOutput'] as const;
export type PodRelayMethod = (typeof podRelayMethods)[number];

/** A command's request: one per connection. */
export interface PodCall {
  type: 'call';
  method: PodAgentMethod | PodHypervisorMethod | PodRelayMethod;
  args: unknown[];
}

export type PodCallReply = { type: 'result'; value: unknown } | { type: 'error'; message: string };

/** From a carrier. */
export type CarrierMessage =
  | { type: 'attach'; container: string; exec: string; tty: boolean; pid: number }
  | { type: 'signal'; signal: number }
  | { type: 'resize'; rows: number; columns: number };

/** To a carrier. */
export type CarrierReply = { type: 'attached' } | { type: 'exit'; status: number } | { type: 'error'; message: string };

export function encodeMessage(message: object): string {
  return `${JSON.stringify(message)}\n`;
}

/** Splits a byte stream into JSON lines. */
export class LineReader {
  private pending = '';

  /** Keeps text for later, unparsed (what followed a first message read elsewhere). */
  hold(text: string): void {
    this.pending += text;
  }

  push(chunk: Buffer | string, onMessage: (message: unknown) => void): void {
    this.pending += chunk.toString();
    for (let nl = this.pending.indexOf('\n'); nl >= 0; nl = this.pending.indexOf('\n')) {
      const line = this.pending.slice(0, nl).trim();
      this.pending = this.pending.slice(nl + 1);
      if (line) onMessage(JSON.parse(line));
    }
  }
}

import net from 'node:net';
import type { AgentClient } from '../agent-client/agent-client.js';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import { podSocketPath } from './pod-layout.js';
import type { SandboxHypervisor } from './pod-hypervisor.js';
import type { SandboxRelays } from './output-watch.js';
import { encodeMessage, LineReader, podAgentMethods, podHypervisorMethods, podRelayMethods, type PodAgentMethod, type PodCall, type PodCallReply } from './pod-protocol.js';

/** The agent as a command sees it: the methods the pod process calls for it. */
export type SandboxAgent = Pick<AgentClient, PodAgentMethod>;

/** Raised when no pod process answers on the socket: the caller may start one and try again. */
export class PodUnreachable extends Error {}

function callOnce(socketPath: string, call: PodCall): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const reader = new LineReader();
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      fn();
    };
    socket.once('connect', () => socket.write(encodeMessage(call)));
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (message) => {
          const reply = message as PodCallReply;
          finish(() => (reply.type === 'result' ? resolve(reply.value) : reject(new KataError('VM', reply.message))));
        });
      } catch (err) {
        finish(() => reject(err));
      }
    });
    socket.once('error', (err) => {
      const code = errnoCode(err);
      finish(() => reject(code === 'ENOENT' || code === 'ECONNREFUSED' ? new PodUnreachable(messageOf(err)) : err));
    });
    socket.once('close', () => finish(() => reject(new KataError('VM', `the pod process closed the connection during ${call.method}`))));
  });
}

type PodMethod = PodCall['method'];

/** Calls the pod process, starting one again (restart) when none answers. */
function podCaller(vmDir: string, restart: () => Promise<void>): (method: PodMethod, args: unknown[]) => Promise<unknown> {
  const socketPath = podSocketPath(vmDir);
  return async (method, args) => {
    // JSON has no undefined: trailing ones go, so the method's defaults apply.
    while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
    const request: PodCall = { type: 'call', method, args };
    try {
      return await callOnce(socketPath, request);
    } catch (err) {
      if (!(err instanceof PodUnreachable)) throw err;
      await restart();
      return callOnce(socketPath, request);
    }
  };
}

function proxyOf<T>(methods: readonly PodMethod[], call: (method: PodMethod, args: unknown[]) => Promise<unknown>): T {
  const target: Partial<Record<PodMethod, (...args: unknown[]) => Promise<unknown>>> = {};
  for (const method of methods) target[method] = (...args: unknown[]) => call(method, args);
  return target as unknown as T;
}

/**
 * The sandbox's agent, reached through its pod process: commands never load
 * gRPC, and the pod's one agent session serves them all. When no pod process
 * answers (it died), `restart` starts one and the call is made again.
 */
export function podAgent(vmDir: string, restart: () => Promise<void>): SandboxAgent {
  return proxyOf<SandboxAgent>(podAgentMethods, podCaller(vmDir, restart));
}

/** The sandbox's QEMU hot-plug, done by its pod process (the owner of QMP). */
export function podHypervisor(vmDir: string, restart: () => Promise<void>): SandboxHypervisor {
  return proxyOf<SandboxHypervisor>(podHypervisorMethods, podCaller(vmDir, restart));
}

/** The sandbox's I/O relays, in its pod process. */
export function podRelays(vmDir: string, restart: () => Promise<void>): SandboxRelays {
  return proxyOf<SandboxRelays>(podRelayMethods, podCaller(vmDir, restart));
}

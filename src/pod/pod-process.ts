import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../agent-client/agent-client.js';
import { vmIsRunning } from '../hypervisor/qemu-vm.js';
import { startAgentProxy, type AgentProxy } from '../proxy/agent-proxy.js';
import { readVmFile, type VmFile } from '../runtime/vm-file.js';
import { writeJsonAtomic } from '../store/atomic-file.js';
import { messageOf } from '../util/errors.js';
import { identify } from '../util/process-identity.js';
import type { Logger } from '../util/logger.js';
import { serveCarrier, type CarrierLinkContext } from './carrier-link.js';
import { podIdentityPath, podSocketPath, startedMarkerPath } from './pod-layout.js';
import { takePodLock } from './pod-lock.js';
import { serveGoneVm } from './gone-vm-server.js';
import { closeFds, readFirstMessage } from './pod-connection.js';
import { PodHypervisor } from './pod-hypervisor.js';
import { OutputWatch } from './output-watch.js';
import { encodeMessage, podAgentMethods, podHypervisorMethods, podRelayMethods, type PodCall, type PodCallReply } from './pod-protocol.js';
import { listenOwnerOnly } from '../util/unix-socket.js';
import { lostStatus } from './process-relay.js';
import { watchPodNetns } from './netns-monitor.js';
import type { RuntimeContext } from '../runtime/runtime-context.js';

/** How soon the agent of a VM restored from a template answers a ping, at most (it is up already). */
const restoredPongMs = 700;

export interface PodOptions {
  vmDir: string;
  /** Started with the VM (create): no agent session to take over. */
  fresh: boolean;
  logger: Logger;
  /** How long the agent may take to answer (the VM may still be booting). */
  readyTimeoutMs: number;
  /** Where the commands it runs (netmon's) log: its own --log. */
  log?: Partial<RuntimeContext['log']>;
}

/**
 * The pod process: one per sandbox, from the create that boots the VM until
 * the VM stops. It owns the agent channel (yamux over the serial port, served
 * to host clients on proxy.sock) and relays the I/O of every container process
 * and exec whose carrier attaches on pod.sock. Nothing it needs lives only in
 * its memory: started again (by a carrier or a command), it reconnects to the
 * VM, and the carriers attach anew.
 */
export async function runPod(options: PodOptions): Promise<void> {
  const { logger, vmDir } = options;
  const record = await readVmFile(vmDir);
  const lock = await takePodLock(vmDir);
  if (!lock) {
    logger.debug(`sandbox ${record.sandboxId}: another pod process serves it`);
    return;
  }
  // Whoever stops the VM stops this process too, whichever pod process it is.
  const self = await identify(process.pid);
  if (self) await writeJsonAtomic(podIdentityPath(vmDir), self);
  if (!(await vmIsRunning(record.vm))) {
    await serveGoneVm(podSocketPath(vmDir), record.sandboxId, logger);
    await lock.release();
    return;
  }
  // Taking over a live VM whose pod process died: the agent must drop the old session.
  const takeover = !options.fresh;
  let proxy: AgentProxy | undefined;
  if (record.vm.agentChannel.kind === 'serial') {
    proxy = await startAgentProxy(record.vm.agentChannel.socket, record.vm.layout.proxySocket, logger, options.readyTimeoutMs, 10_000, {
      resetPeer: takeover,
      ...(record.vm.restored && !takeover ? { reconnectMs: restoredPongMs } : {}),
    });
  }
  const agent = new AgentClient(record.agentUrl);
  const links = new Set<net.Socket>();
  const hypervisor = new PodHypervisor(record.vm.layout.qmpSocket);
  const ctx: CarrierLinkContext = {
    agent,
    logger,
    onExit: async () => undefined,
    finishers: new Set(),
    outputWatch: new OutputWatch(),
  };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    links.add(socket);
    socket.once('close', () => links.delete(socket));
    serveConnection(socket, ctx, hypervisor, vmDir).catch((err: unknown) => {
      logger.debug(`pod socket: ${messageOf(err)}`);
      socket.destroy();
    });
  });
  const socketPath = podSocketPath(vmDir);
  // Whatever is at the path is stale: this process holds the lock.
  await listenOwnerOnly(server, socketPath);
  logger.info(`pod process of sandbox ${record.sandboxId} serves ${socketPath}${takeover ? ' (taking over a live VM)' : ''}`);
  const netmon = await watchPodNetns(vmDir, record.sandboxId, options.log ?? {}, logger);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info(`pod process of sandbox ${record.sandboxId} stops: ${why}`);
    server.close();
    netmon?.stop();
    for (const socket of links) socket.destroy();
    agent.close();
    await proxy?.close();
    await rm(socketPath, { force: true });
    await lock.release();
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => void stop(`got ${signal}`));
  await Promise.race([proxy?.closed ?? new Promise<void>(() => undefined), watchVm(record, () => stopping)]);
  if (!stopping && !(await vmIsRunning(record.vm))) {
    // Observed, not guessed: QEMU is gone, and every process in it with it.
    for (const finish of [...ctx.finishers]) finish(lostStatus);
  }
  await stop('the VM is gone');
}

/** Resolves when QEMU is gone (the only way to notice over vsock, a fallback over serial). */
async function watchVm(record: VmFile, stopped: () => boolean): Promise<void> {
  while (!stopped() && (await vmIsRunning(record.vm))) await sleep(1000);
}

/** What serves a command's call: the pod's own agent session, or its QMP. */
function calleeOf(call: PodCall, ctx: CarrierLinkContext, hypervisor: PodHypervisor): object | undefined {
  if (!Array.isArray(call.args)) return undefined;
  if ((podAgentMethods as readonly string[]).includes(call.method)) return ctx.agent;
  if ((podHypervisorMethods as readonly string[]).includes(call.method)) return hypervisor;
  if ((podRelayMethods as readonly string[]).includes(call.method)) return ctx.outputWatch;
  return undefined;
}

async function serveCall(socket: net.Socket, call: PodCall, ctx: CarrierLinkContext, hypervisor: PodHypervisor, vmDir: string): Promise<void> {
  let reply: PodCallReply;
  const callee = calleeOf(call, ctx, hypervisor);
  if (!callee) {
    reply = { type: 'error', message: `the pod process does not call ${JSON.stringify(call.method)}` };
  } else {
    try {
      const method = (callee as Record<string, (...args: unknown[]) => Promise<unknown>>)[call.method];
      reply = { type: 'result', value: (await method!.apply(callee, call.args)) ?? null };
      if (call.method === 'startContainer') await markStarted(vmDir, call.args[0]);
    } catch (err) {
      reply = { type: 'error', message: messageOf(err) };
    }
  }
  socket.end(encodeMessage(reply));
}

/** The agent started the container: recorded here, so a start command killed now leaves a true state. */
async function markStarted(vmDir: string, containerId: unknown): Promise<void> {
  if (typeof containerId !== 'string' || containerId !== path.basename(containerId) || containerId.startsWith('.')) return;
  const marker = startedMarkerPath(vmDir, containerId);
  await mkdir(path.dirname(marker), { recursive: true, mode: 0o700 });
  await writeFile(marker, '');
}

/** A connection's first message says who it is: a carrier attaching (with its fds), or a command's call. */
async function serveConnection(socket: net.Socket, ctx: CarrierLinkContext, hypervisor: PodHypervisor, vmDir: string): Promise<void> {
  const { message, fds, rest, text } = await readFirstMessage(socket);
  if (message?.type === 'attach') return serveCarrier(socket, message, fds, rest, ctx);
  closeFds(fds);
  if (message?.type === 'call') {
    const started = Date.now();
    await serveCall(socket, message, ctx, hypervisor, vmDir);
    ctx.logger.debug(`${message.method} for a command: ${Date.now() - started} ms`);
    return;
  }
  socket.end(encodeMessage({ type: 'error', message: `not a pod socket message: ${JSON.stringify(text.slice(0, 80))}` }));
}

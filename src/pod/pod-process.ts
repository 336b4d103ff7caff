import { closeSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../agent-client/agent-client.js';
import { vmIsRunning } from '../hypervisor/qemu-vm.js';
import { startAgentProxy, type AgentProxy } from '../proxy/agent-proxy.js';
import { readVmFile, type VmFile } from '../runtime/vm-file.js';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { serveCarrier, type CarrierLinkContext } from './carrier-link.js';
import { podSocketPath } from './pod-layout.js';
import { takePodLock } from './pod-lock.js';
import { LineReader, encodeMessage, podAgentMethods, type CarrierMessage, type PodCall, type PodCallReply } from './pod-protocol.js';

export interface PodOptions {
  vmDir: string;
  /** Started with the VM (create): no agent session to take over. */
  fresh: boolean;
  logger: Logger;
  /** How long the agent may take to answer (the VM may still be booting). */
  readyTimeoutMs: number;
}

const firstMessageTimeoutMs = 10_000;

/** The fd under a Node socket, to read the first message with its fds (Node cannot take SCM_RIGHTS). */
function socketFd(socket: net.Socket): number | undefined {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
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
  // Taking over a live VM whose pod process died: the agent must drop the old session.
  const takeover = !options.fresh;
  let proxy: AgentProxy | undefined;
  if (record.vm.agentChannel.kind === 'serial') {
    proxy = await startAgentProxy(record.vm.agentChannel.socket, record.vm.layout.proxySocket, logger, options.readyTimeoutMs, 10_000, { resetPeer: takeover });
  }
  const agent = new AgentClient(record.agentUrl);
  const links = new Set<net.Socket>();
  const ctx: CarrierLinkContext = {
    agent,
    logger,
    onExit: async () => undefined,
  };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    links.add(socket);
    socket.once('close', () => links.delete(socket));
    serveConnection(socket, ctx).catch((err: unknown) => {
      logger.warn(`pod socket: ${messageOf(err)}`);
      socket.destroy();
    });
  });
  const socketPath = podSocketPath(vmDir);
  // Whatever is at the path is stale: this process holds the lock.
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, 0o600);
  logger.info(`pod process of sandbox ${record.sandboxId} serves ${socketPath}${takeover ? ' (taking over a live VM)' : ''}`);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info(`pod process of sandbox ${record.sandboxId} stops: ${why}`);
    server.close();
    for (const socket of links) socket.destroy();
    agent.close();
    await proxy?.close();
    await rm(socketPath, { force: true });
    lock.close();
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => void stop(`got ${signal}`));
  await Promise.race([proxy?.closed ?? new Promise<void>(() => undefined), watchVm(record, () => stopping)]);
  await stop('the VM is gone');
}

/** Resolves when QEMU is gone (the only way to notice over vsock, a fallback over serial). */
async function watchVm(record: VmFile, stopped: () => boolean): Promise<void> {
  while (!stopped() && (await vmIsRunning(record.vm))) await sleep(1000);
}

/** A command's agent call, made with the pod's own agent session. */
async function serveCall(socket: net.Socket, call: PodCall, agent: AgentClient): Promise<void> {
  let reply: PodCallReply;
  if (!(podAgentMethods as readonly string[]).includes(call.method) || !Array.isArray(call.args)) {
    reply = { type: 'error', message: `the pod process does not call ${JSON.stringify(call.method)}` };
  } else {
    try {
      const method = agent[call.method] as (...args: unknown[]) => Promise<unknown>;
      reply = { type: 'result', value: (await method.apply(agent, call.args)) ?? null };
    } catch (err) {
      reply = { type: 'error', message: messageOf(err) };
    }
  }
  socket.end(encodeMessage(reply));
}

/** A connection's first message says who it is: a carrier attaching (with its fds), or a command's call. */
async function serveConnection(socket: net.Socket, ctx: CarrierLinkContext): Promise<void> {
  const fd = socketFd(socket);
  if (fd === undefined) throw new Error('a pod socket connection without an fd');
  const { data, fds } = await loadNativeAddon().receiveMessage(fd, firstMessageTimeoutMs);
  // Only the first line is taken here; the reader keeps what followed it.
  const text = data.toString();
  const nl = text.indexOf('\n');
  const reader = new LineReader();
  reader.hold(text.slice(nl + 1));
  let message: CarrierMessage | PodCall | undefined;
  try {
    message = JSON.parse(text.slice(0, nl)) as CarrierMessage | PodCall;
  } catch {
    message = undefined;
  }
  if (message?.type === 'attach') return serveCarrier(socket, message, fds, reader, ctx);
  if (message?.type === 'call') {
    for (const passed of fds) closeSync(passed);
    return serveCall(socket, message, ctx.agent);
  }
  for (const passed of fds) closeSync(passed);
  socket.end(encodeMessage({ type: 'error', message: message ? `unknown message ${JSON.stringify(message.type)}` : 'a pod socket message that is not JSON' }));
}

import { rm } from 'node:fs/promises';
import net from 'node:net';
import { KataError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { relay } from '../transport/relay.js';
import { YamuxSession } from '../transport/yamux/yamux-session.js';
import type { YamuxStream } from '../transport/yamux/yamux-stream.js';

export interface AgentProxy {
  /** Resolves when the VM's channel is gone (VM stopped) or close() was called. */
  closed: Promise<void>;
  close(): Promise<void>;
}

function connect(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => resolve(socket));
      socket.once('error', (err) => {
        if (Date.now() > deadline) reject(new KataError('VM', `cannot connect to the agent channel ${socketPath}: ${err.message}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Pings until a pong: pings sent while the agent's session resets may go unanswered. */
async function pingUntilAnswered(session: YamuxSession, timeoutMs: number, attemptMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await session.ping(Math.min(attemptMs, Math.max(1, deadline - Date.now())));
    } catch (err) {
      if (Date.now() >= deadline || session.isClosed) throw err;
    }
  }
}

/**
 * The per-sandbox proxy: owns the VM's virtio-serial chardev socket,
 * multiplexes it with yamux, and gives each host client that connects to
 * listenSocket a yamux stream of its own.
 */
export async function startAgentProxy(
  channelSocket: string,
  listenSocket: string,
  logger: Logger,
  readyTimeoutMs = 120_000,
  connectTimeoutMs = 10_000,
  options: {
    resetPeer?: boolean;
    /**
     * A VM restored from a template has its agent up already, so a pong is due at
     * once; when none comes within this many ms, the channel is connected again
     * (seen here in 1 of 6 and 3 of 10 restores: the first connection's bytes
     * never reached the agent, while a new connection was answered in 0.1 s).
     */
    reconnectMs?: number;
  } = {},
): Promise<AgentProxy> {
  const deadline = Date.now() + readyTimeoutMs;
  let channel: net.Socket;
  let session: YamuxSession;
  let rtt: number;
  for (;;) {
    channel = await connect(channelSocket, connectTimeoutMs);
    // Keepalive: a guest that stops answering is noticed (a ping every minute; generous for TCG).
    session = new YamuxSession(channel, { role: 'client', keepaliveMs: 60_000 });
    session.on('error', (err: Error) => logger.warn(`proxy: ${err.message}`));
    // A host process that takes over a live VM's channel (a restarted pod process) tells the
    // agent to drop the previous session: a go-away makes it reopen its port and start afresh.
    if (options.resetPeer) session.goAway();
    // A ping waits in the channel until the agent opens its port, so the pong says the agent is up.
    // Listening only then keeps host clients from connecting into a void during the boot.
    const left = Math.max(1, deadline - Date.now());
    const attemptMs = options.reconnectMs ?? (options.resetPeer ? 500 : left);
    try {
      rtt = await pingUntilAnswered(session, options.reconnectMs ? Math.min(left, options.reconnectMs) : left, attemptMs);
      break;
    } catch (err) {
      channel.destroy();
      if (!options.reconnectMs || Date.now() >= deadline) throw err;
      logger.debug(`proxy: no pong within ${options.reconnectMs} ms; connecting to the agent channel again`);
    }
  }
  logger.debug(`proxy: agent answered a yamux ping (${rtt} ms)`);
  await rm(listenSocket, { force: true });
  const clients = new Set<net.Socket>();
  const server = net.createServer((client) => {
    let stream: YamuxStream;
    try {
      stream = session.open();
    } catch {
      client.destroy();
      return;
    }
    clients.add(client);
    relay(client, stream, () => clients.delete(client));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenSocket, resolve);
  });
  let finish: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (finish = resolve));
  const close = async (): Promise<void> => {
    server.close();
    for (const c of clients) c.destroy();
    session.close();
    channel.destroy();
    await rm(listenSocket, { force: true });
    finish();
  };
  session.once('close', () => void close());
  return { closed, close };
}

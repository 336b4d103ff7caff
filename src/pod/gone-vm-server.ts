import { rm } from 'node:fs/promises';
import net from 'node:net';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { closeFds, readFirstMessage } from './pod-connection.js';
import { encodeMessage } from './pod-protocol.js';
import { listenOwnerOnly } from '../util/unix-socket.js';
import { lostStatus } from './process-relay.js';

/** How long the socket stays after its last connection: carriers retry within a second. */
const idleMs = 3000;

/**
 * A pod process started for a VM that is gone (QEMU died while no pod process
 * ran): it tells every carrier that attaches that its process is lost (exit
 * 255, as Kata reports it) and every command that the VM is gone, then exits
 * once nobody has asked for a while. Carriers end instead of waiting for a pod.
 */
export async function serveGoneVm(socketPath: string, sandboxId: string, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const rearm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(done, idleMs);
  };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    rearm();
    answer(socket, sandboxId).catch((err: unknown) => {
      logger.debug(`pod socket: ${messageOf(err)}`);
      socket.destroy();
    });
  });
  await listenOwnerOnly(server, socketPath);
  logger.info(`the VM of sandbox ${sandboxId} is gone: its processes are reported lost (status ${lostStatus})`);
  rearm();
  await finished;
  server.close();
  await rm(socketPath, { force: true });
}

async function answer(socket: net.Socket, sandboxId: string): Promise<void> {
  const first = await readFirstMessage(socket);
  closeFds(first.fds);
  if (first.message?.type === 'attach') socket.end(encodeMessage({ type: 'exit', status: lostStatus }));
  else socket.end(encodeMessage({ type: 'error', message: `the VM of sandbox ${sandboxId} is gone` }));
}

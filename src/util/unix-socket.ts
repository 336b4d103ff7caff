import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';

/** Whether something accepts connections on a unix socket (a file left by a dead server does not count). */
export function unixSocketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Serves on a unix socket only its owner may connect to; whatever was at the path is stale and goes first. */
export async function listenOwnerOnly(server: net.Server, socketPath: string): Promise<void> {
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, 0o600);
}

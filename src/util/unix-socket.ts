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

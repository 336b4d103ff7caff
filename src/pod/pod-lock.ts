import net from 'node:net';
import { errnoCode } from '../util/errors.js';
import { podLockName } from './pod-layout.js';

/** Takes the pod lock of a VM dir: a listening abstract socket, or undefined when another pod process holds it. */
export function takePodLock(vmDir: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((conn) => conn.destroy());
    server.once('error', (err) => (errnoCode(err) === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen(podLockName(vmDir), () => resolve(server));
  });
}

import { closeSync, rmSync } from 'node:fs';
import { loadNativeAddon } from '../util/native-addon.js';

/**
 * The --console-socket that crun sends a container process's pty master to
 * (SCM_RIGHTS): listened on before crun starts, read once.
 */
export class ConsoleSocket {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  static listen(socketPath: string): ConsoleSocket {
    return new ConsoleSocket(socketPath, loadNativeAddon().listenUnix(socketPath));
  }

  /** The pty master fd that crun sends; rejects after the timeout or close(). */
  async receive(timeoutMs = 30_000): Promise<number> {
    try {
      return await loadNativeAddon().receiveFd(this.fd, timeoutMs);
    } finally {
      this.close();
    }
  }

  /** Gives up: wakes a pending receive() and removes the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadNativeAddon().shutdown(this.fd);
    closeSync(this.fd);
    rmSync(this.path, { force: true });
  }
}

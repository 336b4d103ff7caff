import { EventEmitter } from 'node:events';
import { closeSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { fdDuplex } from '../fd-stream.js';

/** The C addon (native/kata-vsock.c): Node has no AF_VSOCK. */
export interface VsockAddon {
  listen(port: number, cid?: number): number;
  accept(listenFd: number): Promise<number>;
  connect(cid: number, port: number): Promise<number>;
  shutdown(fd: number): void;
}

export const addonFileName = 'kata_vsock.node';

let addon: VsockAddon | undefined;

/** Next to this module (the guest bundle), or in native/build/Release of the package. */
export function loadVsockAddon(): VsockAddon {
  if (addon) return addon;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, addonFileName),
    path.resolve(here, '..', '..', '..', 'native', 'build', 'Release', addonFileName),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`vsock addon ${addonFileName} not found (looked in ${candidates.join(', ')}); run npm run build`);
  addon = createRequire(import.meta.url)(found) as VsockAddon;
  return addon;
}

/** Accepts AF_VSOCK connections and emits each as a Duplex ('connection'). */
export class VsockListener extends EventEmitter {
  private closed = false;

  private constructor(
    private readonly vsock: VsockAddon,
    private readonly fd: number,
  ) {
    super();
    void this.acceptLoop();
  }

  static listen(port: number, cid?: number): VsockListener {
    const vsock = loadVsockAddon();
    return new VsockListener(vsock, vsock.listen(port, cid));
  }

  private async acceptLoop(): Promise<void> {
    while (!this.closed) {
      try {
        const fd = await this.vsock.accept(this.fd);
        this.emit('connection', fdDuplex(fd, () => this.vsock.shutdown(fd)));
      } catch (err) {
        if (!this.closed) this.emit('error', err);
        return;
      }
    }
  }

  close(): void {
    this.closed = true;
    this.vsock.shutdown(this.fd);
    closeSync(this.fd);
  }
}

export async function connectVsock(cid: number, port: number): Promise<Duplex> {
  const vsock = loadVsockAddon();
  const fd = await vsock.connect(cid, port);
  return fdDuplex(fd, () => vsock.shutdown(fd));
}

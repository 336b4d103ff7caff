import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { loadNativeAddon, type NativeAddon } from '../../util/native-addon.js';
import { fdDuplex } from '../fd-stream.js';

/** The host's CID, as every guest sees it (VMADDR_CID_HOST). */
export const hostCid = 2;

/** Accepts AF_VSOCK connections and emits each as a Duplex with its peer's CID ('connection', duplex, cid). */
export class VsockListener extends EventEmitter {
  private closed = false;

  private constructor(
    private readonly vsock: NativeAddon,
    private readonly fd: number,
  ) {
    super();
    void this.acceptLoop();
  }

  static listen(port: number, cid?: number): VsockListener {
    const vsock = loadNativeAddon();
    return new VsockListener(vsock, vsock.listen(port, cid));
  }

  private async acceptLoop(): Promise<void> {
    while (!this.closed) {
      try {
        const fd = await this.vsock.accept(this.fd);
        let peer = -1;
        try {
          peer = this.vsock.peerCid(fd);
        } catch {
          // a peer already gone: the connection ends at its first read
        }
        this.emit('connection', fdDuplex(fd, () => this.vsock.shutdown(fd)), peer);
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
  const vsock = loadNativeAddon();
  const fd = await vsock.connect(cid, port);
  return fdDuplex(fd, () => vsock.shutdown(fd));
}

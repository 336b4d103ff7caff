import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { relay } from '../transport/relay.js';
import { connectVsock } from '../transport/vsock/vsock.js';

/**
 * grpc-js dials unix sockets but not AF_VSOCK: a private unix socket whose
 * every connection is relayed to a new vsock connection to cid:port.
 */
export class VsockBridge {
  readonly socketPath: string;
  private readonly dir: string;
  private readonly server: net.Server;
  private readonly open = new Set<Duplex>();

  constructor(cid: number, port: number) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'kata-ts-vsock-'));
    this.socketPath = path.join(this.dir, 'agent.sock');
    this.server = net.createServer((client) => {
      connectVsock(cid, port).then(
        (vsock) => {
          this.open.add(vsock);
          relay(client, vsock, () => this.open.delete(vsock));
        },
        () => client.destroy(),
      );
    });
    this.server.listen(this.socketPath);
  }

  close(): void {
    this.server.close();
    for (const stream of this.open) stream.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `vsock://cid:port` -> numbers, or undefined for other URLs. */
export function parseVsockUrl(url: string): { cid: number; port: number } | undefined {
  const match = /^vsock:\/\/(\d+):(\d+)$/.exec(url);
  return match ? { cid: Number(match[1]), port: Number(match[2]) } : undefined;
}

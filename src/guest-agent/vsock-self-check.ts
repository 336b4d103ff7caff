import { rmSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { loadAgentProtocol } from '../agent-protocol/load-protos.js';
import { relay } from '../transport/relay.js';
import { connectVsock } from '../transport/vsock/vsock.js';

/**
 * `kata-agent-loader.cjs --vsock-health CID PORT`: dials an agent over AF_VSOCK and
 * prints its Health.Check status. Used inside the guest, through
 * vsock_loopback (CID 1), to test the agent's vsock listener end to end.
 */
export async function vsockHealthCheck(cid: number, port: number): Promise<string> {
  // grpc-js dials unix sockets, not vsock: bridge one through a local socket.
  const bridgePath = `/tmp/kata-vsock-check-${process.pid}.sock`;
  const connections: Duplex[] = [];
  const bridge = net.createServer((client) => {
    connectVsock(cid, port).then(
      (vsock) => {
        connections.push(vsock);
        relay(client, vsock);
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((resolve) => bridge.listen(bridgePath, resolve));
  try {
    const { healthService } = loadAgentProtocol();
    const client = new healthService(`unix://${bridgePath}`, grpc.credentials.createInsecure()) as unknown as {
      Check(req: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply: { status: string }) => void): void;
      close(): void;
    };
    const reply = await new Promise<{ status: string }>((resolve, reject) =>
      client.Check({ service: '' }, { deadline: Date.now() + 30_000 }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    client.close();
    return reply.status;
  } finally {
    connections.forEach((c) => c.destroy());
    bridge.close();
    rmSync(bridgePath, { force: true });
  }
}

import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { loadAgentProtocol, type AgentProtocol } from '../agent-protocol/load-protos.js';
import { hostCid, VsockListener } from '../transport/vsock/vsock.js';
import { vsockPeerAllowed } from './vsock-peers.js';
import { ZombieReaper, zombieChildrenFromProc } from './zombie-reaper.js';
import { loadNativeAddon } from '../util/native-addon.js';
import { acceptAnyAuthority } from '../transport/http2-authority.js';
import { YamuxSession } from '../transport/yamux/yamux-session.js';
import type { YamuxStream } from '../transport/yamux/yamux-stream.js';
import { AgentLog } from './agent-log.js';
import { parseAgentOptions, type AgentOptions } from './agent-options.js';
import { agentServiceHandlers, healthHandlers } from './agent-service.js';
import { Sandbox } from './sandbox.js';
import { loadModule } from './kernel-modules.js';
import { findVirtioPort, openCharDevice } from './serial-channel.js';
import { vsockHealthCheck } from './vsock-self-check.js';

const channelName = 'agent.channel.0';
const agentVsockPort = 1024;

type Injector = ReturnType<grpc.Server['createConnectionInjector']>;

/** Serves every yamux stream the host opens on the serial port; reopens the port when it closes. */
function serveSerial(injector: Injector, options: AgentOptions, log: AgentLog): void {
  const port = findVirtioPort(channelName);
  if (!port) {
    if (options.useVsock) return; // a vsock-only VM has no agent port
    log.error(`no virtio-serial port named ${channelName}; retrying`);
    setTimeout(() => serveSerial(injector, options, log), 500);
    return;
  }
  let channel: Duplex;
  try {
    channel = openCharDevice(port);
  } catch (err) {
    // EBUSY: the previous session's fd is not closed yet (its last read is still pending).
    log.debug(`opening ${port}: ${(err as Error).message}; retrying`);
    setTimeout(() => serveSerial(injector, options, log), 50);
    return;
  }
  const session = new YamuxSession(channel, { role: 'server' });
  session.on('stream', (stream: YamuxStream) => {
    stream.on('error', (err: Error) => log.debug(`stream ${stream.id}: ${err.message}`));
    injector.injectConnection(acceptAnyAuthority(stream));
  });
  session.on('error', (err: Error) => log.error(`yamux: ${err.message}`));
  // A new host process (the pod process started again) announces itself with a go-away:
  // its streams start afresh, so the old session goes and the port is opened anew.
  session.once('go-away', () => {
    log.info('the host started a new session');
    channel.destroy();
  });
  session.once('close', () => {
    channel.destroy();
    setTimeout(() => serveSerial(injector, options, log), 100);
  });
  log.info(`serving on ${port} (${channelName}), uptime ${readFileSync('/proc/uptime', 'utf8').split(' ')[0]}s`);
}

/**
 * agent.use_vsock=true: every AF_VSOCK connection on port 1024 from the host
 * is a gRPC connection, no multiplexer needed. Any other peer (a container
 * through vsock_loopback) is hung up on.
 */
function serveVsock(injector: Injector, log: AgentLog, allowLocal: boolean): void {
  // vsock_loopback (CID 1) lets processes in the guest reach the listener; only in-guest tests need it.
  if (allowLocal) loadModule('vsock_loopback').catch((err: Error) => log.debug(err.message));
  try {
    const listener = VsockListener.listen(agentVsockPort);
    listener.on('connection', (conn: Duplex, peerCid: number) => {
      conn.on('error', (err: Error) => log.debug(`vsock connection: ${err.message}`));
      if (!vsockPeerAllowed(peerCid, allowLocal)) {
        log.info(`refused a vsock connection from CID ${peerCid}: only the host (CID ${hostCid}) reaches the agent`);
        conn.destroy();
        return;
      }
      injector.injectConnection(acceptAnyAuthority(conn));
    });
    listener.on('error', (err: Error) => log.error(`vsock listener: ${err.message}`));
    log.info(`listening on vsock port ${agentVsockPort}`);
  } catch (err) {
    log.error(`cannot listen on vsock port ${agentVsockPort}: ${(err as Error).message}`);
  }
}

let preloadedProtocol: AgentProtocol | undefined;

/**
 * Loads the protos (protobufjs reflection and grpc-js service definitions),
 * which depend on nothing in the VM: the startup snapshot's builder calls it,
 * so that a guest booting from the snapshot starts with them loaded.
 */
export function preloadProtocol(protosDir?: string): void {
  preloadedProtocol ??= loadAgentProtocol(protosDir);
  // protobufjs writes each message's encoder and decoder (new Function) at its first
  // use: one round of every method's server-side (de)serializers does it now.
  for (const service of [preloadedProtocol.agentService.service, preloadedProtocol.healthService.service]) {
    for (const method of Object.values(service)) {
      method.requestDeserialize(method.requestSerialize({}));
      method.responseDeserialize(method.responseSerialize({}));
    }
  }
}

/** The gRPC server with both services: everything the agent loads before it serves. */
function buildServer(options: AgentOptions, log: AgentLog): Injector {
  const protocol = preloadedProtocol ?? loadAgentProtocol();
  const server = new grpc.Server();
  server.addService(protocol.agentService.service, agentServiceHandlers(new Sandbox(), log, options));
  server.addService(protocol.healthService.service, healthHandlers(log));
  return server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
}

/**
 * The agent's entry point. `--warm-up` builds everything and returns without
 * serving (the image build runs it to record V8's code cache); `--vsock-health
 * CID PORT` is the in-guest vsock self-check.
 */
export async function main(args: string[]): Promise<number | undefined> {
  const selfCheck = args.indexOf('--vsock-health');
  if (selfCheck >= 0) {
    const status = await vsockHealthCheck(Number(args[selfCheck + 1]), Number(args[selfCheck + 2]));
    process.stdout.write(`${status}\n`);
    return status === 'SERVING' ? 0 : 1;
  }
  if (args.includes('--warm-up')) {
    buildServer(parseAgentOptions(''), new AgentLog(false));
    return 0;
  }
  const options = parseAgentOptions(readFileSync('/proc/cmdline', 'utf8'));
  const log = new AgentLog(options.debug);
  const injector = buildServer(options, log);
  process.on('uncaughtException', (err) => log.error(`uncaught: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${String(err)}`));
  if (options.useVsock) serveVsock(injector, log, options.vsockAllowLocal);
  // As PID 1 the agent inherits every orphan of the guest: they are reaped here.
  if (process.pid === 1) new ZombieReaper({ zombieChildren: () => zombieChildrenFromProc(), reap: (pid) => loadNativeAddon().reap(pid) }).start();
  // The serial port, when the VM has one, is served too: it costs nothing idle.
  serveSerial(injector, options, log);
  return undefined;
}

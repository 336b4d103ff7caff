import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadAgentProtocol } from '../agent-protocol/load-protos.js';
import { YamuxSession } from '../transport/yamux/yamux-session.js';
import type { YamuxStream } from '../transport/yamux/yamux-stream.js';
import { parseAgentOptions } from './agent-options.js';
import { AgentLog } from './agent-log.js';
import { agentServiceHandlers, healthHandlers } from './agent-service.js';
import { Sandbox } from './sandbox.js';
import type { Duplex } from 'node:stream';
import { VsockListener } from '../transport/vsock/vsock.js';
import { findVirtioPort, openCharDevice } from './serial-channel.js';
import { vsockHealthCheck } from './vsock-self-check.js';

const channelName = 'agent.channel.0';
const agentVsockPort = 1024;

const selfCheck = process.argv.indexOf('--vsock-health');
if (selfCheck > 0) {
  const status = await vsockHealthCheck(Number(process.argv[selfCheck + 1]), Number(process.argv[selfCheck + 2]));
  process.stdout.write(`${status}\n`);
  process.exit(status === 'SERVING' ? 0 : 1);
}

const options = parseAgentOptions(readFileSync('/proc/cmdline', 'utf8'));
const log = new AgentLog(options.debug);
const protocol = loadAgentProtocol();
const sandbox = new Sandbox();

const server = new grpc.Server();
server.addService(protocol.agentService.service, agentServiceHandlers(sandbox, log, options));
server.addService(protocol.healthService.service, healthHandlers(log));
const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());

process.on('uncaughtException', (err) => log.error(`uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${String(err)}`));

/** Serves every yamux stream the host's proxy opens on the serial port; reopens the port when it closes. */
function serveSerial(): void {
  const port = findVirtioPort(channelName);
  if (!port) {
    if (options.useVsock) return; // a vsock-only VM has no agent port
    log.error(`no virtio-serial port named ${channelName}; retrying`);
    setTimeout(serveSerial, 500);
    return;
  }
  const channel = openCharDevice(port);
  const session = new YamuxSession(channel, { role: 'server' });
  session.on('stream', (stream: YamuxStream) => {
    stream.on('error', (err: Error) => log.debug(`stream ${stream.id}: ${err.message}`));
    injector.injectConnection(stream);
  });
  session.on('error', (err: Error) => log.error(`yamux: ${err.message}`));
  session.once('close', () => {
    channel.destroy();
    setTimeout(serveSerial, 100);
  });
  log.info(`serving on ${port} (${channelName}), uptime ${readFileSync('/proc/uptime', 'utf8').split(' ')[0]}s`);
}

/** agent.use_vsock=true: every AF_VSOCK connection on port 1024 is a gRPC connection, no multiplexer needed. */
function serveVsock(): void {
  try {
    const listener = VsockListener.listen(agentVsockPort);
    listener.on('connection', (conn: Duplex) => {
      conn.on('error', (err: Error) => log.debug(`vsock connection: ${err.message}`));
      injector.injectConnection(conn);
    });
    listener.on('error', (err: Error) => log.error(`vsock listener: ${err.message}`));
    log.info(`listening on vsock port ${agentVsockPort}`);
  } catch (err) {
    log.error(`cannot listen on vsock port ${agentVsockPort}: ${(err as Error).message}`);
  }
}

if (options.useVsock) serveVsock();
// The serial port, when the VM has one, is served too: it costs nothing idle.
serveSerial();

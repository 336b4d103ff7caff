import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadAgentProtocol } from '../agent-protocol/load-protos.js';
import { YamuxSession } from '../transport/yamux/yamux-session.js';
import type { YamuxStream } from '../transport/yamux/yamux-stream.js';
import { parseAgentOptions } from './agent-options.js';
import { AgentLog } from './agent-log.js';
import { agentServiceHandlers, healthHandlers } from './agent-service.js';
import { Sandbox } from './sandbox.js';
import { findVirtioPort, openCharDevice } from './serial-channel.js';

const channelName = 'agent.channel.0';
const options = parseAgentOptions(readFileSync('/proc/cmdline', 'utf8'));
const log = new AgentLog(options.debug);
const protocol = loadAgentProtocol();
const sandbox = new Sandbox();

const server = new grpc.Server();
server.addService(protocol.agentService.service, agentServiceHandlers(sandbox, log));
server.addService(protocol.healthService.service, healthHandlers(log));
const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());

process.on('uncaughtException', (err) => log.error(`uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${String(err)}`));

/** Serves every yamux stream the host's proxy opens on the serial port; reopens the port when it closes. */
function serveSerial(): void {
  const port = findVirtioPort(channelName);
  if (!port) {
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

if (options.useVsock) {
  log.error('agent.use_vsock=true: the vsock listener is not available in this build; serving the serial port');
}
serveSerial();

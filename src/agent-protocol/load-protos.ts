import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The protos sit in protos/ next to this module: src/agent-protocol in
 * development, dist/agent-protocol when built, next to the guest agent bundle
 * inside the guest.
 */
export const defaultProtosDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'protos');

/** Field names stay as written in the protos (container_id, OCI, PID...), as Kata's wire format. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface AgentProtocol {
  agentService: grpc.ServiceClientConstructor;
  healthService: grpc.ServiceClientConstructor;
}

/** The protos compiled to JSON at build time: parsing .proto text is slow under TCG. */
export const compiledProtosFile = 'agent-protocol.json';

function loadDefinition(protosDir: string): protoLoader.PackageDefinition {
  const compiled = path.join(protosDir, compiledProtosFile);
  if (existsSync(compiled)) return protoLoader.fromJSON(JSON.parse(readFileSync(compiled, 'utf8')) as Record<string, unknown>, protoLoaderOptions);
  return protoLoader.loadSync(['agent.proto', 'health.proto'], { ...protoLoaderOptions, includeDirs: [protosDir] });
}

export function loadAgentProtocol(protosDir = defaultProtosDir): AgentProtocol {
  const definition = loadDefinition(protosDir);
  const root = grpc.loadPackageDefinition(definition) as unknown as { grpc: Record<string, grpc.ServiceClientConstructor> };
  const agentService = root.grpc.AgentService;
  const healthService = root.grpc.Health;
  if (!agentService || !healthService) throw new Error(`protos in ${protosDir} lack grpc.AgentService or grpc.Health`);
  return { agentService, healthService };
}

import * as grpc from '@grpc/grpc-js';

/** An error that becomes a gRPC status for the caller. */
export class AgentError extends Error {
  constructor(
    readonly status: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string): AgentError => new AgentError(grpc.status.NOT_FOUND, `${what} not found`);
export const invalid = (why: string): AgentError => new AgentError(grpc.status.INVALID_ARGUMENT, why);
export const failed = (why: string): AgentError => new AgentError(grpc.status.INTERNAL, why);

/** Same id rule as runc and the host side: nothing that could escape a directory. */
export function checkId(id: string, what: string): string {
  if (!/^[\w+\-.]+$/.test(id) || id === '.' || id === '..') throw invalid(`invalid ${what} ${JSON.stringify(id)}`);
  return id;
}

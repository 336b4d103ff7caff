import { StatusCode } from './ttrpc-messages.js';

/** A call's failure as ttrpc carries it: a gRPC status code and a message. */
export class TtrpcError extends Error {
  constructor(
    readonly code: StatusCode | number,
    message: string,
  ) {
    super(message);
    this.name = 'TtrpcError';
  }
}

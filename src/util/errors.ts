/** Error codes shared by every layer; cli maps them to messages and exit codes. */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_PARSE'
  | 'CONFIG_INVALID'
  | 'INVALID_ID'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'LOCKED'
  | 'STATE_CORRUPT'
  | 'HOST_UNSUPPORTED'
  | 'IO'
  | 'QMP'
  | 'TIMEOUT'
  | 'VM'
  | 'BAD_BUNDLE'
  | 'NOT_RUNNING'
  | 'HOOK'
  | 'NETWORK'
  | 'UNSUPPORTED';

/** The one base class every layer below cli throws. */
export class KataError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KataError';
    this.code = code;
  }
}

export function isKataError(err: unknown, code?: ErrorCode): err is KataError {
  return err instanceof KataError && (code === undefined || err.code === code);
}

/** Node's errno-style errors carry a string code; this narrows them without `any`. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

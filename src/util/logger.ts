import { appendFileSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LoggerOptions {
  /** File the caller asked for with --log; entries are appended, never to stdout. */
  file?: string;
  format: LogFormat;
  debug: boolean;
  /** Where warnings and errors go when no log file takes them (stderr in the CLI). */
  stderr?: (line: string) => void;
  /** Takes every entry, formatted, instead of a file (the containerd shim's log FIFO). */
  sink?: (line: string) => void;
}

/**
 * A small structured logger. Lower layers receive it as a parameter; nothing
 * below cli writes to stdout. JSON entries use runc's (logrus) keys, so callers
 * such as containerd can lift "msg" out of the log file on failure.
 */
export class Logger {
  constructor(
    private readonly options: LoggerOptions,
    private readonly fields: Record<string, unknown> = {},
  ) {}

  child(fields: Record<string, unknown>): Logger {
    return new Logger(this.options, { ...this.fields, ...fields });
  }

  /** The same logger without its stderr fallback: for messages already shown elsewhere. */
  fileOnly(): Logger {
    return new Logger({ ...this.options, stderr: undefined }, this.fields);
  }

  get debugEnabled(): boolean {
    return this.options.debug;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }

  private write(level: LogLevel, msg: string, extra?: Record<string, unknown>): void {
    const minimum: LogLevel = this.options.debug ? 'debug' : 'info';
    if (rank[level] < rank[minimum]) return;
    const entry = { ...this.fields, ...extra };
    if (this.options.sink) {
      this.options.sink(this.format(level, msg, entry) + '\n');
    } else if (this.options.file) {
      try {
        appendFileSync(this.options.file, this.format(level, msg, entry) + '\n');
      } catch {
        // A log file we cannot write must not turn a good command into a failure.
      }
    } else if (rank[level] >= rank.warn || this.options.debug) {
      this.options.stderr?.(`kata-ts: ${level === 'error' ? '' : level === 'warn' ? 'warning: ' : level + ': '}${msg}`);
    }
  }

  private format(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
    const time = new Date().toISOString();
    if (this.options.format === 'json') {
      return JSON.stringify({ level: level === 'warn' ? 'warning' : level, msg, time, ...fields });
    }
    const pairs = Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    return [`time="${time}"`, `level=${level}`, `msg=${JSON.stringify(msg)}`, ...pairs].join(' ');
  }
}

/** A logger that drops everything: the default for library calls and unit tests. */
export const silentLogger = new Logger({ format: 'text', debug: false });

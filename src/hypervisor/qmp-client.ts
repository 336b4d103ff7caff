import { EventEmitter } from 'node:events';
import net from 'node:net';
import { KataError, messageOf } from '../util/errors.js';

/** A QMP error reply: QEMU's error class and description. */
export class QmpError extends KataError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super('QMP', `QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  id: string;
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

type QmpMessage =
  | { QMP: Record<string, unknown> }
  | { return: unknown; id?: string }
  | { error: { class: string; desc: string }; id?: string }
  | QmpEvent;

/**
 * A QMP client over a unix socket. Commands go out one at a time (QEMU
 * answers in order anyway) and replies are matched by id; events go to
 * listeners and to waitForEvent.
 */
export class QmpClient extends EventEmitter {
  private buffer = '';
  private readonly queue: Array<() => void> = [];
  private busy = false;
  private pending: Pending | undefined;
  private nextId = 1;
  private closed = false;
  greeting: Record<string, unknown> | undefined;

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClose(new KataError('QMP', 'QMP connection closed')));
    socket.on('error', (err) => this.onClose(new KataError('QMP', `QMP connection failed: ${err.message}`, { cause: err })));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new KataError('TIMEOUT', `QMP socket ${socketPath} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new KataError('QMP', `cannot connect to QMP socket ${socketPath}: ${err.message}`, { cause: err }));
      });
    });
    const client = new QmpClient(socket);
    try {
      client.greeting = await client.waitGreeting(timeoutMs);
      await client.execute('qmp_capabilities', undefined, timeoutMs);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private waitGreeting(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new KataError('TIMEOUT', `no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
      this.once('greeting', (g: Record<string, unknown>) => {
        clearTimeout(timer);
        resolve(g);
      });
      this.once('closed', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Runs one command; resolves with its `return` value or rejects with QmpError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const send = (): void => {
        if (this.closed) {
          this.busy = false;
          reject(new KataError('QMP', `QMP ${command}: connection closed`));
          this.drain();
          return;
        }
        const id = `kata-ts-${this.nextId++}`;
        const timer = setTimeout(() => {
          this.pending = undefined;
          reject(new KataError('TIMEOUT', `QMP ${command} got no reply within ${timeoutMs} ms`));
          this.busy = false;
          this.drain();
        }, timeoutMs);
        this.pending = { id, command, resolve: resolve as (v: unknown) => void, reject, timer };
        this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
      };
      this.queue.push(send);
      this.drain();
    });
  }

  private drain(): void {
    if (this.busy) return;
    const next = this.queue.shift();
    if (!next) return;
    this.busy = true;
    next();
  }

  /** Resolves with the first event named `name` that passes `match`, registered before the trigger is sent. */
  waitForEvent(name: string, match: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (event: QmpEvent): void => {
        if (event.event !== name || !match(event)) return;
        cleanup();
        resolve(event);
      };
      const onClosed = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new KataError('TIMEOUT', `QMP event ${name} did not come within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('closed', onClosed);
      };
      this.on('event', onEvent);
      this.on('closed', onClosed);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: QmpMessage;
    try {
      message = JSON.parse(line) as QmpMessage;
    } catch (err) {
      this.emit('protocol-error', new KataError('QMP', `unparsable QMP message: ${messageOf(err)}`));
      return;
    }
    if ('QMP' in message) {
      this.emit('greeting', message.QMP);
    } else if ('event' in message) {
      this.emit('event', message);
    } else if ('return' in message || 'error' in message) {
      const pending = this.pending;
      if (!pending || (message.id !== undefined && message.id !== pending.id)) return; // a late reply to a timed-out command
      this.pending = undefined;
      clearTimeout(pending.timer);
      if ('error' in message) pending.reject(new QmpError(pending.command, message.error.class, message.error.desc));
      else pending.resolve(message.return);
      this.busy = false;
      this.drain();
    }
  }

  private onClose(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(new KataError('QMP', `QMP ${pending.command}: ${err.message}`, { cause: err }));
    }
    this.busy = false;
    this.emit('closed', err);
    // Commands queued behind run now and fail fast on the closed flag.
    while (this.queue.length > 0) this.queue.shift()?.();
  }
}

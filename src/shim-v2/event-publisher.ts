import { TtrpcClient } from '../ttrpc/ttrpc-client.js';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { encodeMessage, eventsService, packAny, timestampOf } from './task-messages.js';

/** ttrpc metadata that names the containerd namespace of a call. */
const namespaceHeader = 'containerd-namespace-ttrpc';

/**
 * Publishes task events to containerd over its ttrpc socket (TTRPC_ADDRESS):
 * Events.Forward with an envelope, as containerd's own shims do. In order,
 * one at a time; an event containerd cannot take is logged, never fatal.
 */
export class EventPublisher {
  private client: Promise<TtrpcClient> | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ttrpcAddress: string,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {}

  publish(topic: string, eventType: string, event: object): void {
    if (!this.ttrpcAddress) return;
    const envelope = { timestamp: timestampOf(new Date()), namespace: this.namespace, topic, event: packAny(`containerd.events.${eventType}`, event) };
    this.queue = this.queue.then(() => this.forward(topic, envelope));
  }

  /** Resolves once every event so far was sent (or given up). */
  flush(): Promise<void> {
    return this.queue;
  }

  private async forward(topic: string, envelope: object): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        this.client ??= TtrpcClient.connect(this.ttrpcAddress.replace(/^unix:\/\//, ''));
        const client = await this.client;
        await client.call(eventsService, 'Forward', encodeMessage('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope }), {
          metadata: [{ key: namespaceHeader, value: this.namespace }],
          timeoutMs: 5000,
        });
        return;
      } catch (err) {
        this.client?.then((c) => c.close(), () => undefined);
        this.client = undefined;
        if (attempt === 3) this.logger.warn(`publishing ${topic}: ${messageOf(err)}`);
      }
    }
  }

  close(): void {
    this.client?.then((c) => c.close(), () => undefined);
  }
}

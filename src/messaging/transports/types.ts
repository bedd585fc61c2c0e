/**
 * The transport port: hands one outbox row to the message broker. Throwing means "not delivered"
 * (the relay retries); returning means delivered, with an optional transport receipt.
 */
import type { OutboxRow } from '../outbox.js';

export interface PublishResult {
  /** Transport receipt stored on the outbox row, e.g. the Event Platform's `MessageId`. */
  receipt?: string;
}

export interface Transport {
  readonly kind: string;
  publish(row: OutboxRow): Promise<PublishResult>;
  /** Releases connections (called once when the relay stops). */
  close?(): Promise<void>;
}

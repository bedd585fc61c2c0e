/**
 * The transport port: hands one outbox row to the message broker. Throwing means "not delivered"
 * (the relay retries); returning means delivered, with an optional transport receipt.
 */
import type { CompanionWrite } from '../../store/db.js';
import type { OutboxRow } from '../outbox.js';

export interface PublishResult {
  /** Transport receipt stored on the outbox row, e.g. the Event Platform's `MessageId`. */
  receipt?: string;
}

/** Outcome of one row of a batch publish. */
export type BatchPublishOutcome = ({ ok: true } & PublishResult) | { ok: false; error: unknown };

export interface Transport {
  readonly kind: string;
  publish(row: OutboxRow): Promise<PublishResult>;
  /**
   * Optional: publishes several rows at once (they have different ordering keys) and reports one
   * outcome per row, in the same order. When present, the relay uses it instead of `publish`.
   */
  publishBatch?(rows: OutboxRow[]): Promise<BatchPublishOutcome[]>;
  /**
   * Optional: for a transport whose delivery is a write to the app's own database (the local hub), that write for a
   * round of rows. The relay then carries it in the statement that records the round as delivered (receipt: the
   * message id): both commit together or not at all. When present, the relay uses it instead of `publishBatch`.
   */
  deliveryWrite?(rows: OutboxRow[]): CompanionWrite;
  /** Optional: opens connections in the background (called once when the relay starts). */
  start?(): void;
  /** Optional: whether the transport is currently connected to its broker (readiness). */
  isConnected?(): boolean;
  /**
   * Optional: channels the broker currently cannot route (channel → reason), e.g. RabbitMQ with no queue bound to
   * the channel's routing key. Payments go on and the messages wait in the outbox; /ready names them as degraded.
   */
  degradedChannels?(): Record<string, string>;
  /** Releases connections (called once when the relay stops). */
  close?(): Promise<void>;
}

/**
 * A delivery failure the transport already reports itself, rate-limited (e.g. one log line per unroutable channel
 * per minute): the relay records and retries it like any failure but does not log it once per message.
 */
export class QuietDeliveryError extends Error {
  override name = 'QuietDeliveryError';
}

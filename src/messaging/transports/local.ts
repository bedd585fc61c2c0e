/**
 * `local` transport (messages.md 9.2): delivering a row means inserting it into the embedded Event
 * Platform's hub (same database), addressed to the consumer named by the row's tenant identifier.
 */
import type { CompanionWrite, Queryable } from '../../store/db.js';
import { hubInsert, hubInsertBatch, hubInsertBatchWrite, type HubBatchEntry } from '../hub.js';
import type { OutboxRow } from '../outbox.js';
import type { BatchPublishOutcome, PublishResult, Transport } from './types.js';

export class LocalTransport implements Transport {
  readonly kind = 'local';
  constructor(private readonly db: Queryable) {}

  async publish(row: OutboxRow): Promise<PublishResult> {
    // Idempotent on (channel, message id); a re-published row that was already acknowledged becomes available again.
    const r = await hubInsert(
      this.db,
      {
        messageId: row.id,
        channel: row.channel,
        consumerId: row.tenant_identifier,
        body: JSON.stringify(row.payload),
        attributes: { ...(row.attributes as unknown as Record<string, string>) },
      },
      { redeliver: true },
    );
    return { receipt: r.messageId };
  }

  /** The whole round in one statement; it either stores every row or none (then every row failed). */
  async publishBatch(rows: OutboxRow[]): Promise<BatchPublishOutcome[]> {
    if (rows.length === 0) return [];
    await hubInsertBatch(this.db, rows.map(hubEntry));
    return rows.map((row) => ({ ok: true as const, receipt: row.id }));
  }

  /** The round's hub insert, for the relay to carry in the statement that records the round as delivered. */
  deliveryWrite(rows: OutboxRow[]): CompanionWrite {
    return hubInsertBatchWrite(rows.map(hubEntry));
  }
}

const hubEntry = (row: OutboxRow): HubBatchEntry => ({
  messageId: row.id,
  channel: row.channel,
  consumerId: row.tenant_identifier,
  body: JSON.stringify(row.payload),
  attributes: row.attributes,
});

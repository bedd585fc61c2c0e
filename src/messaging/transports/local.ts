/**
 * `local` transport (messages.md 9.2): delivering a row means inserting it into the embedded Event
 * Platform's hub (same database), addressed to the consumer named by the row's tenant identifier.
 */
import type { Queryable } from '../../store/db.js';
import { hubInsert } from '../hub.js';
import type { OutboxRow } from '../outbox.js';
import type { BatchPublishOutcome, PublishResult, Transport } from './types.js';

/**
 * A relay round in one statement: inserts every row (idempotent on (channel, message id)) and makes a
 * row that was already stored and acknowledged available again (re-publication), as `hubInsert` with
 * `redeliver` does for one row. The UPDATE sees the table as it was before the statement, so it never
 * touches the rows this statement inserts.
 */
const BATCH_SQL = `WITH v AS (
    SELECT e->>'messageId' AS message_id, e->>'channel' AS channel, e->>'consumerId' AS consumer_id, e->>'body' AS body,
      e->'attributes' AS attributes, ord
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, ord)),
  ins AS (
    INSERT INTO hub_messages (message_id, channel, consumer_id, body, attributes)
    SELECT message_id, channel, consumer_id, body, attributes FROM v ORDER BY ord
    ON CONFLICT (channel, message_id) DO NOTHING
    RETURNING 1),
  redeliver AS (
    UPDATE hub_messages h SET acked_at = NULL, leased_until = NULL
    FROM v WHERE h.channel = v.channel AND h.message_id = v.message_id AND h.acked_at IS NOT NULL
    RETURNING 1)
  SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM redeliver) AS redelivered`;

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
    const entries = rows.map((row) => ({
      messageId: row.id,
      channel: row.channel,
      consumerId: row.tenant_identifier,
      body: JSON.stringify(row.payload),
      attributes: row.attributes,
    }));
    await this.db.query(BATCH_SQL, [JSON.stringify(entries)]);
    return rows.map((row) => ({ ok: true as const, receipt: row.id }));
  }
}

/**
 * The embedded Event Platform's message store (`hub_messages`, messages.md 9.2): messages addressed to a
 * consumer on a channel, leased on receive, acknowledged by id. The repository of the `hub_messages` table.
 */
import { randomUUID } from 'node:crypto';
import { runCompanionWrite, type CompanionWrite, type Queryable } from './db.js';

/** Lease of a received message before it becomes available again. */
export const HUB_LEASE_SECONDS = 30;
export const HUB_ACKED_RETENTION_DAYS = 7;
export const HUB_UNACKED_RETENTION_DAYS = 14;

export interface HubInsert {
  /** Message id; a random UUID when absent. */
  messageId?: string;
  channel: string;
  consumerId: string;
  /** The payload as a JSON string. */
  body: string;
  attributes: Record<string, string>;
}

export interface HubMessage {
  MessageId: string;
  MessageBody: string;
  MessageAttributes: Record<string, string>;
}

/**
 * Stores a message. An id already stored on the channel stores nothing new (`duplicate: true`).
 * With `redeliver`, a duplicate that was already acknowledged becomes available again (outbox
 * re-publication must reach the consumer once more).
 */
export async function hubInsert(db: Queryable, m: HubInsert, opts: { redeliver?: boolean } = {}): Promise<{ messageId: string; duplicate: boolean }> {
  const messageId = m.messageId ?? randomUUID();
  const r = await db.query<{ seq: number }>(
    `INSERT INTO hub_messages (message_id, channel, consumer_id, body, attributes) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (channel, message_id) DO NOTHING RETURNING seq`,
    [messageId, m.channel, m.consumerId, m.body, JSON.stringify(m.attributes)],
  );
  if (r.rows.length > 0) return { messageId, duplicate: false };
  if (opts.redeliver) {
    await db.query(
      `UPDATE hub_messages SET acked_at = NULL, leased_until = NULL WHERE channel = $1 AND message_id = $2 AND acked_at IS NOT NULL`,
      [m.channel, messageId],
    );
  }
  return { messageId, duplicate: true };
}

/** The oldest available messages of a consumer, leased for HUB_LEASE_SECONDS. */
export async function hubReceive(db: Queryable, channel: string, consumerId: string, limit: number): Promise<HubMessage[]> {
  const r = await db.query<{ seq: number; message_id: string; body: string; attributes: Record<string, string> }>(
    `UPDATE hub_messages SET leased_until = now() + make_interval(secs => $4)
     WHERE seq IN (
       SELECT seq FROM hub_messages
       WHERE channel = $1 AND consumer_id = $2 AND acked_at IS NULL AND (leased_until IS NULL OR leased_until <= now())
       ORDER BY seq LIMIT $3
       FOR UPDATE SKIP LOCKED)
     RETURNING seq, message_id, body, attributes`,
    [channel, consumerId, limit, HUB_LEASE_SECONDS],
  );
  return r.rows
    .sort((a, b) => a.seq - b.seq)
    .map((row) => ({ MessageId: row.message_id, MessageBody: row.body, MessageAttributes: row.attributes ?? {} }));
}

/** Acknowledges messages; unknown, already acknowledged or foreign ids are ignored. Returns how many were acknowledged. */
export async function hubAck(db: Queryable, channel: string, consumerId: string, messageIds: string[]): Promise<number> {
  if (messageIds.length === 0) return 0;
  const r = await db.query(
    `UPDATE hub_messages SET acked_at = now(), leased_until = NULL
     WHERE channel = $1 AND consumer_id = $2 AND message_id = ANY($3::text[]) AND acked_at IS NULL`,
    [channel, consumerId, messageIds],
  );
  return r.rowCount;
}

/** Retention (messages.md 9.2): acknowledged messages 7 days, unacknowledged 14 days. */
export async function hubHousekeeping(db: Queryable): Promise<{ acked: number; unacked: number }> {
  const acked = await db.query(`DELETE FROM hub_messages WHERE acked_at IS NOT NULL AND acked_at < now() - make_interval(days => $1)`, [HUB_ACKED_RETENTION_DAYS]);
  const unacked = await db.query(`DELETE FROM hub_messages WHERE acked_at IS NULL AND created_at < now() - make_interval(days => $1)`, [HUB_UNACKED_RETENTION_DAYS]);
  return { acked: acked.rowCount, unacked: unacked.rowCount };
}

/** One row of a relay round for `hubInsertBatch`. */
export interface HubBatchEntry {
  messageId: string;
  channel: string;
  consumerId: string;
  /** The payload as a JSON string. */
  body: string;
  attributes: unknown;
}

/**
 * A relay round in one statement: inserts every row (idempotent on (channel, message id)) and makes a
 * row that was already stored and acknowledged available again (re-publication), as `hubInsert` with
 * `redeliver` does for one row. The conflict arbiter (the unique index) finds the stored row: no join with
 * the whole table (a join here was planned as a sequential scan of `hub_messages`, 3.5 ms per round at only
 * 719 rows, growing with the table). A message twice in one round is stored once (DO UPDATE may not touch a
 * row twice in one statement).
 */
const batchSql = (param: string): string => `INSERT INTO hub_messages (message_id, channel, consumer_id, body, attributes)
  SELECT message_id, channel, consumer_id, body, attributes FROM (
    SELECT DISTINCT ON (e->>'channel', e->>'messageId') e->>'messageId' AS message_id, e->>'channel' AS channel,
      e->>'consumerId' AS consumer_id, e->>'body' AS body, e->'attributes' AS attributes, ord
    FROM jsonb_array_elements(${param}::jsonb) WITH ORDINALITY AS t(e, ord)
    ORDER BY e->>'channel', e->>'messageId', ord) v
  ORDER BY ord
  ON CONFLICT (channel, message_id) DO UPDATE SET acked_at = NULL, leased_until = NULL
    WHERE hub_messages.acked_at IS NOT NULL`;

/** Stores a whole relay round in one statement, in the given order; it either stores every row or none. */
export async function hubInsertBatch(db: Queryable, entries: HubBatchEntry[]): Promise<void> {
  await runCompanionWrite(db, hubInsertBatchWrite(entries));
}

/** `hubInsertBatch` as a write carried by another statement (the relay's record of the round as delivered). */
export function hubInsertBatchWrite(entries: HubBatchEntry[]): CompanionWrite {
  return { cte: (n) => `hub_insert AS (${batchSql(`$${n}`)})`, params: [JSON.stringify(entries)] };
}

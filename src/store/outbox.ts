/**
 * Repository of the `outbox` table (messages.md 7): writing messages with the per-tenant clock, re-queueing,
 * the relay's lease/claim and outcome records, housekeeping and the figures for /metrics. Every function runs on
 * the handle it is given (the caller's transaction, or an autocommit statement on the pool), as before.
 */
import type { OutboxStatus } from '../domain/processing-status.js';
import type { Channel, MessageAttributes } from '../messaging/outbox.js';
import { unplannedArray, type CompanionWrite, type Queryable } from './db.js';

/** A claimed outbox row: what a transport publishes (the columns the claim returns). */
export interface OutboxRow {
  id: string;
  seq: number;
  tenant_identifier: string;
  channel: Channel;
  message_name: string;
  ordering_key: string;
  attributes: MessageAttributes;
  payload: Record<string, unknown>;
  message_timestamp: string;
  /** Failed attempts so far (the relay's backoff). */
  attempts: number;
}

export interface OutboxInsert {
  id: string;
  tenantIdentifier: string;
  channel: Channel;
  messageName: string;
  /** The full ordering key (tenant included). */
  orderingKey: string;
  /** Every attribute but `timestamp`, which the statement sets. */
  attributes: Omit<MessageAttributes, 'timestamp'>;
  payload: Record<string, unknown>;
}

/**
 * One round trip for all messages of a transaction: the message clock advances only for messages whose id is not
 * stored yet (strictly increasing: the clock, or the previous value plus 1 µs, messages.md 2.3; one clock for all
 * tenants, `oacp_message_clock` in migrations/012), and the rows are inserted in the given order with those timestamps
 * (also in their attributes) and `seq` values taken with them. A message already stored (the same business event)
 * changes nothing. The clock's lock is held only while the values are taken, not until commit: concurrent writers of
 * one tenant commit together. Call it holding the lock of the aggregate the messages announce (payment, tenant,
 * merchant), so that one ordering key's timestamps follow its commit order.
 *
 * The check for stored ids is a subquery per message (`OFFSET 0` keeps PostgreSQL from turning it into a join): as a
 * join it was planned as a hash anti-join over a sequential scan of the whole `outbox` whenever the table's statistics
 * were small or stale (every payment scanned the outbox of a new installation, README "Benchmark").
 *
 * `outboxInsertCtes` gives these as common table expressions to join to another write (a payment and the message
 * announcing it in one statement): `tenantParam` names the tenant's parameter, the six arrays of `outboxInsertParams`
 * start at `firstArrayParam`, and `gate` (SQL) must hold for anything to be written. `withOwner`: a seventh array names
 * each message's owner (the payment a batched write announces), `i.owner` in `gate`, so each message is written only
 * if its own payment was.
 */
export function outboxInsertCtes(tenantParam: string, firstArrayParam: number, gate?: string, withOwner = false): string {
  const a = (i: number): string => unplannedArray(`$${firstArrayParam + i}::text[]`);
  return `outbox_input AS (
    SELECT * FROM unnest(${a(0)}, ${a(1)}, ${a(2)}, ${a(3)}, ${a(4)}, ${a(5)}${withOwner ? `, ${a(6)}` : ''})
      WITH ORDINALITY AS x(id, channel, message_name, ordering_key, attributes, payload, ${withOwner ? 'owner, ' : ''}n)),
  outbox_fresh AS (
    SELECT i.*, row_number() OVER (ORDER BY i.n) AS k FROM outbox_input i
    WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = i.id OFFSET 0)${gate ? ` AND ${gate}` : ''}),
  outbox_clock AS (
    SELECT c.k, c.seq, c.ts FROM (SELECT count(*) AS n FROM outbox_fresh HAVING count(*) > 0) x CROSS JOIN LATERAL oacp_message_clock(x.n) c),
  outbox_written AS (
    INSERT INTO outbox (id, seq, tenant_identifier, channel, message_name, ordering_key, attributes, payload, message_timestamp)
    SELECT f.id, c.seq, ${tenantParam}, f.channel, f.message_name, f.ordering_key, f.attributes::jsonb || jsonb_build_object('timestamp', c.ts), f.payload::jsonb, c.ts
    FROM outbox_fresh f JOIN outbox_clock c ON c.k = f.k
    ORDER BY f.k
    ON CONFLICT (id) DO NOTHING)`;
}

/** The six array parameters of `outboxInsertCtes`, in order. */
export function outboxInsertParams(ms: readonly OutboxInsert[]): unknown[] {
  return [
    ms.map((m) => m.id),
    ms.map((m) => m.channel),
    ms.map((m) => m.messageName),
    ms.map((m) => m.orderingKey),
    ms.map((m) => JSON.stringify(m.attributes)),
    ms.map((m) => JSON.stringify(m.payload)),
  ];
}

const ENQUEUE_SQL = `WITH ${outboxInsertCtes('$1', 2)} SELECT 1`;

/** Inserts messages of one tenant within the caller's transaction, in the given order (see ENQUEUE_SQL). */
export async function insertOutboxMessages(tx: Queryable, tenantIdentifier: string, ms: readonly OutboxInsert[]): Promise<void> {
  if (ms.length === 0) return;
  await tx.query(ENQUEUE_SQL, [tenantIdentifier, ...outboxInsertParams(ms)]);
}

/** Re-publication (messages.md 4.3): the stored row goes back to pending with its id, payload and timestamp. */
export async function requeueOutboxMessage(tx: Queryable, id: string): Promise<boolean> {
  const r = await tx.query(
    `UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), first_failed_at = NULL, last_error = NULL, lease_until = NULL
     WHERE id = $1`,
    [id],
  );
  return r.rowCount > 0;
}

/** What a transport needs of a claimed row, and nothing else (no timestamps to parse into dates per row). */
const ROW_COLUMNS = 'id, seq, tenant_identifier, channel, message_name, ordering_key, attributes, payload, message_timestamp, attempts';

/** The claim's statement ($1 batch size, $2 lease in ms). */
export const CLAIM_SQL = `UPDATE outbox SET lease_until = now() + make_interval(secs => $2::double precision / 1000)
     WHERE id IN (
       SELECT c.id FROM outbox c
       WHERE c.state = 'pending' AND c.next_attempt_at <= now()
         AND (c.lease_until IS NULL OR c.lease_until <= now())
         AND NOT EXISTS (
           SELECT 1 FROM outbox e WHERE e.ordering_key = c.ordering_key AND e.seq < c.seq AND e.state <> 'delivered' AND e.discarded_at IS NULL)
       ORDER BY c.next_attempt_at, c.seq
       LIMIT $1
       FOR UPDATE SKIP LOCKED)
     RETURNING ${ROW_COLUMNS}`;

/**
 * Claims the due rows with a lease in one autocommit statement (FOR UPDATE SKIP LOCKED): pending, due, not leased,
 * and no earlier undelivered, undiscarded row on their ordering key. Longest due first, in the order of the partial
 * index `outbox_due_idx (next_attempt_at, seq) WHERE state = 'pending'`, so the scan never walks the delivered rows
 * kept for 7 days (ordered by `seq` alone, a backlog's claim walked them all: 290 ms instead of 6 ms per claim of
 * 500 with 320,000 delivered rows). Order within an ordering key is the NOT EXISTS's; returned in `seq` order.
 */
export async function claimOutboxRows(db: Queryable, batchSize: number, leaseMs: number): Promise<OutboxRow[]> {
  const r = await db.query<OutboxRow>(CLAIM_SQL, [batchSize, leaseMs]);
  return r.rows.sort((a, b) => a.seq - b.seq);
}

/** Releases the leases of still pending rows, so they are due at once. */
export async function releaseOutboxLeases(db: Queryable, ids: string[]): Promise<void> {
  await db.query(`UPDATE outbox SET lease_until = NULL WHERE id = ANY($1::text[]) AND state = 'pending'`, [ids]);
}

/**
 * Records the deliveries of a batch in one statement; `receipts[i]` belongs to `ids[i]` (only rows still pending).
 * `delivery`: a delivery that is itself a write to this database (the local hub), carried by the same statement, so
 * the messages and the record of their delivery commit together.
 */
export async function markOutboxBatchDelivered(db: Queryable, ids: string[], receipts: Array<string | null>, delivery?: CompanionWrite): Promise<void> {
  const withReceipts = receipts.some((r) => r !== null); // most transports give none: one array to send, not two
  // (`ANY` of a sub-select compares with its rows: the cast makes it the array again)
  await db.query(
    `${delivery ? `WITH ${delivery.cte(withReceipts ? 3 : 2)} ` : ''}UPDATE outbox o SET state = 'delivered', delivered_at = now(), receipt = ${withReceipts ? 'v.receipt' : 'NULL'},
       attempts = o.attempts + 1, last_error = NULL, lease_until = NULL
     ${withReceipts ? `FROM unnest(${unplannedArray('$1::text[]')}, ${unplannedArray('$2::text[]')}) AS v(id, receipt) WHERE o.id = v.id` : `WHERE o.id = ANY(${unplannedArray('$1::text[]')}::text[])`} AND o.state = 'pending'`,
    [ids, ...(withReceipts ? [receipts] : []), ...(delivery?.params ?? [])],
  );
}

export interface OutboxFailure {
  id: string;
  /** Stored as `last_error`. */
  error: string;
  /** Delay before the next attempt. */
  delayMs: number;
}

export interface OutboxFailureRecord {
  state: OutboxStatus;
  attempts: number;
  first_failed_at: Date;
}

/**
 * Records the failed attempts of several pending rows in one statement (each a retry after its own `delayMs`, or
 * `dead` when failing for longer than `maxRetryHours`); returns the records by id (a row no longer pending is left out).
 */
export async function recordOutboxFailures(db: Queryable, failures: OutboxFailure[], maxRetryHours: number): Promise<Map<string, OutboxFailureRecord>> {
  const out = new Map<string, OutboxFailureRecord>();
  if (failures.length === 0) return out;
  const r = await db.query<OutboxFailureRecord & { id: string }>(
    `UPDATE outbox o SET
       attempts = o.attempts + 1,
       last_error = f.error,
       lease_until = NULL,
       first_failed_at = COALESCE(o.first_failed_at, now()),
       next_attempt_at = now() + make_interval(secs => f.delay_ms / 1000),
       state = CASE WHEN COALESCE(o.first_failed_at, now()) < now() - make_interval(hours => $4::int) THEN 'dead' ELSE 'pending' END
     FROM unnest($1::text[], $2::text[], $3::double precision[]) AS f(id, error, delay_ms)
     WHERE o.id = f.id AND o.state = 'pending'
     RETURNING o.id, o.state, o.attempts, o.first_failed_at`,
    [failures.map((f) => f.id), failures.map((f) => f.error), failures.map((f) => f.delayMs), maxRetryHours],
  );
  for (const row of r.rows) out.set(row.id, { state: row.state, attempts: row.attempts, first_failed_at: row.first_failed_at });
  return out;
}

/** Deletes delivered rows older than `retentionDays`, except those named in `keepMessageNames`. Returns how many. */
export async function deleteDeliveredOutboxRows(db: Queryable, retentionDays: number, keepMessageNames: readonly string[]): Promise<number> {
  const r = await db.query(
    `DELETE FROM outbox WHERE state = 'delivered' AND delivered_at < now() - make_interval(days => $1::int)
       AND message_name <> ALL($2::text[])`,
    [retentionDays, keepMessageNames],
  );
  return r.rowCount;
}

export interface OutboxStats {
  pending: number;
  dead: number;
  /** Seconds since the oldest pending row was written; 0 when nothing is pending. */
  oldestPendingAgeSeconds: number;
}

/** Outbox figures for /metrics (messages.md 7): pending and dead rows, and the age of the oldest pending row. */
export async function outboxStats(db: Queryable): Promise<OutboxStats> {
  const r = await db.query<{ pending: number; dead: number; age: number | string | null }>(
    `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
            count(*) FILTER (WHERE state = 'dead')::int AS dead,
            EXTRACT(EPOCH FROM (now() - min(created_at) FILTER (WHERE state = 'pending')))::float8 AS age
     FROM outbox WHERE state <> 'delivered'`,
  );
  const row = r.rows[0];
  const age = row?.age === null || row?.age === undefined ? 0 : Math.max(0, Number(row.age));
  return { pending: Number(row?.pending ?? 0), dead: Number(row?.dead ?? 0), oldestPendingAgeSeconds: age };
}

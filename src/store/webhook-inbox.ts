/**
 * Webhook inbox rows (`webhook_inbox`, migrations/003_payments.sql): one verified PSP event per row, de-duplicated per
 * (tenant, connector, event id).
 */
import type { WebhookInboxStatus } from '../domain/processing-status.js';
import { coalescerPerDb, isPool } from './coalesce.js';
import { updateByIdWrite, type CompanionWrite, type Db, type Queryable, type Tx } from './db.js';

export interface NewInboxEvent {
  id: string;
  tenantIdentifier: string;
  connector: string;
  eventId: string;
  eventType: string;
  mode: 'test' | 'live';
  pspObjectId: string | null;
  payload: unknown;
  /** `received` (to process) or `ignored` (recorded only, with `reason`). */
  state: 'received' | 'ignored';
  reason: string | null;
  nextAttemptAt: Date;
}

/**
 * Stores the event; false when the tenant already has this connector's event id (a duplicate delivery). On the
 * PostgreSQL pool, events of one tenant that arrive while an earlier one is being stored share the next statement
 * (group commit, `coalesce.ts`: one round trip and one commit for a burst of acknowledgements); one event id never
 * twice in a statement; a statement that has not answered after `INBOX_STALL_MS` (a row lock of a concurrent
 * delivery of the same event) no longer holds the events behind it. On the embedded database, whose one connection
 * runs the statements one after the other anyway, each event is its own statement (grouping measured slower there).
 */
export async function insertInboxEvent(q: Queryable, e: NewInboxEvent): Promise<boolean> {
  if (isPool(q) && q.kind === 'postgres') return inboxCoalescer(q).submit(e.tenantIdentifier, e);
  return insertOneInboxEvent(q, e);
}

/** How long a grouped inbox insert may hold the events queued behind it (ms). */
export const INBOX_STALL_MS = 50;

const inboxCoalescer = coalescerPerDb<NewInboxEvent, boolean>(
  (db) => ({
    one: (_key, e) => insertOneInboxEvent(db, e),
    many: (_key, es) => insertInboxEvents(db, es),
    keysOf: (e) => [`${e.connector}\u0000${e.eventId}`],
  }),
  undefined,
  INBOX_STALL_MS,
);

/** Several events of one tenant in one statement, in the given order; per event whether it was stored (false: its id was taken). */
async function insertInboxEvents(db: Db, es: readonly NewInboxEvent[]): Promise<boolean[]> {
  const col = <T>(f: (e: NewInboxEvent) => T): T[] => es.map(f);
  const r = await db.query<{ id: string }>(
    `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, reason, next_attempt_at, received_at, processed_at)
     SELECT u.id, u.tenant, u.connector, u.event_id, u.event_type, u.mode, u.psp_object_id, u.payload::jsonb, u.state, u.reason, u.next_attempt_at, clock_timestamp(), CASE WHEN u.state = 'ignored' THEN clock_timestamp() END
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
       WITH ORDINALITY AS u(id, tenant, connector, event_id, event_type, mode, psp_object_id, payload, state, reason, next_attempt_at, n)
     ORDER BY u.n
     ON CONFLICT (tenant_identifier, connector, event_id) DO NOTHING
     RETURNING id`,
    [col((e) => e.id), col((e) => e.tenantIdentifier), col((e) => e.connector), col((e) => e.eventId), col((e) => e.eventType), col((e) => e.mode), col((e) => e.pspObjectId), col((e) => JSON.stringify(e.payload)), col((e) => e.state), col((e) => e.reason), col((e) => e.nextAttemptAt)],
  );
  const stored = new Set(r.rows.map((x) => x.id));
  return es.map((e) => stored.has(e.id));
}

async function insertOneInboxEvent(q: Queryable, e: NewInboxEvent): Promise<boolean> {
  const r = await q.query<{ id: string }>(
    `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, reason, next_attempt_at, received_at, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, clock_timestamp(), CASE WHEN $9 = 'ignored' THEN clock_timestamp() END)
     ON CONFLICT (tenant_identifier, connector, event_id) DO NOTHING
     RETURNING id`,
    [e.id, e.tenantIdentifier, e.connector, e.eventId, e.eventType, e.mode, e.pspObjectId, JSON.stringify(e.payload), e.state, e.reason, e.nextAttemptAt],
  );
  return r.rows.length > 0;
}

/** One `webhook_inbox` row as the processor reads it. */
export interface InboxRow {
  id: string;
  tenant_identifier: string;
  connector: string;
  event_id: string;
  event_type: string;
  mode: string;
  psp_object_id: string | null;
  payload: unknown;
  state: WebhookInboxStatus;
  reason: string | null;
  attempts: number;
  next_attempt_at: Date;
  received_at: Date;
  processed_at: Date | null;
}

/** Locks the row (`FOR UPDATE`, inside the caller's transaction); null when there is no such row. */
export async function lockInboxRow(tx: Tx, id: string): Promise<InboxRow | null> {
  const r = await tx.query<InboxRow>('SELECT * FROM webhook_inbox WHERE id = $1 FOR UPDATE', [id]);
  return r.rows[0] ? inboxRow(r.rows[0]) : null;
}

const inboxRow = (row: InboxRow): InboxRow => ({ ...row, attempts: Number(row.attempts), received_at: new Date(row.received_at), next_attempt_at: new Date(row.next_attempt_at) });

/**
 * `lockInboxRow` plus the oldest row of the same PSP object in `states` that arrived before it, in one statement. The older row is read from the statement's
 * snapshot: a row seen unfinished may have finished meanwhile (the caller waits a little longer), never the reverse.
 */
export async function lockInboxRowWithOlder(
  tx: Tx,
  id: string,
  states: readonly WebhookInboxStatus[],
): Promise<{ row: InboxRow; older: { id: string; state: WebhookInboxStatus } | null } | null> {
  const r = await tx.query<InboxRow & { older_id: string | null; older_state: WebhookInboxStatus | null }>(
    `SELECT w.*, o.id AS older_id, o.state AS older_state FROM webhook_inbox w
     LEFT JOIN LATERAL (
       SELECT x.id, x.state FROM webhook_inbox x
       WHERE x.tenant_identifier = w.tenant_identifier AND x.connector = w.connector AND x.psp_object_id = w.psp_object_id AND x.id <> w.id
         AND x.state = ANY($2::text[]) AND (x.received_at < w.received_at OR (x.received_at = w.received_at AND x.id < w.id))
       ORDER BY x.received_at, x.id LIMIT 1) o ON true
     WHERE w.id = $1
     FOR UPDATE OF w`,
    [id, states],
  );
  const found = r.rows[0];
  if (!found) return null;
  const { older_id, older_state, ...row } = found;
  return {
    row: inboxRow(row),
    older: older_id && older_state ? { id: older_id, state: older_state } : null,
  };
}

/** Keeps the row's state; records the reason, the attempt count and when to try again. */
export async function postponeInboxRow(tx: Tx, id: string, reason: string, attempts: number, nextAttemptAt: Date): Promise<void> {
  await tx.query('UPDATE webhook_inbox SET reason = $2, attempts = $3, next_attempt_at = $4 WHERE id = $1', [id, reason, attempts, nextAttemptAt]);
}

export interface InboxStateChange {
  state: WebhookInboxStatus;
  reason: string | null;
  attempts: number;
  nextAttemptAt: Date;
  /** A final state: `processed_at` is set. */
  final: boolean;
}

/** Writes the row's new state (the caller checked the move against the inbox state machine). */
export async function writeInboxState(tx: Tx, id: string, c: InboxStateChange): Promise<void> {
  await tx.query(`UPDATE webhook_inbox SET ${stateSets(2)} WHERE id = $1`, [id, ...stateParams(c)]);
}

const stateSets = (n: number): string =>
  `state = $${n}, reason = $${n + 1}, attempts = $${n + 2}, next_attempt_at = $${n + 3}, processed_at = CASE WHEN $${n + 4}::boolean THEN now() ELSE processed_at END`;
const stateParams = (c: InboxStateChange): unknown[] => [c.state, c.reason, c.attempts, c.nextAttemptAt, c.final];

/** `writeInboxState` as a part of the statement that writes the change the row's processing applies (one round trip less). */
export function inboxStateWrite(id: string, c: InboxStateChange): CompanionWrite {
  return updateByIdWrite('inbox_state', 'webhook_inbox', id, stateSets, stateParams(c));
}

/** Ids of one PSP object's rows in one of `states`, in arrival order. */
export async function listObjectInboxIds(q: Queryable, tenant: string, pspObjectId: string, states: readonly WebhookInboxStatus[]): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `SELECT id FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2 AND state = ANY($3::text[])
       ORDER BY received_at, id`,
    [tenant, pspObjectId, states],
  );
  return r.rows.map((row) => row.id);
}

/** Marks the `waiting_for_order` rows of these PSP objects `discarded` (pre-order payment cancelled). Returns how many. */
export async function discardHeldInboxRows(tx: Tx, tenant: string, pspObjectIds: readonly string[]): Promise<number> {
  const r = await tx.query<{ id: string }>(
    `UPDATE webhook_inbox SET state = 'discarded', reason = 'pre-order payment cancelled', processed_at = now()
     WHERE tenant_identifier = $1 AND psp_object_id = ANY($2::text[]) AND state = 'waiting_for_order' RETURNING id`,
    [tenant, pspObjectIds],
  );
  return r.rows.length;
}

/** Makes claimed rows still in one of `states` due at once (lease released). */
export async function releaseInboxRows(q: Queryable, ids: readonly string[], states: readonly WebhookInboxStatus[]): Promise<void> {
  await q.query(`UPDATE webhook_inbox SET next_attempt_at = now() WHERE id = ANY($1::text[]) AND state = ANY($2::text[])`, [ids, states]);
}

/** Expires `waiting_for_order` rows received before `before`; returns them. */
export async function expireHeldInboxRows(q: Queryable, before: Date): Promise<Array<{ id: string; event_id: string; tenant_identifier: string }>> {
  const r = await q.query<{ id: string; event_id: string; tenant_identifier: string }>(
    `UPDATE webhook_inbox SET state = 'expired', reason = 'no order linked within 7 days', processed_at = now()
     WHERE state = 'waiting_for_order' AND received_at < $1 RETURNING id, event_id, tenant_identifier`,
    [before],
  );
  return r.rows;
}

/** A claimed row: enough to order it and group it by PSP object. */
export type ClaimedInboxRow = Pick<InboxRow, 'id' | 'received_at' | 'tenant_identifier' | 'connector' | 'psp_object_id'>;

/** Claims up to `limit` due rows in one of `states` (`FOR UPDATE SKIP LOCKED`) by moving `next_attempt_at` to `leaseUntil`. */
export async function claimDueInboxRows(tx: Tx, leaseUntil: Date, states: readonly WebhookInboxStatus[], limit: number): Promise<ClaimedInboxRow[]> {
  const r = await tx.query<ClaimedInboxRow>(
    `UPDATE webhook_inbox SET next_attempt_at = $1
       WHERE id IN (SELECT id FROM webhook_inbox WHERE state = ANY($2::text[]) AND next_attempt_at <= now()
                    ORDER BY received_at, id LIMIT ${Math.trunc(limit)} FOR UPDATE SKIP LOCKED)
       RETURNING id, received_at, tenant_identifier, connector, psp_object_id`,
    [leaseUntil, states],
  );
  return r.rows;
}

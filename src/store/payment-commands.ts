/**
 * Stored `payment-commands` rows as the command processor works them (`command_inbox`, migrations/001_core.sql,
 * states.md 5): load, claim (`FOR UPDATE SKIP LOCKED` with a lease), finish, retry. Storing incoming commands stays with
 * the messaging layer. States are written only after `commandInboxTransition` allowed the move (the use case checks).
 */
import type { CommandInboxStatus } from '../domain/processing-status.js';
import type { Queryable, Tx } from './db.js';

export interface InboxCommandRow {
  id: string;
  transport_message_id: string;
  message_name: string | null;
  tenant_identifier: string | null;
  payload: unknown;
  state: CommandInboxStatus;
  attempts: number;
  created_at: Date;
}

/** Final states a processed command ends in (besides `dead`). */
export type FinishedCommandState = Extract<CommandInboxStatus, 'processed' | 'ignored' | 'rejected'>;

export async function loadCommand(q: Queryable, id: string): Promise<InboxCommandRow | null> {
  const r = await q.query<InboxCommandRow>(
    'SELECT id, transport_message_id, message_name, tenant_identifier, payload, state, attempts, created_at FROM command_inbox WHERE id = $1',
    [id],
  );
  const row = r.rows[0];
  return row ? commandRow(row) : null;
}

/** Marks a command finished within `tx` (only from received/retrying). */
export async function finishCommand(tx: Tx, id: string, state: FinishedCommandState, reason: string | null): Promise<void> {
  await tx.query(finishCommandSql('$1', '$2', '$3'), [id, state, reason]);
}

/** The UPDATE that finishes a command row (only from received/retrying), with the given placeholders (also a CTE of `lockPayment`). */
export const finishCommandSql = (id: string, state: string, reason: string): string =>
  `UPDATE command_inbox SET state = ${state}, last_error = ${reason}, processed_at = now() WHERE id = ${id} AND state IN ('received', 'retrying')`;

/**
 * Records a failed attempt (`retrying`, or `dead` with `processed_at`) if the command is still received/retrying.
 * Returns false when it was not (another processor finished it).
 */
export async function recordCommandFailure(
  tx: Tx,
  id: string,
  f: { state: Extract<CommandInboxStatus, 'retrying' | 'dead'>; attempts: number; nextAttemptAt: Date; lastError: string },
): Promise<boolean> {
  const r = await tx.query(
    `UPDATE command_inbox SET state = $2, attempts = $3, next_attempt_at = $4, last_error = $5, processed_at = CASE WHEN $2 = 'dead' THEN now() ELSE processed_at END
       WHERE id = $1 AND state IN ('received', 'retrying')`,
    [id, f.state, f.attempts, f.nextAttemptAt, f.lastError],
  );
  return r.rowCount !== 0;
}

/**
 * Claims up to `limit` due received/retrying commands, at most the oldest unfinished one per (tenant, orderReference),
 * with `FOR UPDATE SKIP LOCKED`, by moving `next_attempt_at` to `leaseUntil`.
 */
export async function claimDueCommands(q: Queryable, leaseUntil: Date, limit: number): Promise<InboxCommandRow[]> {
  // one autocommit statement: the claim is its own transaction; the claimed rows come back whole (no second read)
  const r = await q.query<InboxCommandRow>(
    `UPDATE command_inbox SET next_attempt_at = $1
       WHERE id IN (
         SELECT c.id FROM command_inbox c
         WHERE c.state IN ('received', 'retrying') AND c.next_attempt_at <= now()
           AND NOT EXISTS (
             SELECT 1 FROM command_inbox o
             WHERE o.state IN ('received', 'retrying') AND o.id <> c.id
               AND o.tenant_identifier IS NOT DISTINCT FROM c.tenant_identifier
               AND (o.payload ->> 'orderReference') IS NOT DISTINCT FROM (c.payload ->> 'orderReference')
               AND (o.created_at < c.created_at OR (o.created_at = c.created_at AND o.id < c.id)))
         ORDER BY c.created_at, c.id
         LIMIT $2
         FOR UPDATE SKIP LOCKED)
       RETURNING id, transport_message_id, message_name, tenant_identifier, payload, state, attempts, created_at`,
    [leaseUntil, Math.max(0, Math.trunc(limit))],
  );
  return r.rows.map(commandRow);
}

const commandRow = (row: InboxCommandRow): InboxCommandRow => ({ ...row, attempts: Number(row.attempts), created_at: new Date(row.created_at) });

/** Makes claimed commands still received/retrying due at once (lease released). */
export async function releaseCommands(q: Queryable, ids: readonly string[]): Promise<void> {
  await q.query(`UPDATE command_inbox SET next_attempt_at = now() WHERE id = ANY($1::text[]) AND state IN ('received', 'retrying')`, [ids]);
}

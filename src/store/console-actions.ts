/**
 * Write repository of the operator actions (issue 11): each function works on one row inside the caller's
 * transaction. `lock*` reads the row `FOR UPDATE`; the update functions change only a row still in the state the
 * action expects (so an action on a row that changed meanwhile changes nothing).
 */
import type { CommandInboxStatus, OutboxStatus, WebhookInboxStatus } from '../domain/processing-status.js';
import type { Queryable, Tx } from './db.js';

export interface LockedWebhook {
  id: string;
  tenantIdentifier: string;
  pspObjectId: string | null;
  state: WebhookInboxStatus;
  receivedAt: Date;
}

export async function lockWebhook(tx: Tx, id: string): Promise<LockedWebhook | null> {
  const r = await tx.query<{ id: string; tenant_identifier: string; psp_object_id: string | null; state: WebhookInboxStatus; received_at: Date }>(
    'SELECT id, tenant_identifier, psp_object_id, state, received_at FROM webhook_inbox WHERE id = $1 FOR UPDATE',
    [id],
  );
  const w = r.rows[0];
  return w ? { id: w.id, tenantIdentifier: w.tenant_identifier, pspObjectId: w.psp_object_id, state: w.state, receivedAt: new Date(w.received_at) } : null;
}

/**
 * Operator re-queue of a `dead` / `expired` row (states.md 5: → `received`): attempts and the 24 h / 7 day budgets start
 * again from now; the stored event (its id, payload and event id) is unchanged.
 */
export async function requeueWebhook(tx: Tx, id: string, from: WebhookInboxStatus, note: string): Promise<boolean> {
  const r = await tx.query(
    `UPDATE webhook_inbox SET state = 'received', reason = $3, attempts = 0, next_attempt_at = now(), received_at = now(), processed_at = NULL
     WHERE id = $1 AND state = $2`,
    [id, from, note.slice(0, 500)],
  );
  return r.rowCount > 0;
}

/** Operator discard of a held (`waiting_for_order`) row (states.md 5: → `discarded`). */
export async function discardWebhook(tx: Tx, id: string, note: string): Promise<boolean> {
  const r = await tx.query(
    `UPDATE webhook_inbox SET state = 'discarded', reason = $2, processed_at = now() WHERE id = $1 AND state = 'waiting_for_order'`,
    [id, note.slice(0, 500)],
  );
  return r.rowCount > 0;
}

export interface LockedOutbox {
  id: string;
  tenantIdentifier: string;
  orderingKey: string;
  state: OutboxStatus;
  discarded: boolean;
}

export async function lockOutbox(tx: Tx, id: string): Promise<LockedOutbox | null> {
  const r = await tx.query<{ id: string; tenant_identifier: string; ordering_key: string; state: OutboxStatus; discarded_at: Date | null }>(
    'SELECT id, tenant_identifier, ordering_key, state, discarded_at FROM outbox WHERE id = $1 FOR UPDATE',
    [id],
  );
  const o = r.rows[0];
  return o ? { id: o.id, tenantIdentifier: o.tenant_identifier, orderingKey: o.ordering_key, state: o.state, discarded: o.discarded_at !== null } : null;
}

/** Marks a dead row discarded (messages.md 7): it stays stored and `dead` but no longer blocks its ordering key. */
export async function discardOutbox(tx: Tx, id: string): Promise<boolean> {
  const r = await tx.query(`UPDATE outbox SET discarded_at = now() WHERE id = $1 AND state = 'dead' AND discarded_at IS NULL`, [id]);
  return r.rowCount > 0;
}

export interface LockedCommand {
  id: string;
  tenantIdentifier: string | null;
  orderReference: string | null;
  state: CommandInboxStatus;
}

export async function lockCommand(tx: Tx, id: string): Promise<LockedCommand | null> {
  const r = await tx.query<{ id: string; tenant_identifier: string | null; order_reference: string | null; state: CommandInboxStatus }>(
    `SELECT id, tenant_identifier, payload->>'orderReference' AS order_reference, state FROM command_inbox WHERE id = $1 FOR UPDATE`,
    [id],
  );
  const c = r.rows[0];
  return c ? { id: c.id, tenantIdentifier: c.tenant_identifier, orderReference: c.order_reference, state: c.state } : null;
}

/** A `received` / `retrying` command becomes due now (the command worker takes it on its next pass). */
export async function retryCommandNow(tx: Tx, id: string): Promise<boolean> {
  const r = await tx.query(`UPDATE command_inbox SET next_attempt_at = now() WHERE id = $1 AND state IN ('received', 'retrying')`, [id]);
  return r.rowCount > 0;
}

/** The payment a PSP object (transaction id, old transaction id, capture reference or refund id) belongs to. */
export async function paymentIdForPspObject(q: Queryable, tenant: string, ref: string): Promise<string | null> {
  const r = await q.query<{ id: string }>(
    `SELECT id FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2
     UNION SELECT payment_id FROM payment_aliases WHERE tenant_identifier = $1 AND transaction_id = $2
     UNION SELECT payment_id FROM payment_operations WHERE tenant_identifier = $1 AND psp_reference = $2
     UNION SELECT payment_id FROM refunds WHERE tenant_identifier = $1 AND psp_refund_id = $2
     LIMIT 1`,
    [tenant, ref],
  );
  return r.rows[0]?.id ?? null;
}

/** The payment of an order reference in a tenant. */
export async function paymentIdForOrder(q: Queryable, tenant: string, orderReference: string): Promise<string | null> {
  const r = await q.query<{ id: string }>('SELECT id FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, orderReference]);
  return r.rows[0]?.id ?? null;
}

/**
 * Read repository of the operator console (issue 11): payments search with keyset pagination, everything that touched
 * one payment, the webhook inbox, the outbox, the command inbox, tenants and the overview figures. The console reads
 * only through this file (and the other repositories of `src/store/`); it never has SQL of its own.
 */
import type { CommandInboxStatus, OutboxStatus, WebhookInboxStatus } from '../domain/processing-status.js';
import type { PaymentStatus } from '../domain/payment-status.js';
import type { Queryable } from './db.js';
import { mapPaymentRow, type PaymentRow } from './payments.js';
import type { TenantRecord } from './tenants.js';

export interface PaymentSearch {
  /** Order reference, transaction id (current or old), PSP reference of a capture/refund, or our payment id: exact match. */
  q?: string;
  tenant?: string;
  status?: PaymentStatus;
  /** created_at >= from */
  from?: Date;
  /** created_at < to */
  to?: Date;
  /** Keyset cursor of the last row of the previous page. */
  after?: PaymentCursor;
  limit: number;
}

export interface PaymentCursor {
  /** created_at in full (microsecond) precision, ISO form. */
  createdAt: string;
  id: string;
}

export interface PaymentListItem {
  payment: PaymentRow;
  cursor: PaymentCursor;
}

const CURSOR_TS = `to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Newest first; one row more than `limit` is read to know whether there is a next page. */
export async function searchPayments(q: Queryable, s: PaymentSearch): Promise<{ items: PaymentListItem[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  if (s.q !== undefined) {
    const v = p(s.q);
    // One indexed branch per kind of reference (an OR over sub-selects would scan every payment).
    where.push(`p.id IN (SELECT id FROM payments WHERE order_reference = ${v} UNION ALL SELECT id FROM payments WHERE transaction_id = ${v}
      UNION ALL SELECT id FROM payments WHERE id = ${v} UNION ALL SELECT payment_id FROM payment_aliases WHERE transaction_id = ${v}
      UNION ALL SELECT payment_id FROM payment_operations WHERE psp_reference = ${v} UNION ALL SELECT payment_id FROM refunds WHERE psp_refund_id = ${v})`);
  }
  if (s.tenant !== undefined) where.push(`p.tenant_identifier = ${p(s.tenant)}`);
  if (s.status !== undefined) where.push(`p.status = ${p(s.status)}`);
  if (s.from !== undefined) where.push(`p.created_at >= ${p(s.from)}`);
  if (s.to !== undefined) where.push(`p.created_at < ${p(s.to)}`);
  if (s.after !== undefined) where.push(`(p.created_at, p.id) < (${p(s.after.createdAt)}::timestamptz, ${p(s.after.id)})`);
  const r = await q.query<Record<string, unknown> & { cursor_ts: string }>(
    `SELECT p.*, ${CURSOR_TS} AS cursor_ts FROM payments p
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY p.created_at DESC, p.id DESC LIMIT ${p(s.limit + 1)}`,
    params,
  );
  const rows = r.rows.slice(0, s.limit);
  return {
    items: rows.map((row) => ({ payment: mapPaymentRow(row as never), cursor: { createdAt: row.cursor_ts, id: String(row.id) } })),
    more: r.rows.length > s.limit,
  };
}

/** Payments whose transaction id (current or old) or order reference is `ref`, in any tenant (CLI `payments show`). */
export async function findPaymentsByReference(q: Queryable, ref: string): Promise<PaymentRow[]> {
  const r = await searchPayments(q, { q: ref, limit: 20 });
  return r.items.map((i) => i.payment);
}

// ---- everything that touched one payment ----

export interface WebhookInboxItem {
  id: string;
  tenantIdentifier: string;
  connector: string;
  eventId: string;
  eventType: string;
  pspObjectId: string | null;
  state: WebhookInboxStatus;
  reason: string | null;
  attempts: number;
  receivedAt: Date;
  processedAt: Date | null;
}

export interface OutboxItem {
  id: string;
  seq: number;
  tenantIdentifier: string;
  channel: string;
  messageName: string;
  orderingKey: string;
  messageTimestamp: string;
  state: OutboxStatus;
  discarded: boolean;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
  /** Pending rows of the same ordering key behind this row (for a dead row: what it blocks). */
  blocking: number;
}

export interface CommandItem {
  id: string;
  transport: string;
  channel: string;
  transportMessageId: string;
  messageName: string | null;
  tenantIdentifier: string | null;
  orderReference: string | null;
  state: CommandInboxStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  processedAt: Date | null;
}

const WEBHOOK_COLUMNS = `w.id, w.tenant_identifier, w.connector, w.event_id, w.event_type, w.psp_object_id, w.state, w.reason, w.attempts, w.received_at, w.processed_at`;

function mapWebhook(r: Record<string, unknown>): WebhookInboxItem {
  return {
    id: String(r.id),
    tenantIdentifier: String(r.tenant_identifier),
    connector: String(r.connector),
    eventId: String(r.event_id),
    eventType: String(r.event_type),
    pspObjectId: (r.psp_object_id as string | null) ?? null,
    state: r.state as WebhookInboxStatus,
    reason: (r.reason as string | null) ?? null,
    attempts: Number(r.attempts),
    receivedAt: new Date(r.received_at as string),
    processedAt: r.processed_at ? new Date(r.processed_at as string) : null,
  };
}

const OUTBOX_COLUMNS = `o.id, o.seq, o.tenant_identifier, o.channel, o.message_name, o.ordering_key, o.message_timestamp, o.state, o.discarded_at,
  o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.delivered_at,
  CASE WHEN o.state = 'delivered' THEN 0 ELSE (SELECT count(*) FROM outbox b WHERE b.ordering_key = o.ordering_key AND b.seq > o.seq AND b.state = 'pending')::int END AS blocking`;

function mapOutbox(r: Record<string, unknown>): OutboxItem {
  return {
    id: String(r.id),
    seq: Number(r.seq),
    tenantIdentifier: String(r.tenant_identifier),
    channel: String(r.channel),
    messageName: String(r.message_name),
    orderingKey: String(r.ordering_key),
    messageTimestamp: String(r.message_timestamp),
    state: r.state as OutboxStatus,
    discarded: r.discarded_at !== null && r.discarded_at !== undefined,
    attempts: Number(r.attempts),
    nextAttemptAt: new Date(r.next_attempt_at as string),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(r.created_at as string),
    deliveredAt: r.delivered_at ? new Date(r.delivered_at as string) : null,
    blocking: Number(r.blocking ?? 0),
  };
}

const COMMAND_COLUMNS = `c.id, c.transport, c.channel, c.transport_message_id, c.message_name, c.tenant_identifier, c.payload->>'orderReference' AS order_reference,
  c.state, c.attempts, c.last_error, c.created_at, c.processed_at`;

function mapCommand(r: Record<string, unknown>): CommandItem {
  return {
    id: String(r.id),
    transport: String(r.transport),
    channel: String(r.channel),
    transportMessageId: String(r.transport_message_id),
    messageName: (r.message_name as string | null) ?? null,
    tenantIdentifier: (r.tenant_identifier as string | null) ?? null,
    orderReference: (r.order_reference as string | null) ?? null,
    state: r.state as CommandInboxStatus,
    attempts: Number(r.attempts),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(r.created_at as string),
    processedAt: r.processed_at ? new Date(r.processed_at as string) : null,
  };
}

/** The PSP object ids of a payment: transaction ids (current and old), capture references and refund ids. */
export async function pspObjectIdsOf(q: Queryable, payment: Pick<PaymentRow, 'id' | 'transactionId'>): Promise<string[]> {
  const r = await q.query<{ ref: string }>(
    `SELECT transaction_id AS ref FROM payment_aliases WHERE payment_id = $1
     UNION SELECT psp_reference FROM payment_operations WHERE payment_id = $1 AND psp_reference IS NOT NULL
     UNION SELECT psp_refund_id FROM refunds WHERE payment_id = $1 AND psp_refund_id IS NOT NULL`,
    [payment.id],
  );
  return [...new Set([payment.transactionId, ...r.rows.map((x) => x.ref)])];
}

export async function webhooksOfPayment(q: Queryable, payment: Pick<PaymentRow, 'id' | 'transactionId' | 'tenantIdentifier'>): Promise<WebhookInboxItem[]> {
  const ids = await pspObjectIdsOf(q, payment);
  const r = await q.query(
    `SELECT ${WEBHOOK_COLUMNS} FROM webhook_inbox w
     WHERE w.tenant_identifier = $1 AND (w.psp_object_id = ANY($2::text[])
       OR w.id IN (SELECT trigger_ref FROM payment_status_history WHERE payment_id = $3 AND trigger = 'webhook'))
     ORDER BY w.received_at, w.id`,
    [payment.tenantIdentifier, ids, payment.id],
  );
  return r.rows.map(mapWebhook);
}

export async function messagesOfPayment(q: Queryable, payment: Pick<PaymentRow, 'id' | 'tenantIdentifier'>): Promise<OutboxItem[]> {
  const r = await q.query(`SELECT ${OUTBOX_COLUMNS} FROM outbox o WHERE o.ordering_key = $1 ORDER BY o.seq`, [
    `${payment.tenantIdentifier}/payment/${payment.id}`,
  ]);
  return r.rows.map(mapOutbox);
}

export async function commandsOfPayment(q: Queryable, payment: Pick<PaymentRow, 'tenantIdentifier' | 'orderReference'>): Promise<CommandItem[]> {
  if (payment.orderReference === null) return [];
  const r = await q.query(
    `SELECT ${COMMAND_COLUMNS} FROM command_inbox c WHERE c.tenant_identifier = $1 AND c.payload->>'orderReference' = $2 ORDER BY c.created_at, c.id`,
    [payment.tenantIdentifier, payment.orderReference],
  );
  return r.rows.map(mapCommand);
}

// ---- the three processing lists ----

export const HELD_OR_FAILED_WEBHOOK_STATES: readonly WebhookInboxStatus[] = ['waiting_for_payment', 'waiting_for_order', 'retrying', 'dead', 'expired'];

export async function listWebhooks(q: Queryable, f: { states: readonly WebhookInboxStatus[]; tenant?: string; limit: number }): Promise<WebhookInboxItem[]> {
  const r = await q.query(
    `SELECT ${WEBHOOK_COLUMNS} FROM webhook_inbox w WHERE w.state = ANY($1::text[]) AND ($2::text IS NULL OR w.tenant_identifier = $2)
     ORDER BY w.received_at DESC, w.id DESC LIMIT $3`,
    [f.states, f.tenant ?? null, f.limit],
  );
  return r.rows.map(mapWebhook);
}

export async function getWebhook(q: Queryable, id: string): Promise<(WebhookInboxItem & { payload: unknown }) | null> {
  const r = await q.query(`SELECT ${WEBHOOK_COLUMNS}, w.payload FROM webhook_inbox w WHERE w.id = $1`, [id]);
  const row = r.rows[0];
  return row ? { ...mapWebhook(row), payload: row.payload } : null;
}

/** Pending and dead rows (not discarded), grouped by channel and ordering key, oldest first within a key. */
export async function listOutbox(q: Queryable, f: { states: readonly OutboxStatus[]; tenant?: string; limit: number }): Promise<OutboxItem[]> {
  const r = await q.query(
    `SELECT ${OUTBOX_COLUMNS} FROM outbox o WHERE o.state = ANY($1::text[]) AND o.discarded_at IS NULL AND ($2::text IS NULL OR o.tenant_identifier = $2)
     ORDER BY o.channel, o.ordering_key, o.seq LIMIT $3`,
    [f.states, f.tenant ?? null, f.limit],
  );
  return r.rows.map(mapOutbox);
}

export async function getOutbox(q: Queryable, id: string): Promise<(OutboxItem & { payload: unknown; attributes: unknown }) | null> {
  const r = await q.query(`SELECT ${OUTBOX_COLUMNS}, o.payload, o.attributes FROM outbox o WHERE o.id = $1`, [id]);
  const row = r.rows[0];
  return row ? { ...mapOutbox(row), payload: row.payload, attributes: row.attributes } : null;
}

export async function listCommands(q: Queryable, f: { states?: readonly CommandInboxStatus[]; tenant?: string; limit: number }): Promise<CommandItem[]> {
  const r = await q.query(
    `SELECT ${COMMAND_COLUMNS} FROM command_inbox c WHERE ($1::text[] IS NULL OR c.state = ANY($1::text[])) AND ($2::text IS NULL OR c.tenant_identifier = $2)
     ORDER BY c.created_at DESC, c.id DESC LIMIT $3`,
    [f.states ?? null, f.tenant ?? null, f.limit],
  );
  return r.rows.map(mapCommand);
}

export async function getCommand(q: Queryable, id: string): Promise<(CommandItem & { payload: unknown }) | null> {
  const r = await q.query(`SELECT ${COMMAND_COLUMNS}, c.payload FROM command_inbox c WHERE c.id = $1`, [id]);
  const row = r.rows[0];
  return row ? { ...mapCommand(row), payload: row.payload } : null;
}

// ---- tenants ----

export interface TenantSummary {
  tenant: TenantRecord;
  lastWebhookAt: Date | null;
  payments: number;
}

/** Every tenant, or the one named by `id`. */
export async function listTenants(q: Queryable, id?: string): Promise<TenantSummary[]> {
  const r = await q.query<TenantRecord & { last_webhook_at: Date | null; payments: number }>(
    `SELECT t.*, (SELECT max(received_at) FROM webhook_inbox w WHERE w.tenant_identifier = t.tenant_identifier) AS last_webhook_at,
            (SELECT count(*) FROM payments p WHERE p.tenant_identifier = t.tenant_identifier)::int AS payments
     FROM tenants t WHERE ($1::text IS NULL OR t.tenant_identifier = $1) ORDER BY t.tenant_identifier`,
    [id ?? null],
  );
  return r.rows.map(({ last_webhook_at, payments, ...tenant }) => ({
    tenant: tenant as TenantRecord,
    lastWebhookAt: last_webhook_at ? new Date(last_webhook_at) : null,
    payments: Number(payments),
  }));
}

export interface MerchantItem {
  merchantReference: string;
  name: string | null;
  status: string;
  pspAccountId: string | null;
  updatedAt: Date;
}

export interface TransferItem {
  id: string;
  kind: 'payout' | 'reversal';
  orderReference: string;
  merchantReference: string;
  amount: number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed';
  pspTransferId: string | null;
  failureMessage: string | null;
  createdAt: Date;
}

export async function merchantsOfTenant(q: Queryable, tenant: string): Promise<MerchantItem[]> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT merchant_reference, name, status, psp_account_id, updated_at FROM merchants WHERE tenant_identifier = $1 ORDER BY merchant_reference LIMIT 500',
    [tenant],
  );
  return r.rows.map((m) => ({
    merchantReference: String(m.merchant_reference),
    name: (m.name as string | null) ?? null,
    status: String(m.status),
    pspAccountId: (m.psp_account_id as string | null) ?? null,
    updatedAt: new Date(m.updated_at as string),
  }));
}

export async function transfersOfTenant(q: Queryable, tenant: string, limit: number): Promise<TransferItem[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT id, kind, order_reference, merchant_reference, amount, currency, status, psp_transfer_id, failure_message, created_at
     FROM transfers WHERE tenant_identifier = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [tenant, limit],
  );
  return r.rows.map((t) => ({
    id: String(t.id),
    kind: t.kind as TransferItem['kind'],
    orderReference: String(t.order_reference),
    merchantReference: String(t.merchant_reference),
    amount: Number(t.amount),
    currency: String(t.currency),
    status: t.status as TransferItem['status'],
    pspTransferId: (t.psp_transfer_id as string | null) ?? null,
    failureMessage: (t.failure_message as string | null) ?? null,
    createdAt: new Date(t.created_at as string),
  }));
}

// ---- overview ----

export interface Overview {
  /** Payments created since `since`, per status. */
  paymentsByStatus: Partial<Record<PaymentStatus, number>>;
  /** Payments created per hour over the last 24 hours (oldest first, 24 buckets). */
  paymentsPerHour: number[];
  /** Failed per hour over the last 24 hours (authorization_failed, capture_failed, cancellation_failed). */
  failedPerHour: number[];
  outbox: { pending: number; dead: number; oldestPendingAgeSeconds: number };
  webhooks: { retrying: number; waiting: number; dead: number; expired: number };
  commands: { retrying: number; dead: number; rejectedToday: number };
}

export const FAILED_PAYMENT_STATUSES: readonly PaymentStatus[] = ['authorization_failed', 'capture_failed', 'cancellation_failed'];

export async function overview(q: Queryable, since: Date, now: Date): Promise<Overview> {
  const [byStatus, hourly, outbox, webhooks, commands] = await Promise.all([
    q.query<{ status: PaymentStatus; n: number }>('SELECT status, count(*)::int AS n FROM payments WHERE created_at >= $1 GROUP BY status', [since]),
    q.query<{ h: number; n: number; failed: number }>(
      `SELECT floor(EXTRACT(EPOCH FROM ($1::timestamptz - created_at)) / 3600)::int AS h, count(*)::int AS n,
              count(*) FILTER (WHERE status = ANY($2::text[]))::int AS failed
       FROM payments WHERE created_at > $1::timestamptz - interval '24 hours' AND created_at <= $1::timestamptz GROUP BY 1`,
      [now, FAILED_PAYMENT_STATUSES],
    ),
    q.query<{ pending: number; dead: number; age: number | string | null }>(
      `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
              count(*) FILTER (WHERE state = 'dead' AND discarded_at IS NULL)::int AS dead,
              EXTRACT(EPOCH FROM (now() - min(created_at) FILTER (WHERE state = 'pending')))::float8 AS age
       FROM outbox WHERE state <> 'delivered'`,
    ),
    q.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM webhook_inbox WHERE state IN ('retrying', 'waiting_for_payment', 'waiting_for_order', 'dead', 'expired') GROUP BY state`,
    ),
    q.query<{ retrying: number; dead: number; rejected: number }>(
      `SELECT count(*) FILTER (WHERE state = 'retrying')::int AS retrying, count(*) FILTER (WHERE state = 'dead')::int AS dead,
              count(*) FILTER (WHERE state = 'rejected' AND created_at >= $1)::int AS rejected
       FROM command_inbox WHERE state IN ('retrying', 'dead', 'rejected')`,
      [since],
    ),
  ]);
  const paymentsByStatus: Partial<Record<PaymentStatus, number>> = {};
  for (const r of byStatus.rows) paymentsByStatus[r.status] = Number(r.n);
  const paymentsPerHour = new Array<number>(24).fill(0);
  const failedPerHour = new Array<number>(24).fill(0);
  for (const r of hourly.rows) {
    const idx = 23 - Math.min(23, Math.max(0, Number(r.h)));
    paymentsPerHour[idx] = Number(r.n);
    failedPerHour[idx] = Number(r.failed);
  }
  const w = Object.fromEntries(webhooks.rows.map((r) => [r.state, Number(r.n)]));
  const o = outbox.rows[0];
  const c = commands.rows[0];
  return {
    paymentsByStatus,
    paymentsPerHour,
    failedPerHour,
    outbox: { pending: Number(o?.pending ?? 0), dead: Number(o?.dead ?? 0), oldestPendingAgeSeconds: o?.age == null ? 0 : Math.max(0, Number(o.age)) },
    webhooks: { retrying: w.retrying ?? 0, waiting: (w.waiting_for_payment ?? 0) + (w.waiting_for_order ?? 0), dead: w.dead ?? 0, expired: w.expired ?? 0 },
    commands: { retrying: Number(c?.retrying ?? 0), dead: Number(c?.dead ?? 0), rejectedToday: Number(c?.rejected ?? 0) },
  };
}

/**
 * Payment repository: rows of `payments`, `payment_aliases`, `payment_status_history` and `psp_objects`
 * (migrations/003_payments.sql). Every lookup is tenant-scoped (flows.md 0 rule 1) except
 * `findPaymentsByTransactionAnyTenant`, used only where no tenant is known (browser redirect).
 * Status values are written only by the use cases after the domain's transition check (states.md 8).
 */
import type { PaymentStatus } from '../domain/payment-status.js';
import { coalescerPerDb, isPool } from './coalesce.js';
import { unplannedArray, type CompanionWrite, type Db, type Queryable, type Tx } from './db.js';
import { outboxInsertCtes, outboxInsertParams, type OutboxInsert } from './outbox.js';
import { finishCommandSql, type FinishedCommandState } from './payment-commands.js';

export type HistoryTrigger = 'sync' | 'command' | 'webhook' | 'redirect' | 'reconciliation';

export interface PaymentRow {
  id: string;
  tenantIdentifier: string;
  transactionId: string;
  orderReference: string | null;
  status: string;
  version: number;
  amount: number;
  currency: string;
  authorizedAmount: number;
  capturedAmount: number;
  pendingCaptureAmount: number;
  releasedAmount: number;
  refundedAmount: number;
  pendingRefundAmount: number;
  paymentMethod: string;
  connector: string;
  mode: 'test' | 'live';
  captureMode: 'manual' | 'automatic';
  orderData: Record<string, unknown>;
  redirectSuccessUrl: string | null;
  redirectCancelUrl: string | null;
  checkoutSummaryPageUrl: string | null;
  localeName: string | null;
  preOrderData: Record<string, unknown> | null;
  pspDetails: Record<string, unknown>;
  /** Opaque connector data (connectors/README.md 2); only the payment's connector reads it. */
  pspData: Record<string, unknown>;
  /** PSP attempt ids of declined attempts already counted (declined-attempts cap). */
  declinedAttempts: string[];
  initializeFingerprint: string | null;
  linkedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface HistoryRow {
  id: number;
  paymentId: string;
  seq: number;
  status: string;
  trigger: HistoryTrigger;
  triggerRef: string | null;
  details: Record<string, unknown> | null;
  createdAt: Date;
}

interface DbPaymentRow {
  id: string;
  tenant_identifier: string;
  transaction_id: string;
  order_reference: string | null;
  status: string;
  version: number;
  amount: number;
  currency: string;
  authorized_amount: number;
  captured_amount: number;
  pending_capture_amount: number;
  released_amount: number;
  refunded_amount: number;
  pending_refund_amount: number;
  payment_method: string;
  connector: string;
  mode: 'test' | 'live';
  capture_mode: string;
  order_data: Record<string, unknown>;
  redirect_success_url: string | null;
  redirect_cancel_url: string | null;
  checkout_summary_page_url: string | null;
  locale_name: string | null;
  pre_order_data: Record<string, unknown> | null;
  psp_details: Record<string, unknown> | null;
  psp_data: Record<string, unknown> | null;
  declined_attempts: string[] | null;
  initialize_fingerprint: string | null;
  linked_at: Date | null;
  created_at: Date;
  updated_at: Date;
  history_seq?: number;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

export function mapPaymentRow(r: DbPaymentRow): PaymentRow {
  return {
    id: r.id,
    tenantIdentifier: r.tenant_identifier,
    transactionId: r.transaction_id,
    orderReference: r.order_reference,
    status: r.status,
    version: num(r.version),
    amount: num(r.amount),
    currency: r.currency,
    authorizedAmount: num(r.authorized_amount),
    capturedAmount: num(r.captured_amount),
    pendingCaptureAmount: num(r.pending_capture_amount),
    releasedAmount: num(r.released_amount),
    refundedAmount: num(r.refunded_amount),
    pendingRefundAmount: num(r.pending_refund_amount),
    paymentMethod: r.payment_method,
    connector: r.connector,
    mode: r.mode,
    captureMode: r.capture_mode === 'automatic' ? 'automatic' : 'manual',
    orderData: r.order_data ?? {},
    redirectSuccessUrl: r.redirect_success_url,
    redirectCancelUrl: r.redirect_cancel_url,
    checkoutSummaryPageUrl: r.checkout_summary_page_url,
    localeName: r.locale_name,
    preOrderData: r.pre_order_data,
    pspDetails: r.psp_details ?? {},
    pspData: r.psp_data ?? {},
    declinedAttempts: Array.isArray(r.declined_attempts) ? r.declined_attempts : [],
    initializeFingerprint: r.initialize_fingerprint,
    linkedAt: r.linked_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * The payment of `tenant` whose current transaction id, or one of its old ids (alias), is `transactionId`, in one
 * statement: the current id first; an alias only when no payment has it as its current id.
 */
export async function findPaymentByTransaction(q: Queryable, tenant: string, transactionId: string, opts: { forUpdate?: boolean } = {}): Promise<PaymentRow | null> {
  const r = await q.query<DbPaymentRow>(`SELECT p.* FROM payments p WHERE ${BY_TRANSACTION}${opts.forUpdate ? ' FOR UPDATE OF p' : ''}`, [tenant, transactionId]);
  return r.rows[0] ? mapPaymentRow(r.rows[0]) : null;
}

/** `p` is the tenant's (`$1`) payment with the current or old transaction id `$2` (index lookups, no OR). */
const BY_TRANSACTION = `p.id = COALESCE(
    (SELECT c.id FROM payments c WHERE c.tenant_identifier = $1 AND c.transaction_id = $2),
    (SELECT a.payment_id FROM payment_aliases a WHERE a.tenant_identifier = $1 AND a.transaction_id = $2))
  AND p.tenant_identifier = $1`;

export async function findPaymentByOrder(q: Queryable, tenant: string, orderReference: string): Promise<PaymentRow | null> {
  const r = await q.query<DbPaymentRow>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, orderReference]);
  return r.rows[0] ? mapPaymentRow(r.rows[0]) : null;
}

/** What an order's payment answers a repeated hosted initialize with (a narrow read: it runs before every new payment). */
export interface OrderPaymentSummary {
  transactionId: string;
  amount: number;
  currency: string;
}

type DbOrderSummary = { transaction_id: string; amount: number | string; currency: string };
const orderSummaryOf = (row: DbOrderSummary): OrderPaymentSummary => ({ transactionId: row.transaction_id, amount: num(row.amount), currency: row.currency });

async function selectOrderPaymentSummary(q: Queryable, tenant: string, orderReference: string): Promise<OrderPaymentSummary | null> {
  const r = await q.query<DbOrderSummary>('SELECT transaction_id, amount, currency FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [
    tenant,
    orderReference,
  ]);
  return r.rows[0] ? orderSummaryOf(r.rows[0]) : null;
}

/**
 * Order look-ups that arrive while one is in flight share the next statement, whatever their tenants (`coalesce.ts`;
 * a lone look-up runs at once and alone). Every initialize-payment asks first whether its order already has a payment:
 * at c=50 this was one statement and one exchange per request of the three an initialize costs.
 */
const orderSummaryCoalescer = coalescerPerDb<{ tenant: string; orderReference: string }, OrderPaymentSummary | null>((db) => ({
  one: (_key, o) => selectOrderPaymentSummary(db, o.tenant, o.orderReference),
  many: async (_key, asks) => {
    const r = await db.query<DbOrderSummary & { tenant_identifier: string; order_reference: string }>(
      `SELECT p.tenant_identifier, p.order_reference, p.transaction_id, p.amount, p.currency
       FROM payments p JOIN unnest(${unplannedArray('$1::text[]')}, ${unplannedArray('$2::text[]')}) AS a(tenant, ref) ON p.tenant_identifier = a.tenant AND p.order_reference = a.ref`,
      [asks.map((a) => a.tenant), asks.map((a) => a.orderReference)],
    );
    const found = new Map(r.rows.map((row) => [`${row.tenant_identifier}\u0000${row.order_reference}`, orderSummaryOf(row)]));
    return asks.map((a) => found.get(`${a.tenant}\u0000${a.orderReference}`) ?? null);
  },
}));

/** The payment of an order, in brief (its transaction id, amount and currency); null when the order has none. */
export async function findOrderPaymentSummary(q: Queryable, tenant: string, orderReference: string): Promise<OrderPaymentSummary | null> {
  return isPool(q) ? orderSummaryCoalescer(q).submit('', { tenant, orderReference }) : selectOrderPaymentSummary(q, tenant, orderReference);
}

export async function findPaymentById(q: Queryable, paymentId: string): Promise<PaymentRow | null> {
  const r = await q.query<DbPaymentRow>('SELECT * FROM payments WHERE id = $1', [paymentId]);
  return r.rows[0] ? mapPaymentRow(r.rows[0]) : null;
}

/** Every payment (of any tenant) with this current or old transaction id. Only for callers that have no tenant (browser redirect). */
export async function findPaymentsByTransactionAnyTenant(q: Queryable, transactionId: string): Promise<PaymentRow[]> {
  const r = await q.query<DbPaymentRow>(
    `SELECT * FROM payments WHERE transaction_id = $1
     UNION
     SELECT p.* FROM payment_aliases a JOIN payments p ON p.id = a.payment_id AND p.tenant_identifier = a.tenant_identifier
     WHERE a.transaction_id = $1`,
    [transactionId],
  );
  return r.rows.map(mapPaymentRow).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

/** Locks the payment row for the rest of `tx` (flows.md 0 rule 2) and returns its current state. Throws if it does not exist. */
export async function lockPayment(tx: Tx, paymentId: string, finish?: CommandFinish | null): Promise<PaymentRow> {
  // With `finish`, the command inbox row is finished (only from received/retrying) in the same statement: a command's
  // outcome transaction locks its payment and finishes its row anyway, and both are decided before it starts.
  const r = finish
    ? await tx.query<DbPaymentRow>(
        `WITH finished AS (${finishCommandSql('$2', '$3', '$4')}) SELECT * FROM payments WHERE id = $1 FOR UPDATE`,
        [paymentId, finish.id, finish.state, finish.reason],
      )
    : await tx.query<DbPaymentRow>('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [paymentId]);
  if (!r.rows[0]) throw new Error(`payment ${paymentId} does not exist`);
  return mapPaymentRow(r.rows[0]);
}

/** The payment of an order, locked (FOR UPDATE) in `tx`; null when the order has none. */
export async function lockPaymentByOrder(tx: Tx, tenant: string, orderReference: string): Promise<PaymentRow | null> {
  const r = await tx.query<DbPaymentRow>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2 FOR UPDATE', [tenant, orderReference]);
  return r.rows[0] ? mapPaymentRow(r.rows[0]) : null;
}

/** A command inbox row `lockPayment` finishes in its statement (only from received/retrying). */
export interface CommandFinish {
  id: string;
  state: FinishedCommandState;
  reason: string | null;
}

export interface NewPayment {
  id: string;
  tenantIdentifier: string;
  transactionId: string;
  orderReference: string | null;
  status: string;
  amount: number;
  currency: string;
  paymentMethod: string;
  connector: string;
  mode: 'test' | 'live';
  captureMode: 'manual' | 'automatic';
  orderData: Record<string, unknown>;
  redirectSuccessUrl?: string | null;
  redirectCancelUrl?: string | null;
  checkoutSummaryPageUrl?: string | null;
  localeName?: string | null;
  preOrderData?: Record<string, unknown> | null;
  pspDetails?: Record<string, unknown>;
  pspData?: Record<string, unknown>;
  initializeFingerprint?: string | null;
}

/**
 * Inserts a payment (version 1). Returns null, writing nothing, when the tenant already has a payment with
 * this transaction id or order reference (unique indexes; a concurrent insert waits for the other to finish).
 */
export async function insertPayment(tx: Tx, p: NewPayment): Promise<PaymentRow | null> {
  const r = await tx.query<DbPaymentRow>(
    `INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, payment_method, connector, mode,
       capture_mode, order_data, redirect_success_url, redirect_cancel_url, checkout_summary_page_url, locale_name, pre_order_data, psp_details,
       initialize_fingerprint, linked_at, psp_data)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, CASE WHEN $4::text IS NULL THEN NULL ELSE now() END, $20::jsonb)
     ON CONFLICT DO NOTHING
     RETURNING *`,
    [...newPaymentParams(p), JSON.stringify(p.pspData ?? {})],
  );
  return r.rows[0] ? mapPaymentRow(r.rows[0]) : null;
}

export interface NewPaymentStored {
  payment: PaymentRow;
  /** Its first status-history row (seq 1). */
  history: HistoryRow;
  /** Whether webhook_inbox holds rows of this PSP object (the transaction id) in one of the asked states. */
  webhooksWaiting: boolean;
  /** The statement recorded the PSP object mapping (new transaction id → this tenant); false when it was already there. */
  pspObjectRecorded: boolean;
}

/**
 * `insertPayment` + the first history row (`appendHistory`) + the PSP object mapping (`recordPspObject`) in
 * one statement, also telling whether webhooks of the new transaction id wait in `webhook_inbox` (in the states
 * `waitingStates`, for `p.connector`). Returns null, writing nothing, when the unique keys are taken (as insertPayment).
 */
export async function insertNewPayment(
  q: Queryable,
  p: NewPayment,
  first: { trigger: HistoryTrigger; ref: string | null; pspObjectKind: string; waitingStates: readonly string[] },
  /** The messages announcing the new payment, built from the row as it will be stored (written only if it is). */
  announce: (stored: { payment: PaymentRow; history: HistoryRow }) => OutboxInsert[] = () => [],
): Promise<NewPaymentStored | null> {
  // The row and its first history row as they will be stored (timestamps set here so the messages carry them). The
  // statement returns only what the database decides (the history row's id, the two flags): returning the whole row
  // cost a 33-column row description and the parsing of every column on each payment (README "Benchmark").
  const createdAt = new Date();
  const expected = { payment: newPaymentRow(p, createdAt), history: { id: 0, paymentId: p.id, seq: 1, status: p.status, trigger: first.trigger, triggerRef: first.ref, details: null, createdAt } };
  const write: NewPaymentWrite = { p, first, messages: announce(expected), createdAt };
  // On the pool, concurrent payments of one tenant share a statement (group commit, `coalesce.ts`); in a caller's
  // transaction the statement is the caller's.
  const row = isPool(q) ? await newPaymentCoalescer(q).submit(`${p.tenantIdentifier}\u0000${first.waitingStates.join(',')}`, write) : await insertOneNewPayment(q, write);
  if (!row) return null;
  return {
    payment: expected.payment,
    history: { ...expected.history, id: Number(row.h_id) },
    webhooksWaiting: row.webhooks_waiting === true,
    pspObjectRecorded: row.psp_object_recorded === true,
  };
}

interface NewPaymentWrite {
  p: NewPayment;
  first: { trigger: HistoryTrigger; ref: string | null; pspObjectKind: string; waitingStates: readonly string[] };
  messages: OutboxInsert[];
  createdAt: Date;
}

/** What the database decided for one new payment; null: its unique keys were taken, nothing written. */
type NewPaymentOutcome = { h_id: number | string; webhooks_waiting: boolean; psp_object_recorded: boolean } | null;

const newPaymentCoalescer = coalescerPerDb<NewPaymentWrite, NewPaymentOutcome>((db) => ({
  one: (_key, w) => insertOneNewPayment(db, w),
  many: (_key, ws) => insertNewPayments(db, ws),
  keysOf: (w) => [`id\u0000${w.p.id}`, `tx\u0000${w.p.transactionId}`, ...(w.p.orderReference === null ? [] : [`order\u0000${w.p.orderReference}`])],
}));

async function insertOneNewPayment(q: Queryable, w: NewPaymentWrite): Promise<NewPaymentOutcome> {
  const r = await q.query<NonNullable<NewPaymentOutcome>>(INSERT_NEW_PAYMENT_SQL, [
    ...newPaymentParams(w.p),
    w.first.trigger,
    w.first.ref,
    w.first.pspObjectKind,
    [...w.first.waitingStates],
    JSON.stringify(w.p.pspData ?? {}),
    w.createdAt,
    ...outboxInsertParams(w.messages),
  ]);
  return r.rows[0] ?? null;
}

/**
 * Several new payments of one tenant (same `waitingStates`) in one statement: each as `INSERT_NEW_PAYMENT_SQL`
 * writes it (payment, first history row, PSP object, its messages on the tenant's clock in the given order), each
 * written or skipped by its own unique keys. Payments that share a key never meet in one batch (the coalescer's
 * `keysOf` holds the later one for the next batch, which finds the first); a batch that does is refused.
 */
async function insertNewPayments(db: Db, ws: readonly NewPaymentWrite[]): Promise<NewPaymentOutcome[]> {
  const ids = new Set<string>();
  const txIds = new Set<string>();
  const orders = new Set<string>();
  for (const w of ws) {
    if (w.p.tenantIdentifier !== ws[0]!.p.tenantIdentifier) throw new Error('a batch of new payments holds one tenant');
    if (ids.has(w.p.id) || txIds.has(w.p.transactionId) || (w.p.orderReference !== null && orders.has(w.p.orderReference))) throw new Error('new payments of one batch share a key');
    ids.add(w.p.id);
    txIds.add(w.p.transactionId);
    if (w.p.orderReference !== null) orders.add(w.p.orderReference);
  }
  const rows = ws.map((w) => newPaymentParams(w.p));
  const column = (i: number): unknown[] => rows.map((r) => r[i]);
  const messages = ws.flatMap((w) => w.messages.map((m) => ({ m, owner: w.p.id })));
  const r = await db.query<NonNullable<NewPaymentOutcome> & { n: number | string }>(INSERT_NEW_PAYMENTS_SQL, [
    ws[0]!.p.tenantIdentifier,
    [...ws[0]!.first.waitingStates],
    ...[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18].map(column),
    ws.map((w) => w.first.trigger),
    ws.map((w) => w.first.ref),
    ws.map((w) => w.first.pspObjectKind),
    ws.map((w) => JSON.stringify(w.p.pspData ?? {})),
    ws.map((w) => w.createdAt.toISOString()),
    ...outboxInsertParams(messages.map((x) => x.m)),
    messages.map((x) => x.owner),
  ]);
  const out: NewPaymentOutcome[] = ws.map(() => null);
  for (const row of r.rows) out[Number(row.n) - 1] = row;
  return out;
}

/** `insertNewPayment`'s statement (one text, so its prepared name is found without building it). */
const INSERT_NEW_PAYMENT_SQL = `WITH p AS (
       INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, payment_method, connector, mode,
         capture_mode, order_data, redirect_success_url, redirect_cancel_url, checkout_summary_page_url, locale_name, pre_order_data, psp_details,
         initialize_fingerprint, linked_at, psp_data, created_at, updated_at, history_seq)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, CASE WHEN $4::text IS NULL THEN NULL ELSE $25::timestamptz END,
         $24::jsonb, $25::timestamptz, $25::timestamptz, 1)
       ON CONFLICT DO NOTHING
       RETURNING id, tenant_identifier, transaction_id, connector, status),
     h AS (
       INSERT INTO payment_status_history (payment_id, seq, status, trigger, trigger_ref, created_at)
       SELECT id, 1, status, $20, $21, $25::timestamptz FROM p
       RETURNING id),
     o AS (
       INSERT INTO psp_objects (connector, psp_object_id, tenant_identifier, kind)
       SELECT connector, transaction_id, tenant_identifier, $22 FROM p
       ON CONFLICT (connector, psp_object_id) DO NOTHING
       RETURNING 1),
     ${outboxInsertCtes('$2', 26, 'EXISTS (SELECT 1 FROM p)')}
     SELECT h.id AS h_id,
       EXISTS (SELECT 1 FROM webhook_inbox w
               WHERE w.tenant_identifier = p.tenant_identifier AND w.connector = p.connector AND w.psp_object_id = p.transaction_id
                 AND w.state = ANY($23::text[])) AS webhooks_waiting,
       EXISTS (SELECT 1 FROM o) AS psp_object_recorded
     FROM p CROSS JOIN h`;

/**
 * `insertNewPayments`' statement: `INSERT_NEW_PAYMENT_SQL` over arrays ($1 the tenant, $2 the waiting states, $3..$25
 * one array per column of the payments, $26..$32 the messages with their owners); one result row per payment written,
 * `n` its position.
 */
const INSERT_NEW_PAYMENTS_SQL = `WITH input AS (
       SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[],
         $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
         $21::text[], $22::text[], $23::text[], $24::text[], $25::timestamptz[])
       WITH ORDINALITY AS x(id, transaction_id, order_reference, status, amount, currency, payment_method, connector, mode, capture_mode,
         order_data, redirect_success_url, redirect_cancel_url, checkout_summary_page_url, locale_name, pre_order_data, psp_details,
         initialize_fingerprint, trig, trig_ref, kind, psp_data, at, n)),
     p AS (
       INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, payment_method, connector, mode,
         capture_mode, order_data, redirect_success_url, redirect_cancel_url, checkout_summary_page_url, locale_name, pre_order_data, psp_details,
         initialize_fingerprint, linked_at, psp_data, created_at, updated_at, history_seq)
       SELECT id, $1, transaction_id, order_reference, status, amount, currency, payment_method, connector, mode, capture_mode, order_data::jsonb,
         redirect_success_url, redirect_cancel_url, checkout_summary_page_url, locale_name, pre_order_data::jsonb, psp_details::jsonb,
         initialize_fingerprint, CASE WHEN order_reference IS NULL THEN NULL ELSE at END, psp_data::jsonb, at, at, 1
       FROM input ORDER BY n
       ON CONFLICT DO NOTHING
       RETURNING id, transaction_id, connector, status),
     h AS (
       INSERT INTO payment_status_history (payment_id, seq, status, trigger, trigger_ref, created_at)
       SELECT p.id, 1, p.status, i.trig, i.trig_ref, i.at FROM p JOIN input i ON i.id = p.id ORDER BY i.n
       RETURNING id, payment_id),
     o AS (
       INSERT INTO psp_objects (connector, psp_object_id, tenant_identifier, kind)
       SELECT p.connector, p.transaction_id, $1, i.kind FROM p JOIN input i ON i.id = p.id ORDER BY i.n
       ON CONFLICT (connector, psp_object_id) DO NOTHING
       RETURNING connector, psp_object_id),
     ${outboxInsertCtes('$1', 26, 'i.owner IN (SELECT id FROM p)', true)}
     SELECT i.n, h.id AS h_id,
       EXISTS (SELECT 1 FROM webhook_inbox w
               WHERE w.tenant_identifier = $1 AND w.connector = p.connector AND w.psp_object_id = p.transaction_id
                 AND w.state = ANY($2::text[])) AS webhooks_waiting,
       EXISTS (SELECT 1 FROM o WHERE o.connector = p.connector AND o.psp_object_id = p.transaction_id) AS psp_object_recorded
     FROM p JOIN h ON h.payment_id = p.id JOIN input i ON i.id = p.id`;

/** The row `insertNewPayment` stores for `p` (defaults of migrations/003_payments.sql), created at `at`. */
function newPaymentRow(p: NewPayment, at: Date): PaymentRow {
  return {
    id: p.id,
    tenantIdentifier: p.tenantIdentifier,
    transactionId: p.transactionId,
    orderReference: p.orderReference,
    status: p.status,
    version: 1,
    amount: p.amount,
    currency: p.currency,
    authorizedAmount: 0,
    capturedAmount: 0,
    pendingCaptureAmount: 0,
    releasedAmount: 0,
    refundedAmount: 0,
    pendingRefundAmount: 0,
    paymentMethod: p.paymentMethod,
    connector: p.connector,
    mode: p.mode,
    captureMode: p.captureMode,
    orderData: p.orderData,
    redirectSuccessUrl: p.redirectSuccessUrl ?? null,
    redirectCancelUrl: p.redirectCancelUrl ?? null,
    checkoutSummaryPageUrl: p.checkoutSummaryPageUrl ?? null,
    localeName: p.localeName ?? null,
    preOrderData: p.preOrderData ?? null,
    pspDetails: p.pspDetails ?? {},
    pspData: p.pspData ?? {},
    declinedAttempts: [],
    initializeFingerprint: p.initializeFingerprint ?? null,
    linkedAt: p.orderReference === null ? null : at,
    createdAt: at,
    updatedAt: at,
  };
}

/** Parameters $1..$19 of the payment insert. */
function newPaymentParams(p: NewPayment): unknown[] {
  return [
    p.id,
    p.tenantIdentifier,
    p.transactionId,
    p.orderReference,
    p.status,
    p.amount,
    p.currency,
    p.paymentMethod,
    p.connector,
    p.mode,
    p.captureMode,
    JSON.stringify(p.orderData),
    p.redirectSuccessUrl ?? null,
    p.redirectCancelUrl ?? null,
    p.checkoutSummaryPageUrl ?? null,
    p.localeName ?? null,
    p.preOrderData == null ? null : JSON.stringify(p.preOrderData),
    JSON.stringify(p.pspDetails ?? {}),
    p.initializeFingerprint ?? null,
  ];
}

/** Fields a write may change. The status must come from the domain's transition check. */
export interface PaymentChanges {
  transactionId?: string;
  orderReference?: string | null;
  status?: string;
  amount?: number;
  currency?: string;
  authorizedAmount?: number;
  capturedAmount?: number;
  pendingCaptureAmount?: number;
  releasedAmount?: number;
  refundedAmount?: number;
  pendingRefundAmount?: number;
  orderData?: Record<string, unknown>;
  redirectSuccessUrl?: string | null;
  redirectCancelUrl?: string | null;
  checkoutSummaryPageUrl?: string | null;
  localeName?: string | null;
  preOrderData?: Record<string, unknown> | null;
  pspDetails?: Record<string, unknown>;
  pspData?: Record<string, unknown>;
  declinedAttempts?: string[];
  initializeFingerprint?: string | null;
  linkedAt?: Date | null;
}

const COLUMN_OF: Record<keyof PaymentChanges, string> = {
  transactionId: 'transaction_id',
  orderReference: 'order_reference',
  status: 'status',
  amount: 'amount',
  currency: 'currency',
  authorizedAmount: 'authorized_amount',
  capturedAmount: 'captured_amount',
  pendingCaptureAmount: 'pending_capture_amount',
  releasedAmount: 'released_amount',
  refundedAmount: 'refunded_amount',
  pendingRefundAmount: 'pending_refund_amount',
  orderData: 'order_data',
  redirectSuccessUrl: 'redirect_success_url',
  redirectCancelUrl: 'redirect_cancel_url',
  checkoutSummaryPageUrl: 'checkout_summary_page_url',
  localeName: 'locale_name',
  preOrderData: 'pre_order_data',
  pspDetails: 'psp_details',
  pspData: 'psp_data',
  declinedAttempts: 'declined_attempts',
  initializeFingerprint: 'initialize_fingerprint',
  linkedAt: 'linked_at',
};
const JSON_FIELDS = new Set<keyof PaymentChanges>(['orderData', 'preOrderData', 'pspDetails', 'pspData', 'declinedAttempts']);

/** Applies `changes` to the (locked) payment, increments `version` and returns the row after the write; `alongside` goes in the same statement. */
export async function updatePayment(tx: Tx, paymentId: string, changes: PaymentChanges, alongside?: CompanionWrite): Promise<PaymentRow> {
  const { sets, params } = paymentSets(paymentId, changes);
  const sql = alongside ? `WITH ${alongside.cte(params.length + 1)} UPDATE payments SET ${sets} WHERE id = $1 RETURNING *` : `UPDATE payments SET ${sets} WHERE id = $1 RETURNING *`;
  const r = await tx.query<DbPaymentRow>(sql, alongside ? [...params, ...alongside.params] : params);
  if (!r.rows[0]) throw new Error(`payment ${paymentId} does not exist`);
  return mapPaymentRow(r.rows[0]);
}

function paymentSets(paymentId: string, changes: PaymentChanges, at?: Date): { sets: string; params: unknown[] } {
  const sets: string[] = [];
  const params: unknown[] = [paymentId];
  for (const [key, value] of Object.entries(changes) as Array<[keyof PaymentChanges, unknown]>) {
    if (value === undefined) continue;
    const column = COLUMN_OF[key];
    if (!column) throw new Error(`unknown payment field ${String(key)}`);
    params.push(JSON_FIELDS.has(key) && value !== null ? JSON.stringify(value) : value);
    sets.push(`${column} = $${params.length}`);
  }
  sets.push('version = version + 1');
  if (at) {
    params.push(at);
    sets.push(`updated_at = $${params.length}::timestamptz`);
  } else sets.push('updated_at = now()');
  return { sets: sets.join(', '), params };
}

export interface HistoryEntry {
  status: string;
  trigger: HistoryTrigger;
  ref: string | null;
  details?: Record<string, unknown> | null;
}

/** The next history sequence number, from the payment's counter or its rows (rows written before the counter existed). */
const NEXT_SEQ = `GREATEST(history_seq, (SELECT COALESCE(MAX(seq), 0) FROM payment_status_history WHERE payment_id = $1)) + 1`;

/**
 * `updatePayment`, then (when `entry` is given) `appendHistory`, then (when `withHistory`) `listHistory`, in one
 * statement. Call with the payment row locked.
 *
 * With `announce` (and an `entry`): the caller knows the payment's history (`lockPaymentWithHistory`) and built the
 * row, the history entry (sequence number `announce.seq`, time `announce.at`) and the messages announcing them
 * beforehand; the messages are written by the same statement (`outboxInsertCtes`).
 */
export async function updatePaymentRecording(
  tx: Tx,
  paymentId: string,
  changes: PaymentChanges,
  entry: HistoryEntry | null,
  withHistory: boolean,
  announce?: { at: Date; seq: number; outbox: readonly OutboxInsert[] },
  /** Another repository's write that goes with this change (the record it settles), in the same statement. */
  alongside?: CompanionWrite,
): Promise<{ payment: PaymentRow; entry: HistoryRow | null; history: HistoryRow[] }> {
  const { sets, params } = paymentSets(paymentId, changes, announce?.at);
  let setsAll = sets;
  if (entry && announce) {
    params.push(announce.seq);
    setsAll += `, history_seq = $${params.length}::integer`;
  } else if (entry) setsAll += `, history_seq = ${NEXT_SEQ}`;
  const ctes = [`u AS (UPDATE payments SET ${setsAll} WHERE id = $1 RETURNING *)`];
  const columns = ['u.*'];
  if (entry) {
    params.push(entry.status, entry.trigger, entry.ref, entry.details == null ? null : JSON.stringify(entry.details));
    const n = params.length;
    const createdAt = announce ? `$${params.push(announce.at)}::timestamptz` : 'now()';
    ctes.push(`h AS (
      INSERT INTO payment_status_history (payment_id, seq, status, trigger, trigger_ref, details, created_at)
      SELECT u.id, u.history_seq, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb, ${createdAt} FROM u
      RETURNING *)`);
    columns.push('(SELECT row_to_json(h) FROM h) AS history_new');
  }
  if (announce && announce.outbox.length > 0) {
    const tenantParam = `$${params.push(announce.outbox[0]!.tenantIdentifier)}`;
    ctes.push(outboxInsertCtes(tenantParam, params.length + 1, 'EXISTS (SELECT 1 FROM u)'));
    params.push(...outboxInsertParams(announce.outbox));
  }
  if (alongside) {
    ctes.push(alongside.cte(params.length + 1));
    params.push(...alongside.params);
  }
  // the statement's snapshot does not hold the row `h` inserts: the old rows, then the new one
  if (withHistory) columns.push(`(SELECT COALESCE(json_agg(x ORDER BY x.seq), '[]'::json) FROM payment_status_history x WHERE x.payment_id = $1) AS history_old`);
  const r = await tx.query<DbPaymentRow & { history_new?: DbHistoryJson | null; history_old?: DbHistoryJson[] }>(`WITH ${ctes.join(', ')} SELECT ${columns.join(', ')} FROM u`, params);
  const row = r.rows[0];
  if (!row) throw new Error(`payment ${paymentId} does not exist`);
  const created = row.history_new ? historyFromJson(row.history_new) : null;
  const history = withHistory ? [...(row.history_old ?? []).map(historyFromJson), ...(created ? [created] : [])] : [];
  return { payment: mapPaymentRow(row), entry: created, history };
}

/** A payment locked in the caller's transaction, with its status history (oldest first). */
export interface LockedPayment {
  payment: PaymentRow;
  history: HistoryRow[];
}

const WITH_HISTORY = `(SELECT COALESCE(json_agg(x ORDER BY x.seq), '[]'::json) FROM payment_status_history x WHERE x.payment_id = p.id) AS history_all`;

/**
 * The row read with its lock, and its history. The history comes from the statement's snapshot, taken before the lock
 * was granted; when a transaction that held the lock wrote history meanwhile (the row's `history_seq`, read after the
 * lock, says so), or the counter lags the rows, the history is read again.
 */
async function lockedWithHistory(tx: Tx, row: DbPaymentRow & { history_all: DbHistoryJson[] }): Promise<LockedPayment> {
  const { history_all, ...rest } = row;
  const payment = mapPaymentRow(rest);
  const history = history_all.map(historyFromJson);
  if ((history.at(-1)?.seq ?? 0) === num(row.history_seq ?? 0)) return { payment, history };
  return { payment, history: await listHistory(tx, payment.id) };
}

/** `lockPayment` with the payment's history (`LockedPayment`); `finish` as in `lockPayment`. */
export async function lockPaymentWithHistory(tx: Tx, paymentId: string, finish?: CommandFinish | null): Promise<LockedPayment> {
  const finishing = finish ? `WITH finished AS (${finishCommandSql('$2', '$3', '$4')}) ` : '';
  const r = await tx.query<DbPaymentRow & { history_all: DbHistoryJson[] }>(
    `${finishing}SELECT p.*, ${WITH_HISTORY} FROM payments p WHERE p.id = $1 FOR UPDATE OF p`,
    finish ? [paymentId, finish.id, finish.state, finish.reason] : [paymentId],
  );
  if (!r.rows[0]) throw new Error(`payment ${paymentId} does not exist`);
  return lockedWithHistory(tx, r.rows[0]);
}

/** A record of a payment (capture/cancel or refund) that `lockPaymentWithHistoryAndRecord` locks with it. */
export interface RecordLock<R> {
  table: 'payment_operations' | 'refunds';
  /** The record from its row as `row_to_json` gives it. */
  map(row: Record<string, unknown>): R;
}

/**
 * `lockPaymentWithHistory`, and one of the payment's records locked after it in the same statement (`FOR UPDATE OF p,
 * r`: the rows are locked in that order, and a row changed while the lock was awaited is returned as committed by the
 * transaction that held it). `record` is null when the payment has no record of that id.
 */
export async function lockPaymentWithHistoryAndRecord<R>(
  tx: Tx,
  paymentId: string,
  finish: CommandFinish | null,
  lock: RecordLock<R>,
  recordId: string,
): Promise<LockedPayment & { record: R | null }> {
  const finishing = finish ? `WITH finished AS (${finishCommandSql('$3', '$4', '$5')}) ` : '';
  const r = await tx.query<DbPaymentRow & { history_all: DbHistoryJson[]; record_row: Record<string, unknown> }>(
    `${finishing}SELECT p.*, ${WITH_HISTORY}, row_to_json(r) AS record_row
     FROM payments p JOIN ${lock.table} r ON r.id = $2 AND r.payment_id = p.id WHERE p.id = $1 FOR UPDATE OF p, r`,
    finish ? [paymentId, recordId, finish.id, finish.state, finish.reason] : [paymentId, recordId],
  );
  const row = r.rows[0];
  // no such record (the command, if any, was finished by the statement's CTE all the same)
  if (!row) return { ...(await lockPaymentWithHistory(tx, paymentId)), record: null };
  const { record_row, ...rest } = row;
  return { ...(await lockedWithHistory(tx, rest)), record: lock.map(record_row) };
}

/** `findPaymentByTransaction` (`forUpdate`) with the payment's history (`LockedPayment`), in one statement; null when there is none. */
export async function lockPaymentByTransactionWithHistory(tx: Tx, tenant: string, transactionId: string): Promise<LockedPayment | null> {
  const r = await tx.query<DbPaymentRow & { history_all: DbHistoryJson[] }>(`SELECT p.*, ${WITH_HISTORY} FROM payments p WHERE ${BY_TRANSACTION} FOR UPDATE OF p`, [tenant, transactionId]);
  return r.rows[0] ? lockedWithHistory(tx, r.rows[0]) : null;
}

type DbHistoryJson = Omit<DbHistoryRow, 'created_at'> & { created_at: string };
const historyFromJson = (h: DbHistoryJson): HistoryRow => mapHistoryRow({ ...h, created_at: new Date(h.created_at) });

/** Appends a status-history row (states.md 1.5) with the next per-payment sequence number. Call with the payment row locked. */
export async function appendHistory(
  tx: Tx,
  paymentId: string,
  status: string,
  trigger: HistoryTrigger,
  ref: string | null,
  details?: Record<string, unknown> | null,
): Promise<HistoryRow> {
  const r = await tx.query<DbHistoryRow>(
    `WITH s AS (UPDATE payments SET history_seq = ${NEXT_SEQ} WHERE id = $1 RETURNING history_seq)
     INSERT INTO payment_status_history (payment_id, seq, status, trigger, trigger_ref, details)
     SELECT $1, s.history_seq, $2, $3, $4, $5 FROM s
     RETURNING *`,
    [paymentId, status, trigger, ref, details == null ? null : JSON.stringify(details)],
  );
  return mapHistoryRow(r.rows[0]!);
}

interface DbHistoryRow {
  id: number;
  payment_id: string;
  seq: number;
  status: string;
  trigger: HistoryTrigger;
  trigger_ref: string | null;
  details: Record<string, unknown> | null;
  created_at: Date;
}

function mapHistoryRow(r: DbHistoryRow): HistoryRow {
  return {
    id: num(r.id),
    paymentId: r.payment_id,
    seq: num(r.seq),
    status: r.status,
    trigger: r.trigger,
    triggerRef: r.trigger_ref,
    details: r.details,
    createdAt: r.created_at,
  };
}

/** The payment's history, oldest first. */
export async function listHistory(q: Queryable, paymentId: string): Promise<HistoryRow[]> {
  const r = await q.query<DbHistoryRow>('SELECT * FROM payment_status_history WHERE payment_id = $1 ORDER BY seq', [paymentId]);
  return r.rows.map(mapHistoryRow);
}

/** Keeps an old transaction id resolving to the payment (pre-order amount change with a new PSP id). */
export async function addAlias(tx: Tx, tenant: string, transactionId: string, paymentId: string): Promise<void> {
  await tx.query(
    `INSERT INTO payment_aliases (tenant_identifier, transaction_id, payment_id) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_identifier, transaction_id) DO NOTHING`,
    [tenant, transactionId, paymentId],
  );
}

/** Records that the app created this PSP object for `tenant` (webhook attribution, flows.md 12 step 3). */
export async function recordPspObject(tx: Queryable, connector: string, pspObjectId: string, tenant: string, kind: string): Promise<void> {
  await tx.query(
    `INSERT INTO psp_objects (connector, psp_object_id, tenant_identifier, kind) VALUES ($1, $2, $3, $4)
     ON CONFLICT (connector, psp_object_id) DO NOTHING`,
    [connector, pspObjectId, tenant, kind],
  );
}

export async function tenantForPspObject(q: Queryable, connector: string, pspObjectId: string): Promise<string | null> {
  const r = await q.query<{ tenant_identifier: string }>('SELECT tenant_identifier FROM psp_objects WHERE connector = $1 AND psp_object_id = $2', [
    connector,
    pspObjectId,
  ]);
  return r.rows[0]?.tenant_identifier ?? null;
}

/** The old transaction ids (aliases) of a payment. */
export async function listAliasTransactionIds(q: Queryable, tenant: string, paymentId: string): Promise<string[]> {
  const r = await q.query<{ transaction_id: string }>('SELECT transaction_id FROM payment_aliases WHERE tenant_identifier = $1 AND payment_id = $2', [tenant, paymentId]);
  return r.rows.map((row) => row.transaction_id);
}

/**
 * Pre-order payments never linked to an order (no order reference, status `new`) created before `createdBefore`, of
 * tenants not disconnected, oldest first, except `skipIds`.
 */
export async function listAbandonedPreOrderPayments(
  q: Queryable,
  createdBefore: Date,
  skipIds: readonly string[],
  limit: number,
): Promise<Array<{ id: string; tenant_identifier: string }>> {
  const r = await q.query<{ id: string; tenant_identifier: string }>(
    `SELECT p.id, p.tenant_identifier FROM payments p JOIN tenants t ON t.tenant_identifier = p.tenant_identifier
     WHERE p.order_reference IS NULL AND p.status = 'new' AND p.created_at < $1 AND t.status <> 'DISCONNECTED'
       AND NOT (p.id = ANY($2::text[]))
     ORDER BY p.created_at LIMIT ${Math.trunc(limit)}`,
    [createdBefore, [...skipIds]],
  );
  return r.rows;
}

/**
 * Whether the tenant has an open payment (sync-api.md 4.2): an order-linked payment in one of `openStatuses` or with a
 * `pending`/`processing` refund, or a `pending` transfer.
 */
export async function tenantHasOpenPayments(q: Queryable, tenant: string, openStatuses: readonly PaymentStatus[]): Promise<boolean> {
  const r = await q.query<{ open: boolean }>(
    `SELECT (
       EXISTS (SELECT 1 FROM payments p
               WHERE p.tenant_identifier = $1 AND p.order_reference IS NOT NULL
                 AND (p.status = ANY($2::text[])
                      OR EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id AND r.tenant_identifier = $1 AND r.status IN ('pending', 'processing'))))
       OR EXISTS (SELECT 1 FROM transfers tr WHERE tr.tenant_identifier = $1 AND tr.status = 'pending')
     ) AS open`,
    [tenant, [...openStatuses]],
  );
  return r.rows[0]?.open === true;
}

/** Id of the newest stored outgoing message `messageName` of the payment (ordering key `<tenant>/payment/<id>`), if any. */
export async function findLatestPaymentMessageId(q: Queryable, tenant: string, paymentId: string, messageName: string): Promise<string | null> {
  const r = await q.query<{ id: string }>(
    'SELECT id FROM outbox WHERE tenant_identifier = $1 AND ordering_key = $2 AND message_name = $3 ORDER BY seq DESC LIMIT 1',
    [tenant, `${tenant}/payment/${paymentId}`, messageName],
  );
  return r.rows[0]?.id ?? null;
}

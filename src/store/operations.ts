/**
 * Capture/cancel records (`payment_operations`) and refund records (`refunds`), migrations/003_payments.sql.
 * A record is stored `pending` and committed before its PSP call; its id is the PSP idempotency key (flows.md 0 rule 3).
 * Status columns are written only after the domain's transition checks (operationTransition, refundTransition).
 */
import type { OperationKind, OperationRecord, OperationStatus } from '../domain/capture.js';
import type { RefundRecord, RefundStatus } from '../domain/refund.js';
import type { CompanionWrite, Queryable, Tx } from './db.js';

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const ids = (v: unknown): number[] => (Array.isArray(v) ? v.map(num).filter((n) => Number.isSafeInteger(n)) : []);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

export interface OperationRow extends OperationRecord {
  paymentId: string;
  tenantIdentifier: string;
  pspReference: string | null;
  failureReason: string | null;
  commandId: string | null;
  resultMessageIds: string[];
  attempts: number;
  nextAttemptAt: Date;
  createdAt: Date;
}

interface DbOperation {
  id: string;
  payment_id: string;
  tenant_identifier: string;
  kind: OperationKind;
  item_key: string;
  order_item_ids: unknown;
  amount: number;
  status: OperationStatus;
  psp_reference: string | null;
  failure_reason: string | null;
  command_id: string | null;
  result_message_ids: unknown;
  attempts: number;
  next_attempt_at: Date;
  created_at: Date;
}

function mapOperation(r: DbOperation): OperationRow {
  return {
    id: r.id,
    kind: r.kind,
    itemKey: r.item_key,
    orderItemIds: ids(r.order_item_ids),
    amount: num(r.amount),
    status: r.status,
    paymentId: r.payment_id,
    tenantIdentifier: r.tenant_identifier,
    pspReference: r.psp_reference,
    failureReason: r.failure_reason,
    commandId: r.command_id,
    resultMessageIds: strs(r.result_message_ids),
    attempts: num(r.attempts),
    nextAttemptAt: new Date(r.next_attempt_at),
    createdAt: new Date(r.created_at),
  };
}

/** Every capture/cancel record of the payment, oldest first. */
export async function listOperations(q: Queryable, paymentId: string): Promise<OperationRow[]> {
  const r = await q.query<DbOperation>('SELECT * FROM payment_operations WHERE payment_id = $1 ORDER BY created_at, id', [paymentId]);
  return r.rows.map(mapOperation);
}

export async function getOperation(q: Queryable, id: string, opts: { forUpdate?: boolean } = {}): Promise<OperationRow | null> {
  const r = await q.query<DbOperation>(`SELECT * FROM payment_operations WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0] ? mapOperation(r.rows[0]) : null;
}

export interface NewOperation {
  id: string;
  paymentId: string;
  tenantIdentifier: string;
  kind: OperationKind;
  itemKey: string;
  orderItemIds: number[];
  amount: number;
  status: OperationStatus;
  commandId: string | null;
  /** When the reconciliation job may first look at a pending record (lease for the caller's own PSP call). */
  nextAttemptAt?: Date;
  resultMessageIds?: string[];
}

/**
 * `insertOperation` as a part of the statement that writes the payment change it goes with (a capture's pending amount).
 * Returns the write and the row it stores, but for `createdAt`: the database's transaction time (records of a payment
 * are ordered by it), here `at` (the caller's clock, close to it).
 */
export function operationInsertWrite(o: NewOperation, at: Date): { write: CompanionWrite; row: OperationRow } {
  const nextAttemptAt = o.nextAttemptAt ?? at;
  const params = [o.id, o.paymentId, o.tenantIdentifier, o.kind, o.itemKey, JSON.stringify(o.orderItemIds), o.amount, o.status, o.commandId, nextAttemptAt, JSON.stringify(o.resultMessageIds ?? [])];
  return {
    write: {
      cte: (n) => {
        const $ = (i: number): string => `$${n + i}`;
        return `operation_insert AS (
          INSERT INTO payment_operations (id, payment_id, tenant_identifier, kind, item_key, order_item_ids, amount, status, command_id, next_attempt_at, result_message_ids)
          VALUES (${$(0)}, ${$(1)}, ${$(2)}, ${$(3)}, ${$(4)}, ${$(5)}::jsonb, ${$(6)}::bigint, ${$(7)}, ${$(8)}, ${$(9)}::timestamptz, ${$(10)}::jsonb))`;
      },
      params,
    },
    row: {
      id: o.id,
      kind: o.kind,
      itemKey: o.itemKey,
      orderItemIds: [...o.orderItemIds],
      amount: o.amount,
      status: o.status,
      paymentId: o.paymentId,
      tenantIdentifier: o.tenantIdentifier,
      pspReference: null,
      failureReason: null,
      commandId: o.commandId,
      resultMessageIds: [...(o.resultMessageIds ?? [])],
      attempts: 0,
      nextAttemptAt,
      createdAt: at,
    },
  };
}

export async function insertOperation(tx: Tx, o: NewOperation): Promise<OperationRow> {
  const r = await tx.query<DbOperation>(
    `INSERT INTO payment_operations (id, payment_id, tenant_identifier, kind, item_key, order_item_ids, amount, status, command_id, next_attempt_at, result_message_ids)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
    [
      o.id,
      o.paymentId,
      o.tenantIdentifier,
      o.kind,
      o.itemKey,
      JSON.stringify(o.orderItemIds),
      o.amount,
      o.status,
      o.commandId,
      o.nextAttemptAt ?? new Date(),
      JSON.stringify(o.resultMessageIds ?? []),
    ],
  );
  return mapOperation(r.rows[0]!);
}

export interface OperationChanges {
  status?: OperationStatus;
  pspReference?: string | null;
  failureReason?: string | null;
  resultMessageIds?: string[];
  attempts?: number;
  nextAttemptAt?: Date;
}

export async function updateOperation(tx: Tx, id: string, c: OperationChanges): Promise<void> {
  await tx.query(`UPDATE payment_operations SET ${operationSets(2)} WHERE id = $1`, [id, ...operationParams(c)]);
}

const operationSets = (n: number): string => `
       status = COALESCE($${n}, status),
       psp_reference = COALESCE($${n + 1}, psp_reference),
       failure_reason = COALESCE($${n + 2}, failure_reason),
       result_message_ids = COALESCE($${n + 3}::jsonb, result_message_ids),
       attempts = COALESCE($${n + 4}::integer, attempts),
       next_attempt_at = COALESCE($${n + 5}::timestamptz, next_attempt_at),
       updated_at = now()`;
const operationParams = (c: OperationChanges): unknown[] => [
  c.status ?? null,
  c.pspReference ?? null,
  c.failureReason ?? null,
  c.resultMessageIds ? JSON.stringify(c.resultMessageIds) : null,
  c.attempts ?? null,
  c.nextAttemptAt ?? null,
];

/** `updateOperation` as a part of the statement that writes the payment change it goes with. */
export function operationUpdateWrite(id: string, c: OperationChanges): CompanionWrite {
  return { cte: (n) => `operation_update AS (UPDATE payment_operations SET ${operationSets(n + 1)} WHERE id = $${n})`, params: [id, ...operationParams(c)] };
}

// ---- refunds ----

export interface RefundRow extends RefundRecord {
  paymentId: string;
  tenantIdentifier: string;
  currency: string;
  statusSeq: number;
  pspRefundId: string | null;
  failureReason: string | null;
  commandId: string | null;
  resultMessageIds: string[];
  attempts: number;
  nextAttemptAt: Date;
  createdAt: Date;
}

interface DbRefund {
  id: string;
  payment_id: string;
  tenant_identifier: string;
  item_key: string;
  order_item_ids: unknown;
  amount: number;
  currency: string;
  status: RefundStatus;
  status_seq: number;
  psp_refund_id: string | null;
  failure_reason: string | null;
  command_id: string | null;
  result_message_ids: unknown;
  attempts: number;
  next_attempt_at: Date;
  created_at: Date;
}

function mapRefund(r: DbRefund): RefundRow {
  return {
    id: r.id,
    itemKey: r.item_key,
    orderItemIds: ids(r.order_item_ids),
    amount: num(r.amount),
    status: r.status,
    paymentId: r.payment_id,
    tenantIdentifier: r.tenant_identifier,
    currency: r.currency,
    statusSeq: num(r.status_seq),
    pspRefundId: r.psp_refund_id,
    failureReason: r.failure_reason,
    commandId: r.command_id,
    resultMessageIds: strs(r.result_message_ids),
    attempts: num(r.attempts),
    nextAttemptAt: new Date(r.next_attempt_at),
    createdAt: new Date(r.created_at),
  };
}

export async function listRefunds(q: Queryable, paymentId: string): Promise<RefundRow[]> {
  const r = await q.query<DbRefund>('SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, id', [paymentId]);
  return r.rows.map(mapRefund);
}

export async function getRefund(q: Queryable, id: string, opts: { forUpdate?: boolean } = {}): Promise<RefundRow | null> {
  const r = await q.query<DbRefund>(`SELECT * FROM refunds WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0] ? mapRefund(r.rows[0]) : null;
}

export async function findRefundByPspId(q: Queryable, tenant: string, pspRefundId: string): Promise<RefundRow | null> {
  const r = await q.query<DbRefund>('SELECT * FROM refunds WHERE tenant_identifier = $1 AND psp_refund_id = $2', [tenant, pspRefundId]);
  return r.rows[0] ? mapRefund(r.rows[0]) : null;
}

export interface NewRefund {
  id: string;
  paymentId: string;
  tenantIdentifier: string;
  itemKey: string;
  orderItemIds: number[];
  amount: number;
  currency: string;
  status: RefundStatus;
  pspRefundId?: string | null;
  commandId: string | null;
  nextAttemptAt?: Date;
}

export async function insertRefund(tx: Tx, o: NewRefund): Promise<RefundRow> {
  const r = await tx.query<DbRefund>(
    `INSERT INTO refunds (id, payment_id, tenant_identifier, item_key, order_item_ids, amount, currency, status, psp_refund_id, command_id, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
    [o.id, o.paymentId, o.tenantIdentifier, o.itemKey, JSON.stringify(o.orderItemIds), o.amount, o.currency, o.status, o.pspRefundId ?? null, o.commandId, o.nextAttemptAt ?? new Date()],
  );
  return mapRefund(r.rows[0]!);
}

export interface RefundChanges {
  status?: RefundStatus;
  statusSeq?: number;
  pspRefundId?: string;
  failureReason?: string | null;
  resultMessageIds?: string[];
  attempts?: number;
  nextAttemptAt?: Date;
}

export async function updateRefund(tx: Tx, id: string, c: RefundChanges): Promise<void> {
  await tx.query(
    `UPDATE refunds SET
       status = COALESCE($2, status),
       status_seq = COALESCE($3, status_seq),
       psp_refund_id = COALESCE(psp_refund_id, $4),
       failure_reason = COALESCE($5, failure_reason),
       result_message_ids = COALESCE($6::jsonb, result_message_ids),
       attempts = COALESCE($7, attempts),
       next_attempt_at = COALESCE($8, next_attempt_at),
       updated_at = now()
     WHERE id = $1`,
    [
      id,
      c.status ?? null,
      c.statusSeq ?? null,
      c.pspRefundId ?? null,
      c.failureReason ?? null,
      c.resultMessageIds ? JSON.stringify(c.resultMessageIds) : null,
      c.attempts ?? null,
      c.nextAttemptAt ?? null,
    ],
  );
}

/** Backoff of pending records and retried commands: 1 s, 5 s, 30 s, 2 min, 10 min, then every 30 min. */
export function backoffMs(attempts: number): number {
  const steps = [1_000, 5_000, 30_000, 120_000, 600_000];
  return steps[Math.max(0, attempts - 1)] ?? 30 * 60_000;
}

// ---- reconciliation claims (flows.md 14): `FOR UPDATE SKIP LOCKED`, leased by moving next_attempt_at forward ----

/** Claims up to `limit` due `pending` capture/cancel records by moving `next_attempt_at` to `leaseUntil`. */
export async function claimDueOperations(tx: Tx, leaseUntil: Date, limit: number): Promise<Array<{ id: string; kind: OperationKind }>> {
  const r = await tx.query<{ id: string; kind: OperationKind }>(
    `UPDATE payment_operations SET next_attempt_at = $1
       WHERE id IN (SELECT id FROM payment_operations WHERE status = 'pending' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at, id LIMIT ${Math.trunc(limit)} FOR UPDATE SKIP LOCKED)
       RETURNING id, kind`,
    [leaseUntil],
  );
  return r.rows;
}

/** Claims up to `limit` due `pending` refunds without a PSP refund id (PSP call to repeat). */
export async function claimDueRefundCalls(tx: Tx, leaseUntil: Date, limit: number): Promise<Array<{ id: string }>> {
  const r = await tx.query<{ id: string }>(
    `UPDATE refunds SET next_attempt_at = $1
       WHERE id IN (SELECT id FROM refunds WHERE status = 'pending' AND psp_refund_id IS NULL AND next_attempt_at <= now()
                    ORDER BY next_attempt_at, id LIMIT ${Math.trunc(limit)} FOR UPDATE SKIP LOCKED)
       RETURNING id`,
    [leaseUntil],
  );
  return r.rows;
}

/** Locks up to `limit` due `pending`/`processing` refunds with a PSP refund id (status to ask at the PSP). */
export async function lockDueRefundChecks(tx: Tx, limit: number): Promise<Array<{ id: string; attempts: number }>> {
  const r = await tx.query<{ id: string; attempts: number }>(
    `SELECT id, attempts FROM refunds WHERE status IN ('pending', 'processing') AND psp_refund_id IS NOT NULL AND next_attempt_at <= now()
       ORDER BY next_attempt_at, id LIMIT ${Math.trunc(limit)} FOR UPDATE SKIP LOCKED`,
  );
  return r.rows;
}

/** Counts one status check of a refund and schedules the next one. */
export async function scheduleRefundCheck(tx: Tx, id: string, nextAttemptAt: Date): Promise<void> {
  await tx.query(`UPDATE refunds SET attempts = attempts + 1, next_attempt_at = $2 WHERE id = $1`, [id, nextAttemptAt]);
}

/** Makes claimed capture/cancel records still `pending` due at once. */
export async function releaseOperations(q: Queryable, ids: readonly string[]): Promise<void> {
  await q.query(`UPDATE payment_operations SET next_attempt_at = now() WHERE id = ANY($1::text[]) AND status = 'pending'`, [ids]);
}

/** Makes claimed refunds still `pending`/`processing` due at once. */
export async function releaseRefunds(q: Queryable, ids: readonly string[]): Promise<void> {
  await q.query(`UPDATE refunds SET next_attempt_at = now() WHERE id = ANY($1::text[]) AND status IN ('pending', 'processing')`, [ids]);
}

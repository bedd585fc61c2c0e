/**
 * Capture/cancel records (`payment_operations`) and refund records (`refunds`), migrations/003_payments.sql.
 * A record is stored `pending` and committed before its PSP call; its id is the PSP idempotency key (flows.md 0 rule 3).
 * Status columns are written only after the domain's transition checks (operationTransition, refundTransition).
 */
import type { OperationKind, OperationRecord, OperationStatus } from '../domain/capture.js';
import type { RefundRecord, RefundStatus } from '../domain/refund.js';
import { runCompanionWrite, updateByIdWrite, type CompanionWrite, type Queryable, type Tx } from './db.js';
import type { RecordLock } from './payments.js';

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

/** A capture/cancel record locked with its payment (`lockPaymentWithHistoryAndRecord`). */
export const operationLock: RecordLock<OperationRow> = { table: 'payment_operations', map: (row) => mapOperation(row as unknown as DbOperation) };

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

/** An insert of one row as a companion write: [column, value, cast?] in order. */
function insertWrite(name: string, table: string, values: ReadonlyArray<readonly [string, unknown, string?]>): CompanionWrite {
  return {
    cte: (n) => `${name} AS (INSERT INTO ${table} (${values.map((v) => v[0]).join(', ')}) VALUES (${values.map((v, i) => `$${n + i}${v[2] ?? ''}`).join(', ')}))`,
    params: values.map((v) => v[1]),
  };
}

/** The columns every capture/cancel record and refund is inserted with. */
function recordHead(o: Pick<NewOperation, 'id' | 'paymentId' | 'tenantIdentifier' | 'itemKey' | 'orderItemIds' | 'amount'> & { status: string }): Array<readonly [string, unknown, string?]> {
  return [
    ['id', o.id],
    ['payment_id', o.paymentId],
    ['tenant_identifier', o.tenantIdentifier],
    ['item_key', o.itemKey],
    ['order_item_ids', JSON.stringify(o.orderItemIds), '::jsonb'],
    ['amount', o.amount, '::bigint'],
    ['status', o.status],
  ];
}

/** The fields every record starts with, as `recordHead` stores them. */
function rowHead<S extends string>(o: Pick<NewOperation, 'id' | 'paymentId' | 'tenantIdentifier' | 'itemKey' | 'orderItemIds' | 'amount'> & { status: S }) {
  return { id: o.id, itemKey: o.itemKey, orderItemIds: [...o.orderItemIds], amount: o.amount, status: o.status, paymentId: o.paymentId, tenantIdentifier: o.tenantIdentifier };
}

/**
 * `insertOperation` as a part of the statement that writes the payment change it goes with (a capture's pending amount).
 * Returns the write and the row it stores, but for `createdAt`: the database's transaction time (records of a payment
 * are ordered by it), here `at` (the caller's clock, close to it).
 */
export function operationInsertWrite(o: NewOperation, at: Date): { write: CompanionWrite; row: OperationRow } {
  const nextAttemptAt = o.nextAttemptAt ?? at;
  return {
    write: insertWrite('operation_insert', 'payment_operations', [
      ...recordHead(o),
      ['kind', o.kind],
      ['command_id', o.commandId],
      ['next_attempt_at', nextAttemptAt, '::timestamptz'],
      ['result_message_ids', JSON.stringify(o.resultMessageIds ?? []), '::jsonb'],
    ]),
    row: {
      ...rowHead(o),
      kind: o.kind,
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

/** A capture/cancel record in a statement of its own (`operationInsertWrite` when a payment change carries it). */
export async function insertOperation(tx: Tx, o: NewOperation): Promise<void> {
  await runCompanionWrite(tx, operationInsertWrite(o, new Date()).write);
}

export interface OperationChanges {
  status?: OperationStatus;
  pspReference?: string | null;
  failureReason?: string | null;
  resultMessageIds?: string[];
  attempts?: number;
  nextAttemptAt?: Date;
}

/**
 * One record update, as its own statement or carried by another (`CompanionWrite`): each changed field sets its column,
 * a field left out (undefined) keeps it; `keep` columns are only ever set once (a PSP id).
 */
interface RecordColumn<C> {
  field: keyof C;
  column: string;
  cast?: string;
  keep?: boolean;
}

function recordUpdate<C>(table: string, columns: ReadonlyArray<RecordColumn<C>>) {
  const sets = (n: number): string =>
    [
      ...columns.map((c, i) => {
        const p = `$${n + i}${c.cast ?? ''}`;
        return c.keep ? `${c.column} = COALESCE(${c.column}, ${p})` : `${c.column} = COALESCE(${p}, ${c.column})`;
      }),
      'updated_at = now()',
    ].join(', ');
  const params = (c: C): unknown[] =>
    columns.map(({ field, cast }) => {
      const v = c[field];
      if (v === undefined || v === null) return null;
      return cast === '::jsonb' ? JSON.stringify(v) : v;
    });
  return {
    run: async (tx: Tx, id: string, c: C): Promise<void> => {
      await tx.query(`UPDATE ${table} SET ${sets(2)} WHERE id = $1`, [id, ...params(c)]);
    },
    write: (name: string, id: string, c: C): CompanionWrite => updateByIdWrite(name, table, id, sets, params(c)),
  };
}

/** The columns capture/cancel records and refunds share (after their own). */
function sharedColumns<C extends { failureReason?: string | null; resultMessageIds?: string[]; attempts?: number; nextAttemptAt?: Date }>(): Array<RecordColumn<C>> {
  return [
    { field: 'failureReason', column: 'failure_reason' },
    { field: 'resultMessageIds', column: 'result_message_ids', cast: '::jsonb' },
    { field: 'attempts', column: 'attempts', cast: '::integer' },
    { field: 'nextAttemptAt', column: 'next_attempt_at', cast: '::timestamptz' },
  ];
}

const operationUpdate = recordUpdate<OperationChanges>('payment_operations', [
  { field: 'status', column: 'status' },
  { field: 'pspReference', column: 'psp_reference' },
  ...sharedColumns<OperationChanges>(),
]);

export async function updateOperation(tx: Tx, id: string, c: OperationChanges): Promise<void> {
  await operationUpdate.run(tx, id, c);
}

/** `updateOperation` as a part of the statement that writes the payment change it goes with. */
export function operationUpdateWrite(id: string, c: OperationChanges): CompanionWrite {
  return operationUpdate.write('operation_update', id, c);
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

/** A refund record locked with its payment (`lockPaymentWithHistoryAndRecord`). */
export const refundLock: RecordLock<RefundRow> = { table: 'refunds', map: (row) => mapRefund(row as unknown as DbRefund) };

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

/**
 * `insertRefund` as a part of the statement that writes the payment change it goes with (the pending refund amount).
 * Returns the write and the row it stores, but for `createdAt`: the database's transaction time, here `at`.
 */
export function refundInsertWrite(o: NewRefund, at: Date): { write: CompanionWrite; row: RefundRow } {
  const nextAttemptAt = o.nextAttemptAt ?? at;
  return {
    write: insertWrite('refund_insert', 'refunds', [
      ...recordHead(o),
      ['currency', o.currency],
      ['psp_refund_id', o.pspRefundId ?? null],
      ['command_id', o.commandId],
      ['next_attempt_at', nextAttemptAt, '::timestamptz'],
    ]),
    row: {
      ...rowHead(o),
      currency: o.currency,
      statusSeq: 1,
      pspRefundId: o.pspRefundId ?? null,
      failureReason: null,
      commandId: o.commandId,
      resultMessageIds: [],
      attempts: 0,
      nextAttemptAt,
      createdAt: at,
    },
  };
}

/** A refund in a statement of its own (`refundInsertWrite` when a payment change carries it). */
export async function insertRefund(tx: Tx, o: NewRefund): Promise<void> {
  await runCompanionWrite(tx, refundInsertWrite(o, new Date()).write);
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

const refundUpdate = recordUpdate<RefundChanges>('refunds', [
  { field: 'status', column: 'status' },
  { field: 'statusSeq', column: 'status_seq', cast: '::integer' },
  { field: 'pspRefundId', column: 'psp_refund_id', keep: true },
  ...sharedColumns<RefundChanges>(),
]);

export async function updateRefund(tx: Tx, id: string, c: RefundChanges): Promise<void> {
  await refundUpdate.run(tx, id, c);
}

/** `updateRefund` as a part of the statement that writes the payment change it goes with. */
export function refundUpdateWrite(id: string, c: RefundChanges): CompanionWrite {
  return refundUpdate.write('refund_update', id, c);
}

/**
 * The PSP's refund id for a refund (`updateRefund` with `pspRefundId`, `attempts`, `nextAttemptAt`) and its
 * `psp_objects` mapping in one statement; also tells whether webhooks of that id already wait in the inbox (states
 * `waitingStates`) to be re-driven after the commit, and whether the mapping was written now (`pspObjectRecorded`).
 */
export async function storeRefundPspId(
  tx: Tx,
  id: string,
  c: { pspRefundId: string; attempts: number; nextAttemptAt: Date },
  owner: { connector: string; tenantIdentifier: string },
  waitingStates: readonly string[],
): Promise<{ webhooksWaiting: boolean; pspObjectRecorded: boolean }> {
  const r = await tx.query<{ waiting: boolean; recorded: boolean }>(
    `WITH r AS (UPDATE refunds SET psp_refund_id = COALESCE(psp_refund_id, $2), attempts = $3, next_attempt_at = $4, updated_at = now() WHERE id = $1),
     o AS (INSERT INTO psp_objects (connector, psp_object_id, tenant_identifier, kind) VALUES ($5, $2, $6, 'refund') ON CONFLICT (connector, psp_object_id) DO NOTHING RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM webhook_inbox w WHERE w.tenant_identifier = $6 AND w.psp_object_id = $2 AND w.state = ANY($7::text[])) AS waiting,
       EXISTS (SELECT 1 FROM o) AS recorded`,
    [id, c.pspRefundId, c.attempts, c.nextAttemptAt, owner.connector, owner.tenantIdentifier, [...waitingStates]],
  );
  return { webhooksWaiting: r.rows[0]?.waiting === true, pspObjectRecorded: r.rows[0]?.recorded === true };
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

/**
 * Transfer repository: payout and reversal records (`transfers`, migrations/003_payments.sql, states.md 4).
 * A record's id is also the PSP idempotency key of its transfer call. Status changes are written only after
 * `transferTransition` allowed them (the caller checks). Every lookup is tenant-scoped.
 */
import type { TransferKind, TransferRecord, TransferStatus } from '../domain/transfer.js';
import type { Queryable, Tx } from './db.js';

export interface StoredTransferItem {
  type: string;
  merchantReference: string;
  orderReference: string;
  itemReference: string;
  /** Signed minor units as sent (negative for reversals). */
  amount: number;
}

export interface StoredTransfer extends TransferRecord {
  tenantIdentifier: string;
  currency: string;
  items: StoredTransferItem[];
  failureMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface DbTransferRow {
  id: string;
  tenant_identifier: string;
  kind: TransferKind;
  order_reference: string;
  merchant_reference: string;
  item_key: string;
  items: StoredTransferItem[] | string;
  amount: number | string;
  currency: string;
  original_transfer_id: string | null;
  status: TransferStatus;
  psp_transfer_id: string | null;
  failure_message: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

function mapRow(r: DbTransferRow): StoredTransfer {
  return {
    id: r.id,
    tenantIdentifier: r.tenant_identifier,
    kind: r.kind,
    orderReference: r.order_reference,
    merchantReference: r.merchant_reference,
    itemKey: r.item_key,
    items: typeof r.items === 'string' ? (JSON.parse(r.items) as StoredTransferItem[]) : r.items,
    amount: Number(r.amount),
    currency: r.currency,
    originalTransferId: r.original_transfer_id,
    status: r.status,
    pspTransferId: r.psp_transfer_id,
    failureMessage: r.failure_message,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

/** Every payout and reversal of one order of the tenant, oldest first. */
export async function listOrderTransfers(q: Queryable, tenant: string, orderReference: string): Promise<StoredTransfer[]> {
  const r = await q.query<DbTransferRow>('SELECT * FROM transfers WHERE tenant_identifier = $1 AND order_reference = $2 ORDER BY created_at, id', [
    tenant,
    orderReference,
  ]);
  return r.rows.map(mapRow);
}

export async function findTransfer(q: Queryable, id: string, opts: { forUpdate?: boolean } = {}): Promise<StoredTransfer | null> {
  const r = await q.query<DbTransferRow>(`SELECT * FROM transfers WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0] ? mapRow(r.rows[0]) : null;
}

/** The record whose PSP id is `pspId` (a payout's transfer id or a reversal's own id). */
export async function findTransferByPspId(q: Queryable, tenant: string, kind: TransferKind, pspId: string, opts: { forUpdate?: boolean } = {}): Promise<StoredTransfer | null> {
  const r = await q.query<DbTransferRow>(
    `SELECT * FROM transfers WHERE tenant_identifier = $1 AND kind = $2 AND psp_transfer_id = $3 ORDER BY created_at LIMIT 1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [tenant, kind, pspId],
  );
  return r.rows[0] ? mapRow(r.rows[0]) : null;
}

/** Pending records (all tenants) created before `before`, oldest first (reconciliation). */
export async function listPendingTransfers(q: Queryable, before: Date, limit = 50): Promise<StoredTransfer[]> {
  const r = await q.query<DbTransferRow>(`SELECT * FROM transfers WHERE status = 'pending' AND created_at < $1 ORDER BY created_at, id LIMIT ${Math.max(1, Math.floor(limit))}`, [before]);
  return r.rows.map(mapRow);
}

export interface NewTransfer {
  id: string;
  tenantIdentifier: string;
  kind: TransferKind;
  orderReference: string;
  merchantReference: string;
  itemKey: string;
  items: StoredTransferItem[];
  amount: number;
  currency: string;
  originalTransferId: string | null;
}

/** Inserts a record in status `pending`. */
export async function insertPendingTransfer(tx: Tx, t: NewTransfer): Promise<StoredTransfer> {
  const r = await tx.query<DbTransferRow>(
    `INSERT INTO transfers (id, tenant_identifier, kind, order_reference, merchant_reference, item_key, items, amount, currency, original_transfer_id, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, 'pending') RETURNING *`,
    [t.id, t.tenantIdentifier, t.kind, t.orderReference, t.merchantReference, t.itemKey, JSON.stringify(t.items), t.amount, t.currency, t.originalTransferId],
  );
  return mapRow(r.rows[0]!);
}

/** Writes a settled status the machine allowed (with the PSP id on success, the reason on failure). */
export async function writeTransferStatus(tx: Tx, id: string, status: TransferStatus, fields: { pspTransferId?: string | null; failureMessage?: string | null } = {}): Promise<StoredTransfer> {
  const r = await tx.query<DbTransferRow>(
    `UPDATE transfers SET status = $2, psp_transfer_id = COALESCE($3, psp_transfer_id), failure_message = $4, updated_at = now() WHERE id = $1 RETURNING *`,
    [id, status, fields.pspTransferId ?? null, fields.failureMessage ?? null],
  );
  if (!r.rows[0]) throw new Error(`transfer ${id} does not exist`);
  return mapRow(r.rows[0]);
}

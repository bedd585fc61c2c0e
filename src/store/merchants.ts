/**
 * Merchant repository: rows of `merchants` (migrations/003_payments.sql, states.md 6). Every lookup is tenant-scoped.
 * `status_seq` counts the `MerchantAppOnboardingStatusChanged` messages written for the merchant: 0 = the row exists
 * but its first (`pending`) message was not written yet (the PSP account is still being created).
 * The status column is written only after `merchantTransition` allowed the change (states.md 8).
 */
import type { Queryable, Tx } from './db.js';

export interface MerchantRow {
  tenantIdentifier: string;
  merchantReference: string;
  name: string | null;
  status: string;
  statusSeq: number;
  pspAccountId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface DbMerchantRow {
  tenant_identifier: string;
  merchant_reference: string;
  name: string | null;
  status: string;
  status_seq: number;
  psp_account_id: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

function mapRow(r: DbMerchantRow): MerchantRow {
  return {
    tenantIdentifier: r.tenant_identifier,
    merchantReference: r.merchant_reference,
    name: r.name,
    status: r.status,
    statusSeq: Number(r.status_seq),
    pspAccountId: r.psp_account_id,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

export async function findMerchant(q: Queryable, tenant: string, merchantReference: string, opts: { forUpdate?: boolean } = {}): Promise<MerchantRow | null> {
  const r = await q.query<DbMerchantRow>(
    `SELECT * FROM merchants WHERE tenant_identifier = $1 AND merchant_reference = $2${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [tenant, merchantReference],
  );
  return r.rows[0] ? mapRow(r.rows[0]) : null;
}

export async function findMerchantByAccount(q: Queryable, tenant: string, pspAccountId: string, opts: { forUpdate?: boolean } = {}): Promise<MerchantRow | null> {
  const r = await q.query<DbMerchantRow>(
    `SELECT * FROM merchants WHERE tenant_identifier = $1 AND psp_account_id = $2${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [tenant, pspAccountId],
  );
  return r.rows[0] ? mapRow(r.rows[0]) : null;
}

/**
 * Inserts a new merchant (status `pending`, `status_seq` 0: its first message is written once the PSP account exists).
 * Returns null when the merchant already exists (a concurrent first call won).
 */
export async function insertMerchant(tx: Tx, m: { tenantIdentifier: string; merchantReference: string; name: string | null }): Promise<MerchantRow | null> {
  const r = await tx.query<DbMerchantRow>(
    `INSERT INTO merchants (tenant_identifier, merchant_reference, name, status, status_seq) VALUES ($1, $2, $3, 'pending', 0)
     ON CONFLICT (tenant_identifier, merchant_reference) DO NOTHING RETURNING *`,
    [m.tenantIdentifier, m.merchantReference, m.name],
  );
  return r.rows[0] ? mapRow(r.rows[0]) : null;
}

export async function updateMerchantName(tx: Tx, tenant: string, merchantReference: string, name: string): Promise<void> {
  await tx.query('UPDATE merchants SET name = $3, updated_at = now() WHERE tenant_identifier = $1 AND merchant_reference = $2', [tenant, merchantReference, name]);
}

export async function setMerchantAccount(tx: Tx, tenant: string, merchantReference: string, pspAccountId: string): Promise<void> {
  await tx.query('UPDATE merchants SET psp_account_id = $3, updated_at = now() WHERE tenant_identifier = $1 AND merchant_reference = $2', [
    tenant,
    merchantReference,
    pspAccountId,
  ]);
}

/** Writes a status the machine allowed (or the first announcement of `pending`) and returns the new message sequence. */
export async function writeMerchantStatus(tx: Tx, tenant: string, merchantReference: string, status: string): Promise<number> {
  const r = await tx.query<{ status_seq: number }>(
    `UPDATE merchants SET status = $3, status_seq = status_seq + 1, updated_at = now()
     WHERE tenant_identifier = $1 AND merchant_reference = $2 RETURNING status_seq`,
    [tenant, merchantReference, status],
  );
  if (!r.rows[0]) throw new Error(`merchant ${merchantReference} does not exist`);
  return Number(r.rows[0].status_seq);
}

/** Whether the tenant has a merchant whose onboarding is not `rejected`. */
export async function hasActiveMerchants(q: Queryable, tenant: string): Promise<boolean> {
  const r = await q.query<{ active: boolean }>(`SELECT EXISTS (SELECT 1 FROM merchants WHERE tenant_identifier = $1 AND status <> 'rejected') AS active`, [tenant]);
  return r.rows[0]?.active === true;
}

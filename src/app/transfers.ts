/**
 * Marketplace payouts and reversals (sync-api.md 4.7, flows.md 11, states.md 4).
 *
 * `processTransfers`: parse the items (whole-request 400 on any malformed item), group them, then per group in the
 * order of its first item:
 * 1. tx A: lock the order's payment row (`FOR UPDATE`: concurrent requests for one order are serialised), run the
 *    domain checks (`checkPayout` / `checkReversal`) on the order's transfer records, and either answer an earlier
 *    succeeded record again (no PSP call), fail the group, or insert a `pending` record — committed before the call;
 * 2. the PSP call (no transaction open) with the record id as idempotency key;
 * 3. tx B: lock the payment and the record again; `pending` → `succeeded` (PSP id, psp_objects mapping) or `failed`.
 *    A timeout or an unclear PSP error leaves the record `pending` (webhook or `reconcilePendingTransfers` settle it).
 * Transfers emit no messages.
 *
 * `applyTransferOutcome` (webhook inbox): `transfer.created` / `transfer.reversed` settle the matching record.
 */
import { randomUUID } from 'node:crypto';
import type { Connector, PspFailure, PspResult, WebhookOutcome } from '../connectors/types.js';
import { AppError } from '../domain/errors.js';
import {
  TRANSFER_PENDING_MESSAGE,
  checkPayout,
  checkReversal,
  parseTransferAmount,
  transferItemKey,
  transferTransition,
  type TransferDecision,
} from '../domain/transfer.js';
import { isObject } from '../domain/input.js';
import type { TenantRow } from '../http/tenant.js';
import type { Tx } from '../store/db.js';
import { findMerchant } from '../store/merchants.js';
import { findPaymentByOrder, lockPayment, recordPspObject } from '../store/payments.js';
import { decryptedSettings } from '../store/tenants.js';
import {
  findTransfer,
  findTransferByPspId,
  insertPendingTransfer,
  listOrderTransfers,
  listPendingTransfers,
  writeTransferStatus,
  type StoredTransfer,
  type StoredTransferItem,
} from '../store/transfers.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import type { InboxVerdict } from './merchant-onboarding.js';
import { processWaitingWebhooksFor } from './webhook-processing.js';

export const NO_MARKETPLACE_MESSAGE = 'Platform plugin does not provide Marketplace features';
export const REVERSAL_NEEDS_ID_MESSAGE = 'A reversal needs the transferId of the payout it reverses.';

// ---- request parsing ----

export interface TransferItem {
  type: string;
  merchantReference: string;
  orderReference: string;
  itemReference: string;
  amount: number;
  transferId: string | null;
}

const invalid = (field: string, message: string): AppError => new AppError('VALIDATION_FAILED', message, { field, extra: { transfers: [] } });

/** Reads one key in camelCase, else snake_case (per key, sync-api.md 4.7). Returns the spelling found. */
function read(item: Record<string, unknown>, camel: string, snake: string): { key: string; value: unknown } {
  if (item[camel] !== undefined && item[camel] !== null) return { key: camel, value: item[camel] };
  if (item[snake] !== undefined && item[snake] !== null) return { key: snake, value: item[snake] };
  return { key: camel, value: item[camel] ?? item[snake] };
}

function parseItem(raw: unknown, path: string, forcedType: string | null): TransferItem {
  if (!isObject(raw)) throw invalid(path, `Field "${path}" must be an object.`);
  const str = (camel: string, snake: string): string => {
    const { key, value } = read(raw, camel, snake);
    if (value === undefined || value === null) throw invalid(`${path}.${camel}`, `Field "${path}.${camel}" is required.`);
    if (typeof value !== 'string' || value.trim() === '') throw invalid(`${path}.${key}`, `Field "${path}.${key}" must be a non-empty string.`);
    return value;
  };
  const merchantReference = str('merchantReference', 'merchant_reference');
  const orderReference = str('orderReference', 'order_reference');
  const itemReference = str('itemReference', 'item_reference');
  if (raw.amount === undefined || raw.amount === null) throw invalid(`${path}.amount`, `Field "${path}.amount" is required.`);
  const amount = parseTransferAmount(raw.amount);
  if (amount === null) throw invalid(`${path}.amount`, `Field "${path}.amount" must be an integer amount in minor units.`);
  const tid = read(raw, 'transferId', 'transfer_id');
  if (tid.value !== undefined && tid.value !== null && typeof tid.value !== 'string') throw invalid(`${path}.${tid.key}`, `Field "${path}.${tid.key}" must be a string or null.`);
  const transferId = typeof tid.value === 'string' && tid.value.trim() !== '' ? tid.value : null;
  let type = forcedType ?? 'order-item';
  if (forcedType === null && raw.type !== undefined && raw.type !== null) {
    if (typeof raw.type !== 'string') throw invalid(`${path}.type`, `Field "${path}.type" must be a string.`);
    if (raw.type !== '') type = raw.type;
  }
  return { type, merchantReference, orderReference, itemReference, amount, transferId };
}

/** The request's items: `paymentTransmissionItems` if non-empty, else `orderItems` + `orderExpenses`. Throws 400. */
export function parseTransferItems(body: unknown): TransferItem[] {
  if (!isObject(body)) throw invalid('paymentTransmissionItems', 'The request body must be a JSON object.');
  const pti = body.paymentTransmissionItems;
  if (pti !== undefined && pti !== null && !Array.isArray(pti)) throw invalid('paymentTransmissionItems', 'Field "paymentTransmissionItems" must be an array.');
  if (Array.isArray(pti) && pti.length > 0) return pti.map((it, i) => parseItem(it, `paymentTransmissionItems[${i}]`, null));
  const oi = body.orderItems;
  const oe = body.orderExpenses;
  if (oi !== undefined && oi !== null && !Array.isArray(oi)) throw invalid('orderItems', 'Field "orderItems" must be an array.');
  if (oe !== undefined && oe !== null && !Array.isArray(oe)) throw invalid('orderExpenses', 'Field "orderExpenses" must be an array.');
  if (!Array.isArray(pti) && !Array.isArray(oi) && !Array.isArray(oe)) throw invalid('paymentTransmissionItems', 'Field "paymentTransmissionItems" is required.');
  return [
    ...(Array.isArray(oi) ? oi.map((it, i) => parseItem(it, `orderItems[${i}]`, null)) : []),
    ...(Array.isArray(oe) ? oe.map((it, i) => parseItem(it, `orderExpenses[${i}]`, 'order-expense')) : []),
  ];
}

// ---- grouping ----

export interface TransferGroup {
  kind: 'payout' | 'reversal' | 'invalid';
  orderReference: string;
  merchantReference: string;
  /** Reversal: the payout's PSP id. */
  transferId: string | null;
  items: TransferItem[];
}

/** Groups non-zero items (sync-api.md 4.7 grouping), in the order of each group's first item. */
export function groupTransferItems(items: readonly TransferItem[]): TransferGroup[] {
  const groups = new Map<string, TransferGroup>();
  let n = 0;
  for (const it of items) {
    if (it.amount === 0) continue;
    let key: string;
    let kind: TransferGroup['kind'];
    if (it.amount > 0) {
      key = JSON.stringify(['p', it.orderReference, it.merchantReference]);
      kind = 'payout';
    } else if (it.transferId !== null) {
      key = JSON.stringify(['r', it.transferId, it.orderReference, it.merchantReference]);
      kind = 'reversal';
    } else {
      key = `invalid/${n++}`;
      kind = 'invalid';
    }
    const g = groups.get(key);
    if (g) g.items.push(it);
    else groups.set(key, { kind, orderReference: it.orderReference, merchantReference: it.merchantReference, transferId: kind === 'reversal' ? it.transferId : null, items: [it] });
  }
  return [...groups.values()];
}

// ---- answer ----

export interface TransferEntry {
  isSuccessful: boolean;
  failureMessage: string | null;
  merchantReference: string;
  orderReference: string;
  transferId: string | null;
  amount: string;
  paymentTransmissionItems: Array<{ type: string; merchantReference: string; orderReference: string; itemReference: string; amount: string; transferId: string | null }>;
}

function entry(group: TransferGroup, result: { ok: true; transferId: string } | { ok: false; failureMessage: string }): TransferEntry {
  const sum = group.items.reduce((s, it) => s + it.amount, 0);
  return {
    isSuccessful: result.ok,
    failureMessage: result.ok ? null : result.failureMessage,
    merchantReference: group.merchantReference,
    orderReference: group.orderReference,
    transferId: result.ok ? result.transferId : null,
    amount: String(sum),
    paymentTransmissionItems: group.items.map((it) => ({
      type: it.type,
      merchantReference: it.merchantReference,
      orderReference: it.orderReference,
      itemReference: it.itemReference,
      amount: String(it.amount),
      transferId: result.ok ? result.transferId : it.transferId,
    })),
  };
}

// ---- processing ----

type Prepared =
  | { kind: 'done'; result: { ok: true; transferId: string } | { ok: false; failureMessage: string } }
  | { kind: 'call'; record: StoredTransfer; destination: string | null };

async function pspCall<T>(fn: (signal: AbortSignal) => Promise<PspResult<T>>): Promise<PspResult<T>> {
  const signal = AbortSignal.timeout(PSP_CALL_TIMEOUT_MS);
  try {
    return await fn(signal);
  } catch (err) {
    return { ok: false, failure: signal.aborted ? { kind: 'timeout' } : { kind: 'error', message: (err as Error).message } };
  }
}

function fromDecision(d: TransferDecision): Prepared | null {
  if (d.kind === 'existing') {
    return d.record.pspTransferId ? { kind: 'done', result: { ok: true, transferId: d.record.pspTransferId } } : { kind: 'done', result: { ok: false, failureMessage: TRANSFER_PENDING_MESSAGE } };
  }
  if (d.kind === 'reject') return { kind: 'done', result: { ok: false, failureMessage: d.failureMessage } };
  return null;
}

const storedItems = (g: TransferGroup): StoredTransferItem[] =>
  g.items.map((it) => ({ type: it.type, merchantReference: it.merchantReference, orderReference: it.orderReference, itemReference: it.itemReference, amount: it.amount }));

/** tx A of one group: checks under the payment row lock; inserts the pending record when the group may proceed. */
async function prepare(deps: AppDeps, tx: Tx, tenant: string, g: TransferGroup): Promise<Prepared> {
  const fail = (failureMessage: string): Prepared => ({ kind: 'done', result: { ok: false, failureMessage } });
  const found = await findPaymentByOrder(tx, tenant, g.orderReference);
  if (!found) return fail(`Could not find a payment with the tenantIdentifier "${tenant}" and orderReference "${g.orderReference}"`);
  const payment = await lockPayment(tx, found.id);
  const transfers = await listOrderTransfers(tx, tenant, g.orderReference);
  const itemKey = transferItemKey(g.items.map((it) => it.itemReference));
  const amount = Math.abs(g.items.reduce((s, it) => s + it.amount, 0));

  if (g.kind === 'payout') {
    const merchant = await findMerchant(tx, tenant, g.merchantReference);
    const decision = checkPayout({
      group: { orderReference: g.orderReference, merchantReference: g.merchantReference, itemKey, amount },
      payment: { status: payment.status, capturedAmount: payment.capturedAmount, refundedAmount: payment.refundedAmount },
      merchantStatus: merchant && merchant.statusSeq > 0 ? merchant.status : null,
      transfers,
    });
    const done = fromDecision(decision);
    if (done) return done;
    if (!merchant?.pspAccountId) return fail(`Merchant "${g.merchantReference}" cannot receive payouts (onboarding status "${merchant?.status ?? 'pending'}").`);
    const record = await insertPendingTransfer(tx, {
      id: randomUUID(),
      tenantIdentifier: tenant,
      kind: 'payout',
      orderReference: g.orderReference,
      merchantReference: g.merchantReference,
      itemKey,
      items: storedItems(g),
      amount,
      currency: payment.currency,
      originalTransferId: null,
    });
    return { kind: 'call', record, destination: merchant.pspAccountId };
  }

  // reversal
  const decision = checkReversal({
    group: { transferId: g.transferId!, orderReference: g.orderReference, merchantReference: g.merchantReference, itemKey, amount },
    transfers,
  });
  if (decision.kind !== 'proceed' || !('payout' in decision)) return fromDecision(decision) ?? fail(`Could not find a payment transfer with the transfer id "${g.transferId}"`);
  const payout = decision.payout;
  if (payout.merchantReference !== g.merchantReference) return fail(`Could not find a payment transfer with the transfer id "${g.transferId}"`);
  const record = await insertPendingTransfer(tx, {
    id: randomUUID(),
    tenantIdentifier: tenant,
    kind: 'reversal',
    orderReference: g.orderReference,
    merchantReference: g.merchantReference,
    itemKey,
    items: storedItems(g),
    amount,
    currency: transfers.find((t) => t.id === payout.id)?.currency ?? payment.currency,
    originalTransferId: g.transferId,
  });
  return { kind: 'call', record, destination: null };
}

type CallResult = { ok: true; pspId: string } | { ok: false; failure: PspFailure };

/** The PSP call of a pending record (same body for the first call and any later re-drive: idempotent at the PSP). */
async function callPsp(deps: AppDeps, connector: Connector, settings: Record<string, unknown>, tenant: string, record: StoredTransfer, destination: string | null): Promise<CallResult> {
  const cap = connector.transfers;
  if (!cap) return { ok: false, failure: { kind: 'declined', code: 'transfers_unsupported', message: NO_MARKETPLACE_MESSAGE } };
  if (record.kind === 'payout') {
    // The source payment (P5: Stripe's `source_transaction`); the app's own order link.
    const source = await findPaymentByOrder(deps.db, tenant, record.orderReference);
    const r = await pspCall((signal) =>
      cap.createTransfer(
        settings,
        {
          amount: record.amount,
          currency: record.currency,
          destinationAccountId: destination!,
          transferGroup: record.orderReference,
          sourceTransactionId: source?.transactionId ?? '',
          payoutId: record.id,
          tenantIdentifier: tenant,
          merchantReference: record.merchantReference,
        },
        { idempotencyKey: record.id, signal },
      ),
    );
    return r.ok ? { ok: true, pspId: r.value.pspTransferId } : r;
  }
  const r = await pspCall((signal) => cap.reverseTransfer(settings, record.originalTransferId!, record.amount, { idempotencyKey: record.id, reversalId: record.id, tenantIdentifier: tenant, signal }));
  return r.ok ? { ok: true, pspId: r.value.pspReversalId } : r;
}

/** tx B: applies the PSP answer to the pending record. Returns the group result and the PSP id to re-drive webhooks for. */
async function settle(deps: AppDeps, connectorId: string, tenant: string, record: StoredTransfer, r: CallResult): Promise<{ result: { ok: true; transferId: string } | { ok: false; failureMessage: string }; pspId: string | null }> {
  return deps.db.tx(async (tx) => {
    const payment = await findPaymentByOrder(tx, tenant, record.orderReference);
    if (payment) await lockPayment(tx, payment.id);
    const current = await findTransfer(tx, record.id, { forUpdate: true });
    if (!current) throw new Error(`transfer ${record.id} vanished`);
    if (current.status !== 'pending') {
      // Settled meanwhile (webhook, reconciliation).
      return current.status === 'succeeded' && current.pspTransferId
        ? { result: { ok: true as const, transferId: current.pspTransferId }, pspId: null }
        : { result: { ok: false as const, failureMessage: current.failureMessage ?? 'The transfer failed.' }, pspId: null };
    }
    if (r.ok) {
      const t = transferTransition('pending', 'succeeded');
      if (!t.ok) throw new Error(t.error.message);
      await writeTransferStatus(tx, record.id, 'succeeded', { pspTransferId: r.pspId });
      await recordPspObject(tx, connectorId, r.pspId, tenant, record.kind === 'payout' ? 'transfer' : 'transfer_reversal');
      return { result: { ok: true as const, transferId: r.pspId }, pspId: r.pspId };
    }
    if (r.failure.kind === 'declined' || r.failure.kind === 'conflict') {
      const t = transferTransition('pending', 'failed');
      if (!t.ok) throw new Error(t.error.message);
      const msg = `The payment provider refused the transfer: ${r.failure.message}`;
      await writeTransferStatus(tx, record.id, 'failed', { failureMessage: msg });
      return { result: { ok: false as const, failureMessage: msg }, pspId: null };
    }
    // timeout / unclear error: the PSP may have acted; stays pending (same idempotency key on re-drive).
    return { result: { ok: false as const, failureMessage: TRANSFER_PENDING_MESSAGE }, pspId: null };
  });
}

/** Handles a whole 4.7 request for an active tenant. Returns the 200 body. */
export async function processTransfers(deps: AppDeps, tenantRow: TenantRow, body: unknown): Promise<{ transfers: TransferEntry[] }> {
  const items = parseTransferItems(body);
  const groups = groupTransferItems(items);
  const tenant = tenantRow.tenant_identifier;
  const connector = deps.connectors.require(tenantRow.connector);
  const settings = decryptedSettings(deps.secrets, tenantRow);
  const marketplace = Boolean(connector.capabilities.transfers) && connector.transfers !== undefined && connector.settings.marketplace(settings);
  const out: TransferEntry[] = [];
  for (const g of groups) {
    if (g.kind === 'invalid') {
      out.push(entry(g, { ok: false, failureMessage: REVERSAL_NEEDS_ID_MESSAGE }));
      continue;
    }
    if (!marketplace) {
      out.push(entry(g, { ok: false, failureMessage: NO_MARKETPLACE_MESSAGE }));
      continue;
    }
    const prepared = await deps.db.tx((tx) => prepare(deps, tx, tenant, g));
    if (prepared.kind === 'done') {
      out.push(entry(g, prepared.result));
      continue;
    }
    const r = await callPsp(deps, connector, settings, tenant, prepared.record, prepared.destination);
    if (!r.ok) deps.log.warn({ tenantIdentifier: tenant, transferRecordId: prepared.record.id, failure: r.failure }, 'transfer: PSP call did not succeed');
    const settled = await settle(deps, connector.id, tenant, prepared.record, r);
    if (settled.pspId) await processWaitingWebhooksFor(deps, tenant, prepared.record.kind === 'payout' ? settled.pspId : prepared.record.originalTransferId!);
    out.push(entry(g, settled.result));
  }
  return { transfers: out };
}

/**
 * Re-drives pending records older than `olderThanMs` with their own idempotency key (reconciliation, flows.md 11 end):
 * the PSP answers the original outcome without acting twice. Returns how many records were settled. Never throws.
 */
export async function reconcilePendingTransfers(deps: AppDeps, opts: { olderThanMs?: number } = {}): Promise<number> {
  if (!deps.connectors.all().some((c) => c.transfers)) return 0;
  let settledCount = 0;
  try {
    const pending = await listPendingTransfers(deps.db, new Date(Date.now() - (opts.olderThanMs ?? 60_000)));
    for (const record of pending) {
      const tenantRow = await deps.tenants.get(record.tenantIdentifier);
      if (!tenantRow) continue;
      let destination: string | null = null;
      if (record.kind === 'payout') {
        destination = (await findMerchant(deps.db, record.tenantIdentifier, record.merchantReference))?.pspAccountId ?? null;
        if (!destination) continue;
      }
      const connector = deps.connectors.get(tenantRow.connector ?? deps.config.connector);
      if (!connector) continue;
      const r = await callPsp(deps, connector, decryptedSettings(deps.secrets, tenantRow), record.tenantIdentifier, record, destination);
      const s = await settle(deps, connector.id, record.tenantIdentifier, record, r);
      if (s.pspId) {
        settledCount++;
        await processWaitingWebhooksFor(deps, record.tenantIdentifier, record.kind === 'payout' ? s.pspId : record.originalTransferId!);
      } else if (!s.result.ok && s.result.failureMessage !== TRANSFER_PENDING_MESSAGE) settledCount++;
    }
  } catch (err) {
    deps.log.error({ err }, 'transfer reconciliation failed');
  }
  return settledCount;
}

/** Applies a transfer webhook (inside the inbox row's transaction): settles a pending record, else a no-op. */
export async function applyTransferOutcome(tx: Tx, tenant: string, outcome: Extract<WebhookOutcome, { kind: 'transfer' }>): Promise<InboxVerdict> {
  const kind = outcome.reversalId ? 'reversal' : 'payout';
  const pspId = outcome.reversalId ?? outcome.pspTransferId;
  const record = await findTransferByPspId(tx, tenant, kind, pspId, { forUpdate: true });
  if (!record) return { state: 'waiting_for_payment', reason: `${kind} ${pspId} is not stored yet` };
  const t = transferTransition(record.status, outcome.status);
  if (!t.ok) return { state: 'ignored', reason: t.error.message };
  if (!t.changed) return { state: 'processed', reason: null };
  await writeTransferStatus(tx, record.id, outcome.status, outcome.status === 'failed' ? { failureMessage: 'The payment provider reported the transfer as failed.' } : {});
  return { state: 'processed', reason: null };
}

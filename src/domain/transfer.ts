/**
 * Marketplace payouts and reversals (states.md 4, sync-api.md 4.7, flows.md 11). Pure: record machine,
 * strict amount parsing and per-group checks. Transfers emit no messages.
 */
import { parseMinorUnits } from './money.js';
import { canReceivePayouts, type MerchantStatus } from './merchant-status.js';
import type { PaymentStatus } from './payment-status.js';

export const TRANSFER_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type TransferStatus = (typeof TRANSFER_STATUSES)[number];
export type TransferKind = 'payout' | 'reversal';

/** states.md 4 (the same for payouts and reversals). */
export const TRANSFER_TRANSITIONS: ReadonlyArray<{ from: TransferStatus; to: TransferStatus }> = Object.freeze([
  { from: 'pending', to: 'succeeded' },
  { from: 'pending', to: 'failed' },
] as Array<{ from: TransferStatus; to: TransferStatus }>);

const SET: ReadonlySet<string> = new Set(TRANSFER_STATUSES);
export const isTransferStatus = (v: unknown): v is TransferStatus => typeof v === 'string' && SET.has(v);

/** The one gate for transfer records; same status → no-op; no messages ever. */
export function transferTransition(
  from: TransferStatus | string,
  to: TransferStatus | string,
): { ok: true; changed: boolean } | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string; to: string; message: string } } {
  if (isTransferStatus(from) && isTransferStatus(to)) {
    if (TRANSFER_TRANSITIONS.some((r) => r.from === from && r.to === to)) return { ok: true, changed: true };
    if (from === to) return { ok: true, changed: false };
  }
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Transfer status transition from "${from}" to "${to}" is not allowed.` } };
}

/** Strict transfer amount: integer or `^-?[0-9]+$` string (sync-api.md 2.3/4.7); anything else → null. */
export function parseTransferAmount(value: unknown): number | null {
  return parseMinorUnits(value);
}

/** Sorted unique item references joined by ',' (natural key of payouts and reversals). */
export function transferItemKey(itemReferences: readonly string[]): string {
  return [...new Set(itemReferences)].sort().join(',');
}

/** A stored payout or reversal (table transfers); `amount` is the absolute value. */
export interface TransferRecord {
  id: string;
  kind: TransferKind;
  orderReference: string;
  merchantReference: string;
  itemKey: string;
  amount: number;
  status: TransferStatus;
  /** PSP id of this payout or reversal once succeeded. */
  pspTransferId: string | null;
  /** Reversal: PSP id of the payout it reverses. */
  originalTransferId: string | null;
}

export const TRANSFER_PENDING_MESSAGE = 'Transfer is still being processed; retry later.';

export type TransferDecision =
  /** Same key already succeeded: answer it again, no PSP call. */
  | { kind: 'existing'; record: TransferRecord }
  | { kind: 'reject'; failureMessage: string }
  | { kind: 'proceed' };

/** Net amount paid out for the order: pending/succeeded payouts minus succeeded reversals of them. */
export function paidOutAmount(transfers: readonly TransferRecord[], orderReference: string): number {
  let total = 0;
  for (const t of transfers) {
    if (t.orderReference !== orderReference) continue;
    if (t.kind === 'payout' && (t.status === 'pending' || t.status === 'succeeded')) total += t.amount;
    if (t.kind === 'reversal' && t.status === 'succeeded') total -= t.amount;
  }
  return total;
}

/** Amount of a payout already reversed or being reversed (pending + succeeded reversals). */
export function reversedAmount(transfers: readonly TransferRecord[], payoutPspId: string, includePending = true): number {
  let total = 0;
  for (const t of transfers) {
    if (t.kind !== 'reversal' || t.originalTransferId !== payoutPspId) continue;
    if (t.status === 'succeeded' || (includePending && t.status === 'pending')) total += t.amount;
  }
  return total;
}

export interface PayoutGroup {
  orderReference: string;
  merchantReference: string;
  itemKey: string;
  /** Sum of the group's item amounts (positive). */
  amount: number;
}

/**
 * Per payout group (sync-api.md 4.7 checks 3-6 and idempotency). Connector support and payment existence are
 * checked by the caller (they need the tenant). `transfers`: the tenant's transfer records of this order.
 */
export function checkPayout(input: {
  group: PayoutGroup;
  payment: { status: PaymentStatus | string; capturedAmount: number; refundedAmount: number };
  merchantStatus: MerchantStatus | string | null;
  transfers: readonly TransferRecord[];
}): TransferDecision {
  const { group, payment, merchantStatus, transfers } = input;
  const sameKey = transfers.filter(
    (t) => t.kind === 'payout' && t.orderReference === group.orderReference && t.merchantReference === group.merchantReference && t.itemKey === group.itemKey,
  );
  const done = sameKey.find((t) => t.status === 'succeeded');
  if (done) return { kind: 'existing', record: done };
  if (sameKey.some((t) => t.status === 'pending')) return { kind: 'reject', failureMessage: TRANSFER_PENDING_MESSAGE };

  if (payment.status !== 'captured' && payment.status !== 'partially_captured') {
    return { kind: 'reject', failureMessage: `Payment for order "${group.orderReference}" is not captured.` };
  }
  if (merchantStatus === null) return { kind: 'reject', failureMessage: `Merchant with reference "${group.merchantReference}" not found.` };
  if (!canReceivePayouts(merchantStatus)) {
    return { kind: 'reject', failureMessage: `Merchant "${group.merchantReference}" cannot receive payouts (onboarding status "${merchantStatus}").` };
  }
  const limit = payment.capturedAmount - payment.refundedAmount;
  if (!Number.isSafeInteger(group.amount) || group.amount <= 0 || paidOutAmount(transfers, group.orderReference) + group.amount > limit) {
    return { kind: 'reject', failureMessage: `Payout exceeds the captured amount of order "${group.orderReference}".` };
  }
  return { kind: 'proceed' };
}

export interface ReversalGroup {
  /** The payout's PSP transfer id the shop sent as `transferId`. */
  transferId: string;
  orderReference: string;
  merchantReference: string;
  itemKey: string;
  /** Absolute value of the group's (negative) item amounts. */
  amount: number;
}

/**
 * Per reversal group (flows.md 11 step 9): idempotency, original payout exists (succeeded, same order),
 * and reversed total (pending + succeeded + this) ≤ the payout's amount. On `proceed`, `payout` is the original.
 */
export function checkReversal(input: { group: ReversalGroup; transfers: readonly TransferRecord[] }):
  | TransferDecision
  | { kind: 'proceed'; payout: TransferRecord } {
  const { group, transfers } = input;
  const sameKey = transfers.filter((t) => t.kind === 'reversal' && t.originalTransferId === group.transferId && t.itemKey === group.itemKey);
  const done = sameKey.find((t) => t.status === 'succeeded');
  if (done) return { kind: 'existing', record: done };
  if (sameKey.some((t) => t.status === 'pending')) return { kind: 'reject', failureMessage: TRANSFER_PENDING_MESSAGE };

  const payout = transfers.find(
    (t) => t.kind === 'payout' && t.status === 'succeeded' && t.pspTransferId === group.transferId && t.orderReference === group.orderReference,
  );
  if (!payout) return { kind: 'reject', failureMessage: `Could not find a payment transfer with the transfer id "${group.transferId}"` };
  if (!Number.isSafeInteger(group.amount) || group.amount <= 0 || reversedAmount(transfers, group.transferId) + group.amount > payout.amount) {
    return { kind: 'reject', failureMessage: `Reversal exceeds the paid-out amount of transfer "${group.transferId}".` };
  }
  return { kind: 'proceed', payout };
}

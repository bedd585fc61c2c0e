/**
 * CapturePayment checks (flows.md 8 steps 4-5, states.md 2). Pure: the caller loads the payment (locked) and
 * its capture records, calls `checkCapture`, then acts on the decision.
 */
import { sameCurrency } from './money.js';
import { capturableAmount, type PaymentAmounts, type PaymentStatus } from './payment-status.js';

export type OperationKind = 'capture' | 'cancel';
export type OperationStatus = 'pending' | 'succeeded' | 'failed';

/** A capture or cancel attempt (table payment_operations). */
export interface OperationRecord {
  id: string;
  kind: OperationKind;
  /** Sorted unique item ids joined by ',' (`itemKey`). */
  itemKey: string;
  orderItemIds: number[];
  amount: number;
  status: OperationStatus;
}

/** Capture/cancel record machine (states.md 2): pending → succeeded | failed; nothing else. */
export const OPERATION_TRANSITIONS: ReadonlyArray<{ from: OperationStatus; to: OperationStatus }> = Object.freeze([
  { from: 'pending', to: 'succeeded' },
  { from: 'pending', to: 'failed' },
]);

export function operationTransition(
  from: OperationStatus | string,
  to: OperationStatus | string,
): { ok: true; changed: boolean } | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string; to: string; message: string } } {
  if (OPERATION_TRANSITIONS.some((r) => r.from === from && r.to === to)) return { ok: true, changed: true };
  if (from === to && (from === 'pending' || from === 'succeeded' || from === 'failed')) return { ok: true, changed: false };
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Operation status transition from "${from}" to "${to}" is not allowed.` } };
}

/** Sorted unique ids joined by ',' (natural key of captures and refunds). */
export function itemKey(ids: readonly number[]): string {
  return [...new Set(ids)].sort((a, b) => a - b).join(',');
}

/** Unique ids in first-seen order. */
export function uniqueIds(ids: readonly number[]): number[] {
  return [...new Set(ids)];
}

export const CAPTURABLE_STATUSES: readonly PaymentStatus[] = ['authorized', 'capture_requested', 'partially_captured', 'capture_failed'];

export type CaptureRejectCode = 'ILLEGAL_TRANSITION' | 'CURRENCY_MISMATCH' | 'INVALID_AMOUNT' | 'AMOUNT_EXCEEDED' | 'ITEMS_ALREADY_CAPTURED';

export type CaptureDecision =
  | { kind: 'republish'; record: OperationRecord }
  | { kind: 'noop'; record: OperationRecord }
  | { kind: 'reject'; code: CaptureRejectCode; reason: string }
  | { kind: 'proceed'; itemKey: string };

export interface CaptureCommand {
  orderItemIds: number[];
  amount: number;
  currency: string;
}

/**
 * flows.md 8 steps 4-5. `existing` are the payment's operation records (cancel records are ignored).
 * Order: same-key idempotency first (succeeded → republish, pending → noop, only failed → new attempt),
 * then status, currency, amount, item overlap. A rejection changes nothing; the caller sends
 * `PaymentCaptureFailed` for the command's items and amount.
 */
export function checkCapture(
  payment: { status: PaymentStatus | string; currency: string } & PaymentAmounts,
  existing: readonly OperationRecord[],
  cmd: CaptureCommand,
): CaptureDecision {
  const key = itemKey(cmd.orderItemIds);
  const captures = existing.filter((r) => r.kind === 'capture');
  const sameKey = captures.filter((r) => r.itemKey === key);
  const succeeded = sameKey.find((r) => r.status === 'succeeded');
  if (succeeded) return { kind: 'republish', record: succeeded };
  const pending = sameKey.find((r) => r.status === 'pending');
  if (pending) return { kind: 'noop', record: pending };

  if (!(CAPTURABLE_STATUSES as readonly string[]).includes(payment.status)) {
    return { kind: 'reject', code: 'ILLEGAL_TRANSITION', reason: `Payment in status "${payment.status}" cannot be captured.` };
  }
  if (typeof cmd.currency !== 'string' || !sameCurrency(cmd.currency, payment.currency)) {
    return {
      kind: 'reject',
      code: 'CURRENCY_MISMATCH',
      reason: `Currency "${String(cmd.currency)}" does not match the payment currency "${payment.currency}".`,
    };
  }
  if (!Number.isSafeInteger(cmd.amount) || cmd.amount <= 0) {
    return { kind: 'reject', code: 'INVALID_AMOUNT', reason: `Capture amount must be a positive integer, got ${String(cmd.amount)}.` };
  }
  const capturable = capturableAmount(payment);
  if (cmd.amount > capturable) {
    return {
      kind: 'reject',
      code: 'AMOUNT_EXCEEDED',
      reason: `Capture amount ${cmd.amount} exceeds the capturable amount ${capturable}.`,
    };
  }
  const requested = new Set(cmd.orderItemIds);
  const blocked = new Set<number>();
  for (const r of captures) {
    if (r.itemKey === key || (r.status !== 'succeeded' && r.status !== 'pending')) continue;
    for (const id of r.orderItemIds) if (requested.has(id)) blocked.add(id);
  }
  if (blocked.size > 0) {
    return {
      kind: 'reject',
      code: 'ITEMS_ALREADY_CAPTURED',
      reason: `Items ${[...blocked].sort((a, b) => a - b).join(', ')} are already captured or being captured.`,
    };
  }
  return { kind: 'proceed', itemKey: key };
}

/**
 * Item ids of `allIds` (the order's items) not yet covered by earlier records of the same kind
 * (messages.md 3.3, PSP-side change without a command). Keeps the order of `allIds`.
 */
export function uncoveredItemIds(allIds: readonly number[], covered: ReadonlyArray<{ orderItemIds: readonly number[] }>): number[] {
  const seen = new Set<number>();
  for (const r of covered) for (const id of r.orderItemIds) seen.add(id);
  return uniqueIds(allIds).filter((id) => !seen.has(id));
}

/**
 * A capture the PSP reports as a total (`pspAmountCaptured`) without a matching record (flows.md 8 step 11):
 * the part not yet known as captured or pending. 0 = nothing new.
 */
export function unrecordedCaptureAmount(p: PaymentAmounts, pspAmountCaptured: number): number {
  return Math.max(0, pspAmountCaptured - p.capturedAmount - p.pendingCaptureAmount);
}

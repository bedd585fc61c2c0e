/**
 * Refund record machine (states.md 3) and RefundPayment checks (flows.md 10 steps 3-5). Pure.
 */
import { itemKey, uniqueIds } from './capture.js';
import { sameCurrency } from './money.js';
import { refundableAmount, type PaymentAmounts, type PaymentStatus, type TransitionMessage } from './payment-status.js';

export const REFUND_STATUSES = ['pending', 'processing', 'succeeded', 'failed', 'canceled'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
export const TERMINAL_REFUND_STATUSES: readonly RefundStatus[] = ['failed', 'canceled'];

export interface RefundTransitionRow {
  from: RefundStatus;
  to: RefundStatus;
  messages: readonly TransitionMessage[];
}

const U: TransitionMessage = Object.freeze({ name: 'PaymentUpdated', orderOnly: false });
const OK: TransitionMessage = Object.freeze({ name: 'PaymentRefunded', orderOnly: false });
const FAIL: TransitionMessage = Object.freeze({ name: 'PaymentRefundFailed', orderOnly: false });
const r = (from: RefundStatus, to: RefundStatus, ...messages: TransitionMessage[]): RefundTransitionRow =>
  Object.freeze({ from, to, messages: Object.freeze(messages) });

/** states.md 3. */
export const REFUND_TRANSITIONS: readonly RefundTransitionRow[] = Object.freeze([
  r('pending', 'processing', U),
  r('pending', 'succeeded', U, OK),
  r('pending', 'failed', U, FAIL),
  r('pending', 'canceled', U, FAIL),
  r('processing', 'succeeded', U, OK),
  r('processing', 'failed', U, FAIL),
  r('processing', 'canceled', U, FAIL),
  r('succeeded', 'failed', U, FAIL),
]);

export type RefundTransitionResult =
  | { ok: true; changed: boolean; messages: TransitionMessage[] }
  | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string; to: string; message: string } };

const REFUND_SET: ReadonlySet<string> = new Set(REFUND_STATUSES);
export const isRefundStatus = (v: unknown): v is RefundStatus => typeof v === 'string' && REFUND_SET.has(v);

/** The one gate for refund records: listed pairs with their messages; same status → no-op; others illegal. */
export function refundTransition(from: RefundStatus | string, to: RefundStatus | string): RefundTransitionResult {
  if (isRefundStatus(from) && isRefundStatus(to)) {
    const hit = REFUND_TRANSITIONS.find((x) => x.from === from && x.to === to);
    if (hit) return { ok: true, changed: true, messages: hit.messages.map((x) => ({ ...x })) };
    if (from === to) return { ok: true, changed: false, messages: [] };
  }
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Refund status transition from "${from}" to "${to}" is not allowed.` } };
}

/**
 * Messages when a refund record is created in `status`: `RefundPayment` creates it `pending` (PaymentUpdated);
 * a refund first seen in a PSP webhook is created in the reported status with the messages of "pending → that status".
 */
export function refundCreation(status: RefundStatus | string): { ok: true; messages: TransitionMessage[] } | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string; to: string; message: string } } {
  if (status === 'pending') return { ok: true, messages: [{ ...U }] };
  const res = refundTransition('pending', status);
  if (res.ok) return { ok: true, messages: res.messages };
  return res;
}

export interface RefundRecord {
  id: string;
  itemKey: string;
  orderItemIds: number[];
  amount: number;
  status: RefundStatus;
}

/** Where a refund of `amount` in `status` counts on the payment: refundedAmount (succeeded) or pendingRefundAmount (pending/processing). */
function contribution(status: RefundStatus | null, amount: number): { refunded: number; pending: number } {
  if (status === 'succeeded') return { refunded: amount, pending: 0 };
  if (status === 'pending' || status === 'processing') return { refunded: 0, pending: amount };
  return { refunded: 0, pending: 0 };
}

/** Payment amounts after a refund record of `amount` moved from `from` (null = new record) to `to`. */
export function withRefundStatus<T extends PaymentAmounts>(p: T, from: RefundStatus | null, to: RefundStatus, amount: number): T {
  const a = contribution(from, amount);
  const b = contribution(to, amount);
  return {
    ...p,
    refundedAmount: p.refundedAmount - a.refunded + b.refunded,
    pendingRefundAmount: p.pendingRefundAmount - a.pending + b.pending,
  };
}

export const REFUNDABLE_STATUSES: readonly PaymentStatus[] = ['captured', 'partially_captured'];

export type RefundRejectCode = 'ITEMS_BLOCKED' | 'ILLEGAL_TRANSITION' | 'CURRENCY_MISMATCH' | 'INVALID_AMOUNT' | 'AMOUNT_EXCEEDED';

export type RefundDecision =
  | { kind: 'republish'; record: RefundRecord }
  | { kind: 'noop'; record: RefundRecord }
  /** messageItemIds: the items PaymentRefundFailed is sent for (empty = send nothing). */
  | { kind: 'reject'; code: RefundRejectCode; reason: string; messageItemIds: number[]; amount: number }
  | { kind: 'proceed'; itemKey: string; amount: number; orderItemIds: number[] };

export interface RefundCommand {
  orderItemIds: number[];
  /** May be negative (Spryker sends refunds negative): the absolute value is used. */
  amount: number;
  currency: string;
}

/**
 * flows.md 10 steps 3-5: same key (succeeded → republish, pending/processing → noop, failed/canceled → new
 * attempt), blocked items, then status, currency and amount. Rejections change nothing.
 */
export function checkRefund(
  payment: { status: PaymentStatus | string; currency: string } & PaymentAmounts,
  refunds: readonly RefundRecord[],
  cmd: RefundCommand,
): RefundDecision {
  const key = itemKey(cmd.orderItemIds);
  const ids = uniqueIds(cmd.orderItemIds);
  const amount = Number.isSafeInteger(cmd.amount) ? Math.abs(cmd.amount) : Number.NaN;
  const sameKey = refunds.filter((x) => x.itemKey === key);
  const succeeded = sameKey.find((x) => x.status === 'succeeded');
  if (succeeded) return { kind: 'republish', record: succeeded };
  const inFlight = sameKey.find((x) => x.status === 'pending' || x.status === 'processing');
  if (inFlight) return { kind: 'noop', record: inFlight };

  const blocked = new Set<number>();
  for (const x of refunds) {
    if (x.itemKey === key || (x.status !== 'pending' && x.status !== 'processing' && x.status !== 'succeeded')) continue;
    for (const id of x.orderItemIds) if (ids.includes(id)) blocked.add(id);
  }
  const reject = (code: RefundRejectCode, reason: string, messageItemIds: number[] = ids): RefundDecision => ({
    kind: 'reject',
    code,
    reason,
    messageItemIds,
    amount: Number.isNaN(amount) ? 0 : amount,
  });
  if (blocked.size > 0) {
    return reject(
      'ITEMS_BLOCKED',
      `Items ${[...blocked].sort((a, b) => a - b).join(', ')} are already refunded or being refunded.`,
      ids.filter((id) => !blocked.has(id)),
    );
  }
  if (!(REFUNDABLE_STATUSES as readonly string[]).includes(payment.status)) {
    return reject('ILLEGAL_TRANSITION', `Payment in status "${payment.status}" cannot be refunded.`);
  }
  if (typeof cmd.currency !== 'string' || !sameCurrency(cmd.currency, payment.currency)) {
    return reject('CURRENCY_MISMATCH', `Currency "${String(cmd.currency)}" does not match the payment currency "${payment.currency}".`);
  }
  if (!(amount > 0)) return reject('INVALID_AMOUNT', `Refund amount must be a non-zero integer, got ${String(cmd.amount)}.`);
  const refundable = refundableAmount(payment);
  if (amount > refundable) return reject('AMOUNT_EXCEEDED', `Refund amount ${amount} exceeds the refundable amount ${refundable}.`);
  return { kind: 'proceed', itemKey: key, amount, orderItemIds: ids };
}

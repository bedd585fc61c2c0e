/**
 * CancelPayment checks (flows.md 9 steps 3-7). Pure: decides what a cancel command does for the payment's
 * current status and cancel records.
 */
import type { OperationRecord } from './capture.js';
import { uncapturedAmount, type PaymentAmounts, type PaymentStatus } from './payment-status.js';

export type CancelDecision =
  /** Already canceled (or remainder already released): re-publish the stored PaymentCanceled (record = the succeeded cancel, if any). */
  | { kind: 'republish'; record: OperationRecord | null }
  /** A cancel record is still pending: nothing now (the pending attempt's outcome will send the message). */
  | { kind: 'noop'; record: OperationRecord }
  /** authorization_failed → canceled without a PSP call. */
  | { kind: 'cancel_without_psp'; amount: number }
  /** partially_captured: release the uncaptured remainder (→ captured, PaymentCanceled with this amount). */
  | { kind: 'release_remainder'; amount: number }
  /** Void the authorization at the PSP (→ canceled / cancellation_failed); amount = authorized − captured. */
  | { kind: 'void'; amount: number }
  | { kind: 'reject'; code: 'ILLEGAL_TRANSITION' | 'CAPTURE_PENDING'; reason: string };

export const VOIDABLE_STATUSES: readonly PaymentStatus[] = ['new', 'authorized', 'capture_requested', 'capture_failed', 'cancellation_failed'];

/**
 * flows.md 9 steps 3-7. `existing`: the payment's operation records (capture records are ignored).
 * Decisions that reach a PSP are preceded by storing a cancel record `pending` (caller).
 */
export function checkCancel(payment: { status: PaymentStatus | string } & PaymentAmounts, existing: readonly OperationRecord[]): CancelDecision {
  const cancels = existing.filter((r) => r.kind === 'cancel');
  const succeeded = [...cancels].reverse().find((r) => r.status === 'succeeded') ?? null;

  if (payment.status === 'canceled') return { kind: 'republish', record: succeeded };
  // A repeat after the remainder was released: the payment is `captured` and a cancel already succeeded.
  if (payment.status === 'captured' && succeeded && payment.releasedAmount > 0) return { kind: 'republish', record: succeeded };

  const pending = cancels.find((r) => r.status === 'pending');
  if (pending && payment.status !== 'captured') return { kind: 'noop', record: pending };

  switch (payment.status) {
    case 'authorization_failed':
      return { kind: 'cancel_without_psp', amount: uncapturedAmount(payment) };
    case 'partially_captured':
      if (payment.pendingCaptureAmount > 0) {
        return { kind: 'reject', code: 'CAPTURE_PENDING', reason: 'A capture is still pending; the remainder cannot be released yet.' };
      }
      return { kind: 'release_remainder', amount: uncapturedAmount(payment) };
    case 'captured':
      return { kind: 'reject', code: 'ILLEGAL_TRANSITION', reason: 'Payment status transition from "captured" to "canceled" is not allowed.' };
    default:
      if ((VOIDABLE_STATUSES as readonly string[]).includes(payment.status)) return { kind: 'void', amount: uncapturedAmount(payment) };
      return { kind: 'reject', code: 'ILLEGAL_TRANSITION', reason: `Payment status transition from "${payment.status}" to "canceled" is not allowed.` };
  }
}

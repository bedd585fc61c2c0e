/**
 * "Apply payment outcome" (flows.md 4 step 9): the one code path through which what the PSP says about a payment
 * (webhook, redirect check, pre-order confirmation, reconciliation) changes the payment. Runs inside the caller's
 * transaction with the payment row locked, so concurrent outcomes are applied one after the other and each
 * transition writes its messages exactly once (states.md 8, messages.md 6).
 */
import type { PspPaymentState } from '../connectors/types.js';
import {
  amountInvariantViolations,
  illegalTransitionMessage,
  messagesFor,
  statusForAuthorizationOutcome,
  transition,
  uncapturedAmount,
  withAuthorization,
  withRemainderReleased,
  withVoid,
  type PaymentAmounts,
  type PaymentStatus,
  type PaymentTrigger,
} from '../domain/payment-status.js';
import { enqueue, type OutgoingMessage } from '../messaging/outbox.js';
import type { Tx } from '../store/db.js';
import { appendHistory, listHistory, lockPayment, updatePayment, type HistoryTrigger, type PaymentChanges, type PaymentRow } from '../store/payments.js';
import type { AppDeps } from './context.js';
import { eventKeys, paymentStatusMessage, paymentUpdatedMessage } from './payment-messages.js';

export interface PaymentOutcome {
  state: PspPaymentState;
  decline?: { code: string; message: string };
  publicDetails?: Record<string, unknown>;
  /** Total captured at the PSP (automatic or PSP-side capture). */
  amountCaptured?: number;
}

export interface OutcomeSource {
  trigger: HistoryTrigger;
  /** Request id, command message id or webhook inbox id: history `trigger_ref` and the messages' correlationId. */
  ref: string;
}

export interface ApplyOutcomeResult {
  kind: 'applied' | 'noop' | 'ignored' | 'waiting_for_order';
  status: PaymentStatus;
  reason?: string;
}

/** The status a PSP state reports, before any transition rule (used to tell a stale report from a repeat). */
const REPORTED_STATUS: Record<PspPaymentState, PaymentStatus> = {
  pending: 'new',
  requires_action: 'new',
  authorized: 'authorized',
  captured: 'captured',
  capture_failed: 'capture_failed',
  failed: 'authorization_failed',
  canceled: 'canceled',
};

const amountsOf = (p: PaymentRow): PaymentAmounts => ({
  amount: p.amount,
  authorizedAmount: p.authorizedAmount,
  capturedAmount: p.capturedAmount,
  pendingCaptureAmount: p.pendingCaptureAmount,
  releasedAmount: p.releasedAmount,
  refundedAmount: p.refundedAmount,
  pendingRefundAmount: p.pendingRefundAmount,
});

/** Amounts after the transition (states.md 1.3). */
function amountsAfter(p: PaymentRow, to: PaymentStatus, trigger: PaymentTrigger, outcome: PaymentOutcome): PaymentAmounts {
  let a = amountsOf(p);
  switch (trigger) {
    case 'authorized':
    case 'authorized_capture_failed':
      return withAuthorization(a);
    case 'authorized_captured':
      a = withAuthorization(a);
      return { ...a, capturedAmount: Math.min(a.authorizedAmount, outcome.amountCaptured ?? a.authorizedAmount) };
    case 'capture_succeeded': {
      const captured = Math.max(a.capturedAmount, Math.min(a.authorizedAmount, outcome.amountCaptured ?? a.authorizedAmount));
      return { ...a, capturedAmount: captured, pendingCaptureAmount: to === 'captured' ? 0 : Math.max(0, Math.min(a.pendingCaptureAmount, a.authorizedAmount - captured)) };
    }
    case 'remainder_released':
      return withRemainderReleased(a);
    case 'cancel_succeeded':
      return withVoid(a);
    default:
      return a;
  }
}

/** Amount of a status message caused by an outcome without an operation record (messages.md 3.3). */
function messageAmount(name: string, before: PaymentRow, after: PaymentRow): number {
  switch (name) {
    case 'PaymentAuthorized':
    case 'PaymentAuthorizationFailed':
    case 'PaymentCaptureFailed':
      return after.authorizedAmount || after.amount;
    case 'PaymentCaptured':
      return Math.max(0, after.capturedAmount - before.capturedAmount);
    case 'PaymentCanceled':
    case 'PaymentCancellationFailed':
      return before.authorizedAmount > 0 ? uncapturedAmount(amountsOf(before)) : before.amount;
    default:
      return after.amount;
  }
}

export async function applyPaymentOutcome(deps: AppDeps, tx: Tx, paymentId: string, outcome: PaymentOutcome, source: OutcomeSource): Promise<ApplyOutcomeResult> {
  const payment = await lockPayment(tx, paymentId);
  const from = payment.status as PaymentStatus;
  const reported = REPORTED_STATUS[outcome.state];
  if (reported === undefined) return { kind: 'ignored', status: from, reason: `unknown PSP state "${String(outcome.state)}"` };

  // Still pending / action required: nothing changes; a retryable decline is recorded in the history details.
  if (outcome.state === 'pending' || outcome.state === 'requires_action') {
    if (from !== 'new') return { kind: 'ignored', status: from, reason: illegalTransitionMessage(from, 'new') };
    if (outcome.state === 'pending' && outcome.decline) {
      const check = transition(from, from, 'retryable_decline');
      if (!check.ok) return { kind: 'ignored', status: from, reason: check.error.message };
      await appendHistory(tx, payment.id, from, source.trigger, source.ref, { retryableDecline: { code: outcome.decline.code, message: outcome.decline.message } });
      return { kind: 'noop', status: from, reason: 'retryable decline recorded' };
    }
    return { kind: 'noop', status: from };
  }

  const target = statusForAuthorizationOutcome(outcome.state, from);
  if (target === null) {
    if (reported === from) return { kind: 'noop', status: from };
    return { kind: 'ignored', status: from, reason: illegalTransitionMessage(from, reported) };
  }
  let { to, trigger } = target;
  if (to === from) return { kind: 'noop', status: from };

  let amounts = amountsAfter(payment, to, trigger, outcome);
  // A PSP-side capture that did not take the whole authorization leaves the payment partially captured.
  if (trigger === 'capture_succeeded' && to === 'captured' && amounts.capturedAmount + amounts.releasedAmount < amounts.authorizedAmount) {
    to = 'partially_captured';
    amounts = amountsAfter(payment, to, trigger, outcome);
  }
  if (to === from) {
    if (amounts.capturedAmount === payment.capturedAmount) return { kind: 'noop', status: from };
  }

  const check = transition(from, to, trigger);
  if (!check.ok) return { kind: 'ignored', status: from, reason: check.error.message };

  const violations = amountInvariantViolations(amounts, to);
  if (violations.length > 0) return { kind: 'ignored', status: from, reason: `amounts would break ${violations.join('; ')}` };

  // A payment without an order keeps its status until it is linked (states.md 1.4); the caller holds the event.
  if (!payment.orderReference) return { kind: 'waiting_for_order', status: from, reason: 'payment is not linked to an order yet' };

  const changes: PaymentChanges = {
    status: to,
    authorizedAmount: amounts.authorizedAmount,
    capturedAmount: amounts.capturedAmount,
    pendingCaptureAmount: amounts.pendingCaptureAmount,
    releasedAmount: amounts.releasedAmount,
  };
  if (outcome.publicDetails && Object.keys(outcome.publicDetails).length > 0) changes.pspDetails = { ...payment.pspDetails, ...outcome.publicDetails };
  const updated = await updatePayment(tx, payment.id, changes);
  const historyDetails = outcome.decline ? { decline: { code: outcome.decline.code, message: outcome.decline.message } } : null;
  const entry = await appendHistory(tx, payment.id, to, source.trigger, source.ref, historyDetails);
  const history = await listHistory(tx, payment.id);

  const out: OutgoingMessage[] = [];
  for (const m of messagesFor(check.messages, updated.orderReference !== null)) {
    if (m.name === 'PaymentUpdated') out.push(paymentUpdatedMessage(updated, history, source.ref));
    else
      out.push(
        paymentStatusMessage(m.name, updated, {
          eventKey: eventKeys.status(updated.id, entry.seq),
          amount: messageAmount(m.name, payment, updated),
          correlationId: source.ref,
        }),
      );
  }
  await enqueue(tx, deps.config.appIdentifier, out);
  return { kind: 'applied', status: to };
}

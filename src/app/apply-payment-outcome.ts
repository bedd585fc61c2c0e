/**
 * "Apply payment outcome" (flows.md 4 step 9): the one code path through which what the PSP says about a payment
 * (webhook, redirect check, pre-order confirmation, reconciliation) changes the payment. Runs inside the caller's
 * transaction with the payment row locked, so concurrent outcomes are applied one after the other and each
 * transition writes its messages exactly once (states.md 8, messages.md 6).
 */
import type { Connector, PspPaymentState } from '../connectors/types.js';
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
import { outboxRowsOf, outboxWritten, type OutgoingMessage } from '../messaging/outbox.js';
import type { CompanionWrite, Tx } from '../store/db.js';
import {
  appendHistory,
  findPaymentById,
  listHistory,
  lockPaymentWithHistory,
  updatePayment,
  updatePaymentRecording,
  type HistoryRow,
  type HistoryTrigger,
  type PaymentChanges,
  type PaymentRow,
} from '../store/payments.js';
import { plannedChange, pspContextOf } from './capture-payment.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { eventKeys, paymentStatusMessage, paymentUpdatedMessage } from './payment-messages.js';

export interface PaymentOutcome {
  state: PspPaymentState;
  /** `attemptId`: the PSP's id of the declined attempt (counted once per payment for the declined-attempts cap). */
  decline?: { code: string; message: string; attemptId?: string };
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
  /** The payment reached the declined-attempts cap (capability `finalDeclines: false`): `enforceDeclineCap` follows. */
  declineCapReached?: boolean;
}

/** Default cap when a connector without final declines names none (stripe.md 3.4: 5, like the sandbox). */
export const DEFAULT_DECLINED_ATTEMPTS_CAP = 5;

/**
 * The declined-attempts cap of a connector whose PSP never declares a payment finally failed (capability
 * `finalDeclines: false`, stripe.md 3.4); null when the PSP reports final declines itself.
 */
export function declinedAttemptsCap(connector: Connector): number | null {
  if (connector.capabilities.finalDeclines) return null;
  const own = connector.maxDeclinedAttempts;
  return typeof own === 'number' && Number.isSafeInteger(own) && own > 0 ? own : DEFAULT_DECLINED_ATTEMPTS_CAP;
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

/**
 * True when the PSP restates the status the payment already has, with nothing else to record: applying it would
 * write nothing (the redirect check skips the transaction then; a concurrent change can only be applied by its own path).
 */
export function outcomeRestatesStatus(status: string, outcome: Pick<PaymentOutcome, 'state' | 'decline'>): boolean {
  return !outcome.decline && REPORTED_STATUS[outcome.state] === status;
}

export async function applyPaymentOutcome(
  deps: AppDeps,
  tx: Tx,
  subject: string | { locked: PaymentRow; history?: HistoryRow[] },
  outcome: PaymentOutcome,
  source: OutcomeSource,
  /** A write that belongs with an applied change (the webhook inbox row's `processed`): made by the same statement, only when the outcome is applied. */
  alongside?: CompanionWrite,
): Promise<ApplyOutcomeResult> {
  // a payment id, or the payment the caller already locked in `tx` (the webhook's context read takes the lock, and
  // its history with it)
  const locked = typeof subject === 'string' ? await lockPaymentWithHistory(tx, subject) : { payment: subject.locked, history: subject.history };
  const payment = locked.payment;
  const from = payment.status as PaymentStatus;
  const reported = REPORTED_STATUS[outcome.state];
  if (reported === undefined) return { kind: 'ignored', status: from, reason: `unknown PSP state "${String(outcome.state)}"` };

  // Still pending / action required: nothing changes; a retryable decline is recorded in the history details.
  if (outcome.state === 'pending' || outcome.state === 'requires_action') {
    if (from !== 'new') return { kind: 'ignored', status: from, reason: illegalTransitionMessage(from, 'new') };
    if (outcome.state === 'pending' && outcome.decline) {
      const check = transition(from, from, 'retryable_decline');
      if (!check.ok) return { kind: 'ignored', status: from, reason: check.error.message };
      // One attempt counts once, whether the redirect check or a webhook reports it first (stripe.md 8).
      const attempt = outcome.decline.attemptId;
      const cap = declinedAttemptsCap(deps.connectors.require(payment.connector));
      let attempts = payment.declinedAttempts;
      if (cap !== null && attempt && !attempts.includes(attempt)) {
        attempts = [...attempts, attempt];
        await updatePayment(tx, payment.id, { declinedAttempts: attempts });
      }
      if (cap === null || !attempt || payment.declinedAttempts.length !== attempts.length) {
        await appendHistory(tx, payment.id, from, source.trigger, source.ref, { retryableDecline: { code: outcome.decline.code, message: outcome.decline.message } });
      }
      const declineCapReached = cap !== null && attempts.length >= cap;
      // The redirect check enforces the cap itself before it answers the browser; every other path after commit.
      if (declineCapReached && source.trigger !== 'redirect') {
        const decline = outcome.decline;
        tx.afterCommit(() => {
          enforceDeclineCap(deps, payment.id, decline, source).catch((err) =>
            deps.log.error({ err: err instanceof Error ? err.message : String(err), paymentId: payment.id }, 'declined-attempts cap: cancel failed; retried with the next decline or redirect'),
          );
        });
      }
      return { kind: 'noop', status: from, reason: 'retryable decline recorded', ...(declineCapReached ? { declineCapReached } : {}) };
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
  const historyDetails = outcome.decline ? { decline: { code: outcome.decline.code, message: outcome.decline.message } } : null;

  // The row, its history entry and the messages as they will be stored, then all of them in one statement.
  const entryInput = { status: to, trigger: source.trigger, ref: source.ref, details: historyDetails };
  const at = new Date();
  const planned = plannedChange(payment, changes, locked.history ?? (await listHistory(tx, payment.id)), entryInput, at);
  const updated = planned.payment;
  const entry = planned.entry!;
  const out: OutgoingMessage[] = [];
  for (const m of messagesFor(check.messages, updated.orderReference !== null)) {
    if (m.name === 'PaymentUpdated') out.push(paymentUpdatedMessage(updated, planned.history, source.ref));
    else
      out.push(
        paymentStatusMessage(m.name, updated, {
          eventKey: eventKeys.status(updated.id, entry.seq),
          amount: messageAmount(m.name, payment, updated),
          correlationId: source.ref,
        }),
      );
  }
  await updatePaymentRecording(tx, payment.id, changes, entryInput, false, { at, seq: entry.seq, outbox: outboxRowsOf(deps.config.appIdentifier, out) }, alongside);
  if (out.length > 0) tx.afterCommit(outboxWritten);
  return { kind: 'applied', status: to };
}

/**
 * The declined-attempts cap (stripe.md 3.4, 8): the app cancels the PSP payment (`abandoned`, a key derived from the
 * payment) and reports `authorization_failed`. Outside any transaction; idempotent (same key, then a no-op outcome).
 * A refused cancel (the shopper paid meanwhile) changes nothing: the PSP's own report settles the payment.
 */
export async function enforceDeclineCap(deps: AppDeps, paymentId: string, decline: { code: string; message: string }, source: OutcomeSource): Promise<ApplyOutcomeResult | null> {
  const payment = await findPaymentById(deps.db, paymentId);
  if (!payment || payment.status !== 'new') return null;
  const psp = await pspContextOf(deps, payment);
  if (!psp) return null;
  const cap = declinedAttemptsCap(psp.connector);
  if (cap === null || payment.declinedAttempts.length < cap) return null;
  const r = await psp.connector.cancel(psp.settings, payment.transactionId, { idempotencyKey: `decline-cap-${payment.id}`, reason: 'abandoned', signal: AbortSignal.timeout(PSP_CALL_TIMEOUT_MS) });
  if (!r.ok || r.value.status !== 'canceled') {
    deps.log.warn({ paymentId, failure: r.ok ? r.value.status : r.failure.kind }, 'declined-attempts cap: the PSP did not cancel the payment');
    return null;
  }
  return deps.db.tx((tx) => applyPaymentOutcome(deps, tx, paymentId, { state: 'failed', decline: { code: decline.code, message: decline.message } }, source));
}

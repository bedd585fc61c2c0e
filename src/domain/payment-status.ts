/**
 * The payment status machine (states.md 1). Pure data + functions; `transition` is the one gate every
 * payment status change goes through (states.md 8 rule 1).
 */

export const PAYMENT_STATUSES = [
  'new',
  'authorized',
  'authorization_failed',
  'capture_requested',
  'partially_captured',
  'captured',
  'capture_failed',
  'canceled',
  'cancellation_failed',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const TERMINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = ['captured', 'canceled'];

export const PAYMENT_TRIGGERS = [
  'authorized', // new → authorized
  'authorized_captured', // new → captured (automatic capture)
  'authorized_capture_failed', // new → capture_failed (automatic capture failed)
  'authorization_failed',
  'capture_pending',
  'capture_succeeded',
  'capture_failed',
  'cancel_succeeded',
  'cancel_failed',
  'remainder_released', // partially_captured → captured via CancelPayment
  'remainder_release_failed',
  'retryable_decline', // new stays new; recorded in history details only
] as const;
export type PaymentTrigger = (typeof PAYMENT_TRIGGERS)[number];

/** The status messages of messages.md 3.3 (same payload each). */
export const PAYMENT_STATUS_MESSAGES = [
  'PaymentAuthorized',
  'PaymentAuthorizationFailed',
  'PaymentCaptured',
  'PaymentCaptureFailed',
  'PaymentCanceled',
  'PaymentCancellationFailed',
  'PaymentRefunded',
  'PaymentRefundFailed',
  'PaymentOverpaid',
  'PaymentUnderpaid',
] as const;
export type PaymentStatusMessage = (typeof PAYMENT_STATUS_MESSAGES)[number];

export interface TransitionMessage {
  name: 'PaymentUpdated' | PaymentStatusMessage;
  /** Sent only when the payment is linked to an order (the `*` of states.md 1.2). */
  orderOnly: boolean;
}

export interface PaymentTransitionRow {
  from: PaymentStatus;
  to: PaymentStatus;
  trigger: PaymentTrigger;
  messages: readonly TransitionMessage[];
}

const U: TransitionMessage = Object.freeze({ name: 'PaymentUpdated', orderOnly: false });
const m = (name: PaymentStatusMessage, orderOnly = false): TransitionMessage => Object.freeze({ name, orderOnly });
const row = (from: PaymentStatus, to: PaymentStatus, trigger: PaymentTrigger, ...messages: TransitionMessage[]): PaymentTransitionRow =>
  Object.freeze({ from, to, trigger, messages: Object.freeze(messages) });

/** states.md 1.2: every allowed transition, plus the outcomes that keep the status but still emit (from === to). */
export const PAYMENT_TRANSITIONS: readonly PaymentTransitionRow[] = Object.freeze([
  row('new', 'authorized', 'authorized', U, m('PaymentAuthorized', true)),
  row('new', 'captured', 'authorized_captured', U, m('PaymentAuthorized', true), m('PaymentCaptured', true)),
  row('new', 'capture_failed', 'authorized_capture_failed', U, m('PaymentAuthorized', true), m('PaymentCaptureFailed', true)),
  row('new', 'authorization_failed', 'authorization_failed', U, m('PaymentAuthorizationFailed', true)),
  row('new', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled', true)),
  row('new', 'cancellation_failed', 'cancel_failed', U, m('PaymentCancellationFailed', true)),

  row('authorized', 'capture_requested', 'capture_pending', U),
  row('authorized', 'partially_captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('authorized', 'captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('authorized', 'capture_failed', 'capture_failed', U, m('PaymentCaptureFailed')),
  row('authorized', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled')),
  row('authorized', 'cancellation_failed', 'cancel_failed', U, m('PaymentCancellationFailed')),

  row('capture_requested', 'partially_captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('capture_requested', 'captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('capture_requested', 'capture_failed', 'capture_failed', U, m('PaymentCaptureFailed')),
  row('capture_requested', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled')),
  row('capture_requested', 'cancellation_failed', 'cancel_failed', U, m('PaymentCancellationFailed')),

  row('partially_captured', 'captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('partially_captured', 'captured', 'remainder_released', U, m('PaymentCanceled')),

  row('capture_failed', 'capture_requested', 'capture_pending', U),
  row('capture_failed', 'partially_captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('capture_failed', 'captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('capture_failed', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled')),
  row('capture_failed', 'cancellation_failed', 'cancel_failed', U, m('PaymentCancellationFailed')),

  row('cancellation_failed', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled')),

  row('authorization_failed', 'canceled', 'cancel_succeeded', U, m('PaymentCanceled')),

  // Outcomes that do not change the status but still emit.
  row('partially_captured', 'partially_captured', 'capture_succeeded', U, m('PaymentCaptured')),
  row('partially_captured', 'partially_captured', 'capture_failed', m('PaymentCaptureFailed')),
  row('partially_captured', 'partially_captured', 'capture_pending', U),
  row('partially_captured', 'partially_captured', 'remainder_release_failed', m('PaymentCancellationFailed')),
  row('cancellation_failed', 'cancellation_failed', 'cancel_failed', m('PaymentCancellationFailed')),
  row('new', 'new', 'retryable_decline'),
]);

export interface IllegalTransitionError {
  code: 'ILLEGAL_TRANSITION';
  from: string;
  to: string;
  message: string;
}

export type TransitionResult =
  | { ok: true; changed: boolean; messages: TransitionMessage[] }
  | { ok: false; error: IllegalTransitionError };

export const illegalTransitionMessage = (from: string, to: string): string =>
  `Payment status transition from "${from}" to "${to}" is not allowed.`;

const STATUS_SET: ReadonlySet<string> = new Set(PAYMENT_STATUSES);
export const isPaymentStatus = (value: unknown): value is PaymentStatus => typeof value === 'string' && STATUS_SET.has(value);

/** The rows for a (from, to) pair (several triggers may share a pair). */
export function transitionRows(from: string, to: string): PaymentTransitionRow[] {
  return PAYMENT_TRANSITIONS.filter((r) => r.from === from && r.to === to);
}

/** True when some trigger allows the pair (from !== to). */
export function isAllowedPaymentTransition(from: string, to: string): boolean {
  return from !== to && transitionRows(from, to).length > 0;
}

/**
 * The one gate (states.md 8). A listed (from, to, trigger) row succeeds with its messages (in order);
 * from === to without a row is a successful no-op (rule 3); anything else is illegal.
 * A listed pair with a trigger that does not belong to it is illegal too (the messages depend on the trigger).
 */
export function transition(from: PaymentStatus | string, to: PaymentStatus | string, trigger: PaymentTrigger | string): TransitionResult {
  if (isPaymentStatus(from) && isPaymentStatus(to)) {
    const hit = PAYMENT_TRANSITIONS.find((r) => r.from === from && r.to === to && r.trigger === trigger);
    if (hit) return { ok: true, changed: from !== to, messages: hit.messages.map((x) => ({ ...x })) };
    if (from === to) return { ok: true, changed: false, messages: [] };
  }
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: illegalTransitionMessage(from, to) } };
}

/** Keeps only the messages that may be sent: `orderOnly` ones are dropped for a payment without an order. */
export function messagesFor(messages: readonly TransitionMessage[], hasOrder: boolean): TransitionMessage[] {
  return messages.filter((x) => hasOrder || !x.orderOnly);
}

// ---------------------------------------------------------------------------------------------
// Amounts (states.md 1.3)
// ---------------------------------------------------------------------------------------------

export interface PaymentAmounts {
  amount: number;
  authorizedAmount: number;
  capturedAmount: number;
  pendingCaptureAmount: number;
  releasedAmount: number;
  refundedAmount: number;
  pendingRefundAmount: number;
}

/** What can still be captured: authorized − captured − pending captures − released. */
export function capturableAmount(p: PaymentAmounts): number {
  return Math.max(0, p.authorizedAmount - p.capturedAmount - p.pendingCaptureAmount - p.releasedAmount);
}

/** What can still be refunded: captured − succeeded refunds − pending/processing refunds. */
export function refundableAmount(p: PaymentAmounts): number {
  return Math.max(0, p.capturedAmount - p.refundedAmount - p.pendingRefundAmount);
}

/** Amount of the authorization that a void or remainder release gives back: authorized − captured. */
export function uncapturedAmount(p: PaymentAmounts): number {
  return Math.max(0, p.authorizedAmount - p.capturedAmount);
}

/**
 * Status after a capture of `captureAmount` succeeded. `p` is the state before this capture is counted
 * (its amount not yet in `capturedAmount`).
 */
export function nextStatusAfterCapture(p: PaymentAmounts, captureAmount: number): 'partially_captured' | 'captured' {
  return p.capturedAmount + captureAmount >= p.authorizedAmount ? 'captured' : 'partially_captured';
}

/** Status after a capture failed: `capture_failed` if nothing was captured before, else unchanged (flows.md 8 step 8). */
export function nextStatusAfterCaptureFailed<S extends string>(p: PaymentAmounts, current: S): S | 'capture_failed' {
  return p.capturedAmount === 0 ? 'capture_failed' : current;
}

/** Status after a capture was accepted but is pending: `capture_requested` if nothing was captured before, else unchanged. */
export function nextStatusAfterCapturePending<S extends string>(p: PaymentAmounts, current: S): S | 'capture_requested' {
  return p.capturedAmount === 0 ? 'capture_requested' : current;
}

/** Amounts once the payment becomes authorized (authorizedAmount = amount). */
export function withAuthorization<T extends PaymentAmounts>(p: T): T {
  return { ...p, authorizedAmount: p.amount };
}

/** Amounts after a capture record was stored `pending`. */
export function withPendingCapture<T extends PaymentAmounts>(p: T, amount: number): T {
  return { ...p, pendingCaptureAmount: p.pendingCaptureAmount + amount };
}

/**
 * Amounts after a capture settled. `wasPending`: the amount had been added to pendingCaptureAmount
 * (a record stored before the PSP call); false for a PSP-side capture without a record.
 */
export function withSettledCapture<T extends PaymentAmounts>(p: T, amount: number, succeeded: boolean, wasPending: boolean): T {
  const pendingCaptureAmount = wasPending ? Math.max(0, p.pendingCaptureAmount - amount) : p.pendingCaptureAmount;
  return { ...p, pendingCaptureAmount, capturedAmount: succeeded ? p.capturedAmount + amount : p.capturedAmount };
}

/** Amounts after the uncaptured remainder was released (partially_captured → captured). */
export function withRemainderReleased<T extends PaymentAmounts>(p: T): T {
  return { ...p, pendingCaptureAmount: 0, releasedAmount: p.authorizedAmount - p.capturedAmount };
}

/** Amounts after the authorization was voided (→ canceled): pending captures are gone with the authorization. */
export function withVoid<T extends PaymentAmounts>(p: T): T {
  return { ...p, pendingCaptureAmount: 0 };
}

/** Names the invariants of states.md 1.3 that `p` breaks for `status` (empty = all hold). */
export function amountInvariantViolations(p: PaymentAmounts, status?: PaymentStatus): string[] {
  const out: string[] = [];
  const all = [p.amount, p.authorizedAmount, p.capturedAmount, p.pendingCaptureAmount, p.releasedAmount, p.refundedAmount, p.pendingRefundAmount];
  if (!all.every((v) => Number.isSafeInteger(v) && v >= 0)) out.push('amounts are non-negative integers');
  if (p.capturedAmount + p.pendingCaptureAmount > p.authorizedAmount) out.push('capturedAmount + pendingCaptureAmount <= authorizedAmount');
  if (p.capturedAmount + p.pendingCaptureAmount + p.releasedAmount > p.authorizedAmount) out.push('capturedAmount + pendingCaptureAmount + releasedAmount <= authorizedAmount');
  if (p.refundedAmount + p.pendingRefundAmount > p.capturedAmount) out.push('refundedAmount + pendingRefundAmount <= capturedAmount');
  if (status === 'captured' && p.capturedAmount + p.releasedAmount !== p.authorizedAmount) out.push('capturedAmount + releasedAmount = authorizedAmount when captured');
  return out;
}

// ---------------------------------------------------------------------------------------------
// PSP payment state → status (authorization outcome, webhook, redirect check, reconciliation)
// ---------------------------------------------------------------------------------------------

export type PspPaymentStateLike = 'pending' | 'requires_action' | 'authorized' | 'captured' | 'capture_failed' | 'failed' | 'canceled';

/**
 * Maps the connector's PspPaymentState to the target status and trigger. `from` defaults to `new`
 * (authorization outcome). null = no status change (pending / requires_action, or the state the payment already has).
 * The result still has to pass `transition` (e.g. `failed` after `authorized` is rejected there).
 */
export function statusForAuthorizationOutcome(
  pspState: PspPaymentStateLike,
  from: PaymentStatus | string = 'new',
): { to: PaymentStatus; trigger: PaymentTrigger } | null {
  switch (pspState) {
    case 'pending':
    case 'requires_action':
      return null;
    case 'authorized':
      return from === 'new' ? { to: 'authorized', trigger: 'authorized' } : null;
    case 'captured':
      if (from === 'new') return { to: 'captured', trigger: 'authorized_captured' };
      return from === 'captured' ? null : { to: 'captured', trigger: 'capture_succeeded' };
    case 'capture_failed':
      if (from === 'new') return { to: 'capture_failed', trigger: 'authorized_capture_failed' };
      return from === 'capture_failed' ? null : { to: 'capture_failed', trigger: 'capture_failed' };
    case 'failed':
      return from === 'authorization_failed' ? null : { to: 'authorization_failed', trigger: 'authorization_failed' };
    case 'canceled':
      if (from === 'partially_captured') return { to: 'captured', trigger: 'remainder_released' };
      return from === 'canceled' ? null : { to: 'canceled', trigger: 'cancel_succeeded' };
    default:
      return null;
  }
}

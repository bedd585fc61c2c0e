import { describe, expect, it } from 'vitest';
import {
  PAYMENT_STATUSES,
  PAYMENT_TRANSITIONS,
  PAYMENT_TRIGGERS,
  amountInvariantViolations,
  capturableAmount,
  isAllowedPaymentTransition,
  messagesFor,
  nextStatusAfterCapture,
  nextStatusAfterCaptureFailed,
  nextStatusAfterCapturePending,
  statusForAuthorizationOutcome,
  transition,
  withAuthorization,
  withPendingCapture,
  withRemainderReleased,
  withSettledCapture,
  type PaymentAmounts,
} from '../../src/domain/payment-status.js';

// The table of states.md 1.2, written independently of the implementation: from | to | trigger | msgs (* = order only).
const SPEC = `
new | authorized | authorized | PaymentUpdated, PaymentAuthorized*
new | captured | authorized_captured | PaymentUpdated, PaymentAuthorized*, PaymentCaptured*
new | capture_failed | authorized_capture_failed | PaymentUpdated, PaymentAuthorized*, PaymentCaptureFailed*
new | authorization_failed | authorization_failed | PaymentUpdated, PaymentAuthorizationFailed*
new | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled*
new | cancellation_failed | cancel_failed | PaymentUpdated, PaymentCancellationFailed*
authorized | capture_requested | capture_pending | PaymentUpdated
authorized | partially_captured | capture_succeeded | PaymentUpdated, PaymentCaptured
authorized | captured | capture_succeeded | PaymentUpdated, PaymentCaptured
authorized | capture_failed | capture_failed | PaymentUpdated, PaymentCaptureFailed
authorized | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled
authorized | cancellation_failed | cancel_failed | PaymentUpdated, PaymentCancellationFailed
capture_requested | partially_captured | capture_succeeded | PaymentUpdated, PaymentCaptured
capture_requested | captured | capture_succeeded | PaymentUpdated, PaymentCaptured
capture_requested | capture_failed | capture_failed | PaymentUpdated, PaymentCaptureFailed
capture_requested | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled
capture_requested | cancellation_failed | cancel_failed | PaymentUpdated, PaymentCancellationFailed
partially_captured | captured | capture_succeeded | PaymentUpdated, PaymentCaptured
partially_captured | captured | remainder_released | PaymentUpdated, PaymentCanceled
capture_failed | capture_requested | capture_pending | PaymentUpdated
capture_failed | partially_captured | capture_succeeded | PaymentUpdated, PaymentCaptured
capture_failed | captured | capture_succeeded | PaymentUpdated, PaymentCaptured
capture_failed | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled
capture_failed | cancellation_failed | cancel_failed | PaymentUpdated, PaymentCancellationFailed
cancellation_failed | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled
authorization_failed | canceled | cancel_succeeded | PaymentUpdated, PaymentCanceled
partially_captured | partially_captured | capture_succeeded | PaymentUpdated, PaymentCaptured
partially_captured | partially_captured | capture_failed | PaymentCaptureFailed
partially_captured | partially_captured | capture_pending | PaymentUpdated
partially_captured | partially_captured | remainder_release_failed | PaymentCancellationFailed
cancellation_failed | cancellation_failed | cancel_failed | PaymentCancellationFailed
new | new | retryable_decline |
`;

const expected = new Map<string, Array<{ name: string; orderOnly: boolean }>>();
for (const line of SPEC.trim().split('\n')) {
  const [from, to, trigger, msgs] = line.split('|').map((s) => s.trim());
  const list = msgs ? msgs.split(',').map((s) => s.trim()) : [];
  expected.set(`${from}>${to}>${trigger}`, list.map((n) => ({ name: n.replace('*', ''), orderOnly: n.endsWith('*') })));
}

const amounts = (over: Partial<PaymentAmounts> = {}): PaymentAmounts => ({
  amount: 10000,
  authorizedAmount: 10000,
  capturedAmount: 0,
  pendingCaptureAmount: 0,
  releasedAmount: 0,
  refundedAmount: 0,
  pendingRefundAmount: 0,
  ...over,
});

describe('payment status machine (states.md 1.2)', () => {
  it('has nine statuses and the table has exactly the spec rows', () => {
    expect(PAYMENT_STATUSES).toHaveLength(9);
    expect(PAYMENT_TRANSITIONS).toHaveLength(expected.size);
    for (const r of PAYMENT_TRANSITIONS) expect(expected.has(`${r.from}>${r.to}>${r.trigger}`)).toBe(true);
  });

  const cases: Array<[string, string, string]> = [];
  for (const from of PAYMENT_STATUSES) for (const to of PAYMENT_STATUSES) for (const trigger of PAYMENT_TRIGGERS) cases.push([from, to, trigger]);

  it.each(cases)('%s → %s (%s)', (from, to, trigger) => {
    const res = transition(from, to, trigger);
    const want = expected.get(`${from}>${to}>${trigger}`);
    if (want) {
      expect(res).toEqual({ ok: true, changed: from !== to, messages: want });
    } else if (from === to) {
      expect(res).toEqual({ ok: true, changed: false, messages: [] });
    } else {
      expect(res).toEqual({
        ok: false,
        error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Payment status transition from "${from}" to "${to}" is not allowed.` },
      });
    }
  });

  it('every pair is allowed for some trigger exactly when the spec lists it', () => {
    const pairs = new Set([...expected.keys()].map((k) => k.split('>').slice(0, 2).join('>')));
    for (const from of PAYMENT_STATUSES)
      for (const to of PAYMENT_STATUSES) expect(isAllowedPaymentTransition(from, to)).toBe(from !== to && pairs.has(`${from}>${to}`));
  });

  it('terminal statuses have no way out', () => {
    for (const from of ['captured', 'canceled'] as const)
      for (const to of PAYMENT_STATUSES)
        if (to !== from) for (const t of PAYMENT_TRIGGERS) expect(transition(from, to, t).ok).toBe(false);
  });

  it('rejects unknown statuses, including as a same-status pair', () => {
    expect(transition('paid', 'paid', 'authorized').ok).toBe(false);
    expect(transition('new', 'paid', 'authorized').ok).toBe(false);
    expect(transition('NEW', 'authorized', 'authorized').ok).toBe(false);
  });

  it('returned messages are copies: mutating them does not change the table', () => {
    const res = transition('new', 'authorized', 'authorized');
    if (!res.ok) throw new Error('expected ok');
    res.messages.push({ name: 'PaymentRefunded', orderOnly: false });
    res.messages[0]!.name = 'PaymentCaptured';
    expect(transition('new', 'authorized', 'authorized')).toEqual({
      ok: true,
      changed: true,
      messages: [
        { name: 'PaymentUpdated', orderOnly: false },
        { name: 'PaymentAuthorized', orderOnly: true },
      ],
    });
  });

  it('messagesFor drops order-only messages for a payment without an order', () => {
    const res = transition('new', 'canceled', 'cancel_succeeded');
    if (!res.ok) throw new Error('expected ok');
    expect(messagesFor(res.messages, false).map((x) => x.name)).toEqual(['PaymentUpdated']);
    expect(messagesFor(res.messages, true).map((x) => x.name)).toEqual(['PaymentUpdated', 'PaymentCanceled']);
  });
});

describe('statusForAuthorizationOutcome', () => {
  it('maps PSP states from new', () => {
    expect(statusForAuthorizationOutcome('pending')).toBeNull();
    expect(statusForAuthorizationOutcome('requires_action')).toBeNull();
    expect(statusForAuthorizationOutcome('authorized')).toEqual({ to: 'authorized', trigger: 'authorized' });
    expect(statusForAuthorizationOutcome('captured')).toEqual({ to: 'captured', trigger: 'authorized_captured' });
    expect(statusForAuthorizationOutcome('capture_failed')).toEqual({ to: 'capture_failed', trigger: 'authorized_capture_failed' });
    expect(statusForAuthorizationOutcome('failed')).toEqual({ to: 'authorization_failed', trigger: 'authorization_failed' });
    expect(statusForAuthorizationOutcome('canceled')).toEqual({ to: 'canceled', trigger: 'cancel_succeeded' });
  });

  it('every mapping from new is a legal transition', () => {
    for (const s of ['authorized', 'captured', 'capture_failed', 'failed', 'canceled'] as const) {
      const m = statusForAuthorizationOutcome(s)!;
      expect(transition('new', m.to, m.trigger).ok).toBe(true);
    }
  });

  it('maps PSP-side changes after authorization', () => {
    expect(statusForAuthorizationOutcome('authorized', 'authorized')).toBeNull();
    expect(statusForAuthorizationOutcome('captured', 'authorized')).toEqual({ to: 'captured', trigger: 'capture_succeeded' });
    expect(statusForAuthorizationOutcome('captured', 'captured')).toBeNull();
    expect(statusForAuthorizationOutcome('canceled', 'partially_captured')).toEqual({ to: 'captured', trigger: 'remainder_released' });
    expect(statusForAuthorizationOutcome('canceled', 'authorized')).toEqual({ to: 'canceled', trigger: 'cancel_succeeded' });
    expect(statusForAuthorizationOutcome('canceled', 'canceled')).toBeNull();
    // a late "failed" for an authorized payment maps, and the gate rejects it
    const m = statusForAuthorizationOutcome('failed', 'authorized')!;
    expect(transition('authorized', m.to, m.trigger).ok).toBe(false);
  });
});

describe('amount helpers (states.md 1.3)', () => {
  it('nextStatusAfterCapture', () => {
    expect(nextStatusAfterCapture(amounts(), 10000)).toBe('captured');
    expect(nextStatusAfterCapture(amounts(), 9999)).toBe('partially_captured');
    expect(nextStatusAfterCapture(amounts({ capturedAmount: 4000 }), 6000)).toBe('captured');
    expect(nextStatusAfterCapture(amounts({ capturedAmount: 4000 }), 5000)).toBe('partially_captured');
  });

  it('failed / pending captures keep the status once something was captured', () => {
    expect(nextStatusAfterCaptureFailed(amounts(), 'authorized')).toBe('capture_failed');
    expect(nextStatusAfterCaptureFailed(amounts({ capturedAmount: 1 }), 'partially_captured')).toBe('partially_captured');
    expect(nextStatusAfterCapturePending(amounts(), 'authorized')).toBe('capture_requested');
    expect(nextStatusAfterCapturePending(amounts({ capturedAmount: 1 }), 'partially_captured')).toBe('partially_captured');
  });

  it('capturableAmount subtracts captured, pending and released', () => {
    expect(capturableAmount(amounts({ capturedAmount: 1000, pendingCaptureAmount: 2000 }))).toBe(7000);
    expect(capturableAmount(amounts({ capturedAmount: 1000, releasedAmount: 9000 }))).toBe(0);
    expect(capturableAmount(amounts({ authorizedAmount: 0 }))).toBe(0);
  });

  it('amountInvariantViolations detects each broken invariant', () => {
    expect(amountInvariantViolations(amounts())).toEqual([]);
    expect(amountInvariantViolations(amounts({ capturedAmount: 8000, pendingCaptureAmount: 3000 }))).toContain(
      'capturedAmount + pendingCaptureAmount <= authorizedAmount',
    );
    expect(amountInvariantViolations(amounts({ capturedAmount: 100, refundedAmount: 60, pendingRefundAmount: 41 }))).toContain(
      'refundedAmount + pendingRefundAmount <= capturedAmount',
    );
    expect(amountInvariantViolations(amounts({ capturedAmount: 100 }), 'captured')).toContain(
      'capturedAmount + releasedAmount = authorizedAmount when captured',
    );
    expect(amountInvariantViolations(amounts({ capturedAmount: -1 }))).toContain('amounts are non-negative integers');
    expect(amountInvariantViolations(amounts({ capturedAmount: 1.5 }))).toContain('amounts are non-negative integers');
  });

  it('authorize, partial captures and a remainder release end captured with the invariants intact', () => {
    let p = withAuthorization(amounts({ authorizedAmount: 0 }));
    expect(p.authorizedAmount).toBe(10000);
    p = withPendingCapture(p, 3000);
    expect(amountInvariantViolations(p)).toEqual([]);
    expect(nextStatusAfterCapture(p, 3000)).toBe('partially_captured');
    p = withSettledCapture(p, 3000, true, true);
    expect(p).toMatchObject({ capturedAmount: 3000, pendingCaptureAmount: 0 });
    p = withRemainderReleased(p);
    expect(p.releasedAmount).toBe(7000);
    expect(amountInvariantViolations(p, 'captured')).toEqual([]);
  });
});

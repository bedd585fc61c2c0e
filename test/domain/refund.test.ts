import { describe, expect, it } from 'vitest';
import { itemKey } from '../../src/domain/capture.js';
import { amountInvariantViolations, type PaymentAmounts, type PaymentStatus, PAYMENT_STATUSES } from '../../src/domain/payment-status.js';
import {
  REFUND_STATUSES,
  REFUND_TRANSITIONS,
  checkRefund,
  refundCreation,
  refundTransition,
  withRefundStatus,
  type RefundRecord,
  type RefundStatus,
} from '../../src/domain/refund.js';

// states.md 3, written independently of the implementation.
const SPEC: Record<string, string[]> = {
  'pending>processing': ['PaymentUpdated'],
  'pending>succeeded': ['PaymentUpdated', 'PaymentRefunded'],
  'pending>failed': ['PaymentUpdated', 'PaymentRefundFailed'],
  'pending>canceled': ['PaymentUpdated', 'PaymentRefundFailed'],
  'processing>succeeded': ['PaymentUpdated', 'PaymentRefunded'],
  'processing>failed': ['PaymentUpdated', 'PaymentRefundFailed'],
  'processing>canceled': ['PaymentUpdated', 'PaymentRefundFailed'],
  'succeeded>failed': ['PaymentUpdated', 'PaymentRefundFailed'],
};

type P = { status: PaymentStatus; currency: string } & PaymentAmounts;
const pay = (over: Partial<P> = {}): P => ({
  status: 'captured',
  currency: 'EUR',
  amount: 10000,
  authorizedAmount: 10000,
  capturedAmount: 10000,
  pendingCaptureAmount: 0,
  releasedAmount: 0,
  refundedAmount: 0,
  pendingRefundAmount: 0,
  ...over,
});
const ref = (ids: number[], status: RefundStatus, amount = 1000, id = 'r'): RefundRecord => ({ id, itemKey: itemKey(ids), orderItemIds: ids, amount, status });

describe('refund status machine (states.md 3)', () => {
  it('table has exactly the spec rows', () => {
    expect(REFUND_TRANSITIONS.map((r) => `${r.from}>${r.to}`).sort()).toEqual(Object.keys(SPEC).sort());
  });

  const pairs: Array<[string, string]> = [];
  for (const from of REFUND_STATUSES) for (const to of REFUND_STATUSES) pairs.push([from, to]);
  it.each(pairs)('%s → %s', (from, to) => {
    const res = refundTransition(from, to);
    const want = SPEC[`${from}>${to}`];
    if (want) expect(res).toEqual({ ok: true, changed: true, messages: want.map((name) => ({ name, orderOnly: false })) });
    else if (from === to) expect(res).toEqual({ ok: true, changed: false, messages: [] });
    else
      expect(res).toEqual({
        ok: false,
        error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Refund status transition from "${from}" to "${to}" is not allowed.` },
      });
  });

  it('rejects unknown statuses', () => {
    expect(refundTransition('pending', 'refunded').ok).toBe(false);
    expect(refundTransition('x', 'x').ok).toBe(false);
  });

  it.each(REFUND_STATUSES.map((s) => [s]))('creation in %s uses the row "pending → that status"', (status) => {
    const res = refundCreation(status);
    const want = status === 'pending' ? ['PaymentUpdated'] : SPEC[`pending>${status}`]!;
    expect(res).toEqual({ ok: true, messages: want.map((name) => ({ name, orderOnly: false })) });
  });

  it('creation in an unknown status is rejected', () => {
    expect(refundCreation('refunded').ok).toBe(false);
  });
});

describe('withRefundStatus', () => {
  it('moves the amount between pending and refunded and back on a late failure', () => {
    let p = pay();
    p = withRefundStatus(p, null, 'pending', 3000);
    expect(p).toMatchObject({ pendingRefundAmount: 3000, refundedAmount: 0 });
    p = withRefundStatus(p, 'pending', 'processing', 3000);
    expect(p).toMatchObject({ pendingRefundAmount: 3000, refundedAmount: 0 });
    p = withRefundStatus(p, 'processing', 'succeeded', 3000);
    expect(p).toMatchObject({ pendingRefundAmount: 0, refundedAmount: 3000 });
    p = withRefundStatus(p, 'succeeded', 'failed', 3000);
    expect(p).toMatchObject({ pendingRefundAmount: 0, refundedAmount: 0 });
    p = withRefundStatus(p, null, 'canceled', 500);
    expect(p).toMatchObject({ pendingRefundAmount: 0, refundedAmount: 0 });
  });
});

describe('checkRefund (flows.md 10 steps 3-5)', () => {
  const cmd = { orderItemIds: [3, 1], amount: -2000, currency: 'EUR' };

  it('proceeds with the absolute amount and sorted key', () => {
    expect(checkRefund(pay(), [], cmd)).toEqual({ kind: 'proceed', itemKey: '1,3', amount: 2000, orderItemIds: [3, 1] });
    expect(checkRefund(pay(), [], { ...cmd, amount: 2000 })).toMatchObject({ kind: 'proceed', amount: 2000 });
  });

  it('same key succeeded → republish; pending/processing → noop; failed/canceled → new attempt', () => {
    const s = ref([1, 3], 'succeeded');
    expect(checkRefund(pay(), [s], cmd)).toEqual({ kind: 'republish', record: s });
    for (const st of ['pending', 'processing'] as const) {
      const r = ref([1, 3], st);
      expect(checkRefund(pay(), [r], cmd)).toEqual({ kind: 'noop', record: r });
    }
    expect(checkRefund(pay(), [ref([1, 3], 'failed'), ref([3, 1], 'canceled')], cmd).kind).toBe('proceed');
  });

  it('blocked items: rejected, message only for the non-blocked requested items', () => {
    const res = checkRefund(pay({ refundedAmount: 1000 }), [ref([1, 2], 'succeeded')], { ...cmd, orderItemIds: [1, 3, 4] });
    expect(res).toMatchObject({ kind: 'reject', code: 'ITEMS_BLOCKED', messageItemIds: [3, 4], amount: 2000 });
    const pend = checkRefund(pay({ pendingRefundAmount: 1000 }), [ref([3], 'processing')], cmd);
    expect(pend).toMatchObject({ kind: 'reject', code: 'ITEMS_BLOCKED', messageItemIds: [1] });
  });

  it('all items blocked → reject with no message items', () => {
    const res = checkRefund(pay(), [ref([1], 'succeeded'), ref([3], 'pending')], cmd);
    expect(res).toMatchObject({ kind: 'reject', code: 'ITEMS_BLOCKED', messageItemIds: [] });
  });

  it('items of failed/canceled refunds with another key are not blocked', () => {
    expect(checkRefund(pay(), [ref([1], 'failed'), ref([3], 'canceled')], cmd).kind).toBe('proceed');
  });

  it.each(PAYMENT_STATUSES.map((s) => [s]))('payment status %s', (status) => {
    const res = checkRefund(pay({ status }), [], cmd);
    if (status === 'captured' || status === 'partially_captured') expect(res.kind).toBe('proceed');
    else expect(res).toMatchObject({ kind: 'reject', code: 'ILLEGAL_TRANSITION', messageItemIds: [3, 1] });
  });

  it('wrong currency rejected for all command items', () => {
    expect(checkRefund(pay(), [], { ...cmd, currency: 'usd' })).toMatchObject({ kind: 'reject', code: 'CURRENCY_MISMATCH', messageItemIds: [3, 1] });
    expect(checkRefund(pay(), [], { ...cmd, currency: 'eur' }).kind).toBe('proceed');
  });

  it.each([[0], [1.5], [Number.NaN]])('amount %s rejected', (amount) => {
    expect(checkRefund(pay(), [], { ...cmd, amount })).toMatchObject({ kind: 'reject', code: 'INVALID_AMOUNT' });
  });

  it('amount above captured − refunded − pending refunds rejected', () => {
    const p = pay({ status: 'partially_captured', capturedAmount: 6000, refundedAmount: 2000, pendingRefundAmount: 1000 });
    expect(checkRefund(p, [], { ...cmd, amount: -3000 }).kind).toBe('proceed');
    expect(checkRefund(p, [], { ...cmd, amount: -3001 })).toMatchObject({ kind: 'reject', code: 'AMOUNT_EXCEEDED' });
  });
});

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('property: refunds never exceed the captured amount', () => {
  it.each(Array.from({ length: 40 }, (_, i) => [i + 1]))('seed %i', (seed) => {
    const rnd = prng(seed);
    const int = (n: number) => Math.floor(rnd() * n);
    const captured = 1 + int(50000);
    let p = pay({ status: int(2) ? 'captured' : 'partially_captured', capturedAmount: captured, authorizedAmount: 60000, amount: 60000, releasedAmount: 0 });
    if (p.status === 'captured') p = { ...p, authorizedAmount: captured, amount: captured };
    const refunds: RefundRecord[] = [];
    for (let step = 0; step < 80; step++) {
      if (int(2) === 0) {
        const ids = Array.from({ length: 1 + int(2) }, () => 1 + int(10));
        const amount = -(int(4) === 0 ? int(captured * 2) : 1 + int(Math.max(1, Math.floor(captured / 4))));
        const d = checkRefund(p, refunds, { orderItemIds: ids, amount, currency: 'EUR' });
        if (d.kind === 'proceed') {
          const r: RefundRecord = { id: `r${step}`, itemKey: d.itemKey, orderItemIds: d.orderItemIds, amount: d.amount, status: 'pending' };
          refunds.push(r);
          expect(refundCreation('pending').ok).toBe(true);
          p = withRefundStatus(p, null, 'pending', r.amount);
        } else if (d.kind === 'reject' && d.code === 'ITEMS_BLOCKED') {
          for (const id of d.messageItemIds) expect(ids).toContain(id);
        }
      } else if (refunds.length) {
        const r = refunds[int(refunds.length)]!;
        const to = REFUND_STATUSES[int(REFUND_STATUSES.length)]!;
        const res = refundTransition(r.status, to);
        if (res.ok && res.changed) {
          p = withRefundStatus(p, r.status, to, r.amount);
          r.status = to;
        }
      }
      expect(amountInvariantViolations(p)).toEqual([]);
      // an item is in at most one pending/processing/succeeded refund
      const live = refunds.filter((r) => ['pending', 'processing', 'succeeded'].includes(r.status));
      const seen = new Set<number>();
      for (const r of live) for (const id of r.orderItemIds) {
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
    }
    const sum = (st: string[]) => refunds.filter((r) => st.includes(r.status)).reduce((a, r) => a + r.amount, 0);
    expect(p.refundedAmount).toBe(sum(['succeeded']));
    expect(p.pendingRefundAmount).toBe(sum(['pending', 'processing']));
  });
});

import { describe, expect, it } from 'vitest';
import {
  TRANSFER_STATUSES,
  checkPayout,
  checkReversal,
  paidOutAmount,
  parseTransferAmount,
  transferItemKey,
  transferTransition,
  type TransferRecord,
} from '../../src/domain/transfer.js';
import { MERCHANT_STATUSES } from '../../src/domain/merchant-status.js';

const payout = (over: Partial<TransferRecord> = {}): TransferRecord => ({
  id: 'p1',
  kind: 'payout',
  orderReference: 'DE--1',
  merchantReference: 'MER1',
  itemKey: 'a,b',
  amount: 1800,
  status: 'succeeded',
  pspTransferId: 'tr_1',
  originalTransferId: null,
  ...over,
});
const reversal = (over: Partial<TransferRecord> = {}): TransferRecord => ({
  id: 'r1',
  kind: 'reversal',
  orderReference: 'DE--1',
  merchantReference: 'MER1',
  itemKey: 'a',
  amount: 900,
  status: 'succeeded',
  pspTransferId: 'trr_1',
  originalTransferId: 'tr_1',
  ...over,
});

describe('transfer record machine (states.md 4)', () => {
  for (const from of TRANSFER_STATUSES)
    for (const to of TRANSFER_STATUSES)
      it(`${from} → ${to}`, () => {
        const res = transferTransition(from, to);
        if (from === 'pending' && to !== 'pending') expect(res).toEqual({ ok: true, changed: true });
        else if (from === to) expect(res).toEqual({ ok: true, changed: false });
        else
          expect(res).toEqual({
            ok: false,
            error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Transfer status transition from "${from}" to "${to}" is not allowed.` },
          });
      });
  it('unknown statuses rejected', () => expect(transferTransition('pending', 'done').ok).toBe(false));
});

describe('parseTransferAmount', () => {
  it.each([['1800', 1800], ['-900', -900], ['0', 0], [1800, 1800], [-5, -5]])('%j → %j', (v, want) => expect(parseTransferAmount(v)).toBe(want));
  it.each([['18.00'], ['1e3'], [''], [null], [1.5], ['abc']])('%j → null', (v) => expect(parseTransferAmount(v)).toBeNull());
});

describe('transferItemKey', () => {
  it('sorts and de-duplicates references', () => {
    expect(transferItemKey(['b', 'a', 'b'])).toBe('a,b');
  });
});

describe('checkPayout (sync-api.md 4.7)', () => {
  const group = { orderReference: 'DE--1', merchantReference: 'MER1', itemKey: 'a,b', amount: 1800 };
  const payment = { status: 'captured' as const, capturedAmount: 10000, refundedAmount: 0 };
  const base = { group, payment, merchantStatus: 'enabled' as const, transfers: [] as TransferRecord[] };

  it('proceeds', () => expect(checkPayout(base)).toEqual({ kind: 'proceed' }));

  it('same key succeeded → existing payout; pending → still processing; failed → retry', () => {
    const p = payout();
    expect(checkPayout({ ...base, transfers: [p] })).toEqual({ kind: 'existing', record: p });
    expect(checkPayout({ ...base, transfers: [payout({ status: 'pending' })] })).toEqual({
      kind: 'reject',
      failureMessage: 'Transfer is still being processed; retry later.',
    });
    expect(checkPayout({ ...base, transfers: [payout({ status: 'failed' })] })).toEqual({ kind: 'proceed' });
  });

  it('payment not captured', () => {
    for (const status of ['new', 'authorized', 'canceled', 'capture_failed'] as const)
      expect(checkPayout({ ...base, payment: { ...payment, status } })).toEqual({ kind: 'reject', failureMessage: 'Payment for order "DE--1" is not captured.' });
    expect(checkPayout({ ...base, payment: { ...payment, status: 'partially_captured' } }).kind).toBe('proceed');
  });

  it('merchant unknown or not allowed', () => {
    expect(checkPayout({ ...base, merchantStatus: null })).toEqual({ kind: 'reject', failureMessage: 'Merchant with reference "MER1" not found.' });
    for (const s of MERCHANT_STATUSES) {
      const res = checkPayout({ ...base, merchantStatus: s });
      if (['completed', 'enabled', 'restricted soon'].includes(s)) expect(res.kind).toBe('proceed');
      else expect(res).toEqual({ kind: 'reject', failureMessage: `Merchant "MER1" cannot receive payouts (onboarding status "${s}").` });
    }
  });

  it('total paid out for the order (all merchants) stays ≤ captured − refunded', () => {
    const other = payout({ id: 'p0', merchantReference: 'MER2', itemKey: 'c', amount: 7000 });
    const pendingOther = payout({ id: 'p9', merchantReference: 'MER3', itemKey: 'd', amount: 1500, status: 'pending' });
    const exceeded = { kind: 'reject', failureMessage: 'Payout exceeds the captured amount of order "DE--1".' };
    expect(checkPayout({ ...base, transfers: [other] }).kind).toBe('proceed'); // 7000 + 1800 <= 10000
    expect(checkPayout({ ...base, transfers: [other, pendingOther] })).toEqual(exceeded); // 7000 + 1500 + 1800 > 10000
    expect(checkPayout({ ...base, transfers: [other, { ...pendingOther, status: 'failed' }] }).kind).toBe('proceed');
    expect(checkPayout({ ...base, transfers: [other, { ...pendingOther, orderReference: 'DE--2' }] }).kind).toBe('proceed');
    // a succeeded reversal of 900 frees room again
    const rev = reversal({ originalTransferId: 'tr_0', amount: 900 });
    expect(checkPayout({ ...base, transfers: [other, { ...pendingOther, amount: 2100 }, rev] }).kind).toBe('proceed'); // 7000+2100-900+1800 = 10000
    expect(checkPayout({ ...base, transfers: [other, { ...pendingOther, amount: 2101 }, rev] })).toEqual(exceeded);
    // refunds reduce the limit
    expect(checkPayout({ ...base, payment: { ...payment, refundedAmount: 1201 }, transfers: [other] })).toEqual(exceeded);
    expect(checkPayout({ ...base, payment: { ...payment, refundedAmount: 1200 }, transfers: [other] }).kind).toBe('proceed');
    expect(paidOutAmount([other, pendingOther, rev], 'DE--1')).toBe(7600);
    expect(checkPayout({ ...base, group: { ...group, amount: 0 } })).toEqual(exceeded);
  });
});

describe('checkReversal (flows.md 11 step 9)', () => {
  const group = { transferId: 'tr_1', orderReference: 'DE--1', merchantReference: 'MER1', itemKey: 'b', amount: 900 };

  it('proceeds against the succeeded original payout', () => {
    const p = payout();
    expect(checkReversal({ group, transfers: [p] })).toEqual({ kind: 'proceed', payout: p });
  });

  it('original must be a succeeded payout of this order', () => {
    const notFound = { kind: 'reject', failureMessage: 'Could not find a payment transfer with the transfer id "tr_1"' };
    expect(checkReversal({ group, transfers: [] })).toEqual(notFound);
    expect(checkReversal({ group, transfers: [payout({ status: 'failed' })] })).toEqual(notFound);
    expect(checkReversal({ group, transfers: [payout({ status: 'pending' })] })).toEqual(notFound);
    expect(checkReversal({ group, transfers: [payout({ orderReference: 'DE--2' })] })).toEqual(notFound);
  });

  it('reversed total (pending + succeeded) stays ≤ the payout amount', () => {
    const exceeded = { kind: 'reject', failureMessage: 'Reversal exceeds the paid-out amount of transfer "tr_1".' };
    const earlier = reversal({ itemKey: 'a', amount: 900 });
    expect(checkReversal({ group, transfers: [payout(), earlier] }).kind).toBe('proceed'); // 900 + 900 = 1800
    expect(checkReversal({ group: { ...group, amount: 901 }, transfers: [payout(), earlier] })).toEqual(exceeded);
    expect(checkReversal({ group: { ...group, amount: 901 }, transfers: [payout(), { ...earlier, status: 'pending' }] })).toEqual(exceeded);
    expect(checkReversal({ group: { ...group, amount: 1800 }, transfers: [payout(), { ...earlier, status: 'failed' }] }).kind).toBe('proceed');
    expect(checkReversal({ group: { ...group, amount: 0 }, transfers: [payout()] })).toEqual(exceeded);
  });

  it('same key succeeded → existing; pending → still processing; failed → retry', () => {
    const done = reversal({ itemKey: 'b' });
    expect(checkReversal({ group, transfers: [payout(), done] })).toEqual({ kind: 'existing', record: done });
    expect(checkReversal({ group, transfers: [payout(), { ...done, status: 'pending' }] })).toEqual({
      kind: 'reject',
      failureMessage: 'Transfer is still being processed; retry later.',
    });
    expect(checkReversal({ group, transfers: [payout(), { ...done, status: 'failed' }] }).kind).toBe('proceed');
  });
});

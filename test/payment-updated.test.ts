/**
 * messages.md 3.4: `PaymentUpdated` is sent only for a write that changes what it carries (status, amounts in
 * `details`, order link, transaction id). A RefundPayment (pending refund: only `pendingRefundAmount` moves) must not
 * emit a PaymentUpdated identical to the previous one; the refund's success (refundedAmount) does emit one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { CARD_REFUND_FAILS, configureTenant, initializeOrder, pay, publish, until, type Order } from './helpers/commands.js';

let app: TestApp;
const T = 'pu-tenant';

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
  await configureTenant(app, T);
});
afterAll(async () => {
  await app?.close();
});

interface Event {
  name: string;
  payload: any;
}

async function events(o: Order): Promise<Event[]> {
  const r = await app.deps.db.query<any>(
    `SELECT o.message_name, o.payload FROM outbox o JOIN payments p ON o.ordering_key = p.tenant_identifier || '/payment/' || p.id
      WHERE p.tenant_identifier = $1 AND p.order_reference = $2 ORDER BY o.seq`,
    [T, o.orderReference],
  );
  return r.rows.map((x) => ({ name: x.message_name, payload: x.payload }));
}

const payments = (o: Order) => app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [T, o.orderReference]).then((r) => r.rows[0]);

async function capturedOrder(card?: string): Promise<Order> {
  const o = await initializeOrder(app, T, { 1: 3000, 2: 2000 });
  await pay(app, o.transactionId, card);
  await until(() => payments(o), (p) => p.status === 'authorized');
  await publish(app, T, 'CapturePayment', { orderReference: o.orderReference, orderItemIds: [1, 2], amount: 5000, currencyIsoCode: 'EUR' });
  await until(() => payments(o), (p) => p.status === 'captured');
  return o;
}

const refund = (o: Order, items: number[], amount: number) =>
  publish(app, T, 'RefundPayment', { orderReference: o.orderReference, orderItemIds: items, amount, currencyIsoCode: 'EUR' });

/** Every PaymentUpdated differs from the PaymentCreated/PaymentUpdated before it. */
function expectNoRepeatedUpdate(list: Event[]): void {
  const entity = list.filter((e) => e.name === 'PaymentCreated' || e.name === 'PaymentUpdated');
  for (let i = 1; i < entity.length; i++) expect(entity[i]!.payload, `message ${i} repeats ${entity[i - 1]!.name}`).not.toEqual(entity[i - 1]!.payload);
}

describe('PaymentUpdated only when something it carries changed', () => {
  it('RefundPayment that succeeds: no PaymentUpdated for the pending refund, one for refundedAmount, before PaymentRefunded', async () => {
    const o = await capturedOrder();
    const before = await events(o);
    await refund(o, [1], -3000);
    const after = await until(() => events(o), (l) => l.some((e) => e.name === 'PaymentRefunded'));
    const added = after.slice(before.length);
    expect(added.map((e) => e.name)).toEqual(['PaymentUpdated', 'PaymentRefunded']);
    expect(JSON.parse(added[0]!.payload.details)).toMatchObject({ status: 'captured', capturedAmount: 5000, refundedAmount: 3000 });
    expectNoRepeatedUpdate(after);
  });

  it('RefundPayment that fails at the PSP: only PaymentRefundFailed (the payment carries the same values as before)', async () => {
    const o = await capturedOrder(CARD_REFUND_FAILS);
    const before = await events(o);
    await refund(o, [1, 2], -5000);
    const after = await until(() => events(o), (l) => l.some((e) => e.name === 'PaymentRefundFailed'));
    await until(() => payments(o), (p) => p.pending_refund_amount === 0);
    expect(after.slice(before.length).map((e) => e.name)).toEqual(['PaymentRefundFailed']);
    expect(await payments(o)).toMatchObject({ status: 'captured', refunded_amount: 0, pending_refund_amount: 0 });
    expectNoRepeatedUpdate(after);
  });

  it('the status changes of a payment each still send PaymentUpdated (created → authorized → captured)', async () => {
    const o = await capturedOrder();
    const names = (await events(o)).map((e) => e.name);
    expect(names).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized', 'PaymentUpdated', 'PaymentCaptured']);
  });
});

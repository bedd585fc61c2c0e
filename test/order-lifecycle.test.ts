/**
 * A whole order on the local transport, as a Spryker shop sees it (flows.md 4, 8, 10): authorize, two partial
 * captures, one partial refund, a refund of the rest — commands published to /event-platform/payment-commands, events
 * consumed from GET /event-platform/payment-events (Consumer-Id = tenant) and acknowledged with DELETE, read back as
 * the exact sequence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { call, configureTenant, initializeOrder, pay, publish, sandboxPayment } from './helpers/commands.js';

let app: TestApp;
const T = 'lifecycle-tenant';

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
  await configureTenant(app, T);
});
afterAll(async () => {
  await app?.close();
});

interface Received {
  name: string;
  payload: any;
  messageId: string;
}

/** Consumes payment-events for the tenant until `count` messages arrived (acknowledging each batch). */
async function consume(count: number, timeoutMs = 30_000): Promise<Received[]> {
  const out: Received[] = [];
  const end = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < end) {
    const r = await call(app, '/event-platform/payment-events?limit=100', { headers: { 'consumer-id': T } });
    expect(r.status).toBe(200);
    for (const m of r.body as any[]) out.push({ name: m.MessageAttributes.transferName, payload: JSON.parse(m.MessageBody), messageId: m.MessageId });
    if (r.body.length > 0) {
      const ack = await call(app, '/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': T }, body: { messageIds: r.body.map((m: any) => m.MessageId) } });
      expect(ack.status).toBe(204);
    } else await new Promise((res) => setTimeout(res, 50));
  }
  return out;
}

describe('order lifecycle on the local transport', () => {
  it('authorize, two partial captures, a partial refund, a refund of the rest: the exact event sequence', async () => {
    const o = await initializeOrder(app, T, { 101: 6000, 102: 2500, 103: 1500 });
    const ref = o.orderReference;
    const status = (items: number[], amount: number) => ({ orderReference: ref, orderItemIds: items, amount, currencyIsoCode: 'EUR' });

    await pay(app, o.transactionId);
    let got = await consume(3);
    expect(got.map((m) => m.name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
    expect(got[2]!.payload).toEqual(status([101, 102, 103], 10000));

    await publish(app, T, 'CapturePayment', { orderReference: ref, orderItemIds: [101], amount: 6000, currencyIsoCode: 'EUR' });
    got = await consume(2);
    expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? JSON.parse(m.payload.details).status : m.payload])).toEqual([
      ['PaymentUpdated', 'partially_captured'],
      ['PaymentCaptured', status([101], 6000)],
    ]);

    await publish(app, T, 'CapturePayment', { orderReference: ref, orderItemIds: [102, 103], amount: 4000, currencyIsoCode: 'EUR' });
    got = await consume(2);
    expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? JSON.parse(m.payload.details).capturedAmount : m.payload])).toEqual([
      ['PaymentUpdated', 10000],
      ['PaymentCaptured', status([102, 103], 4000)],
    ]);
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(10000);

    await publish(app, T, 'RefundPayment', { orderReference: ref, orderItems: [{ orderItemId: 101, sku: 'SKU-101' }], amount: -6000, currencyIsoCode: 'EUR' });
    got = await consume(3);
    expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? JSON.parse(m.payload.details).refundedAmount : m.payload])).toEqual([
      ['PaymentUpdated', 0], // refund pending
      ['PaymentUpdated', 6000], // refund.succeeded webhook
      ['PaymentRefunded', status([101], 6000)],
    ]);

    await publish(app, T, 'RefundPayment', { orderReference: ref, orderItems: [{ orderItemId: 102, sku: 'SKU-102' }, { orderItemId: 103, sku: 'SKU-103' }], orderItemIds: [102, 103], amount: -4000, currencyIsoCode: 'EUR' });
    got = await consume(3);
    expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? JSON.parse(m.payload.details).refundedAmount : m.payload])).toEqual([
      ['PaymentUpdated', 6000],
      ['PaymentUpdated', 10000],
      ['PaymentRefunded', status([102, 103], 4000)],
    ]);
    const psp = await sandboxPayment(app, o.transactionId);
    expect(psp).toMatchObject({ amountCaptured: 10000, amountRefunded: 10000 });

    // nothing else arrives (no duplicate from the capture/refund webhooks)
    await new Promise((r) => setTimeout(r, 500));
    expect(await consume(1, 300)).toEqual([]);
    const p = (await app.deps.db.query<any>('SELECT status, captured_amount, refunded_amount, pending_refund_amount FROM payments WHERE order_reference = $1', [ref])).rows[0];
    expect(p).toEqual({ status: 'captured', captured_amount: 10000, refunded_amount: 10000, pending_refund_amount: 0 });
  });
});

/**
 * The whole-order script of the "order management" issue (flows.md 4, 8, 10), shared by every transport: authorize in
 * the sandbox, two partial captures, one partial refund, a refund of the rest — read back as the exact event sequence.
 * A transport supplies how the shop publishes a command and how it receives the app's payment-events.
 */
import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { configureTenant, initializeOrder, pay, sandboxPayment } from './commands.js';

/** One payment-events message as the shop received it. */
export interface ReceivedEvent {
  name: string;
  payload: any;
  messageId: string;
}

export interface ShopSide {
  /** Publishes a command on payment-commands for the tenant. */
  publishCommand(tenant: string, name: string, payload: Record<string, unknown>): Promise<void>;
  /**
   * Waits until at least `count` new payment-events messages arrived for the tenant (or `timeoutMs` passed) and returns
   * every new one received so far, in arrival order.
   */
  receiveEvents(tenant: string, count: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
}

/** Runs the script against an app whose sandbox settles refunds quickly (SANDBOX_REFUND_SETTLE_MS). */
export async function runOrderLifecycle(app: TestApp, tenant: string, shop: ShopSide): Promise<void> {
  const all: ReceivedEvent[] = [];
  const receive = async (count: number, timeoutMs?: number): Promise<ReceivedEvent[]> => {
    const got = await shop.receiveEvents(tenant, count, timeoutMs);
    all.push(...got);
    return got;
  };
  const detail = (m: ReceivedEvent, key: string): unknown => JSON.parse(m.payload.details)[key];

  await configureTenant(app, tenant);
  const o = await initializeOrder(app, tenant, { 101: 6000, 102: 2500, 103: 1500 });
  const ref = o.orderReference;
  const status = (items: number[], amount: number) => ({ orderReference: ref, orderItemIds: items, amount, currencyIsoCode: 'EUR' });

  await pay(app, o.transactionId);
  let got = await receive(3);
  expect(got.map((m) => m.name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
  expect(got[2]!.payload).toEqual(status([101, 102, 103], 10000));

  await shop.publishCommand(tenant, 'CapturePayment', { orderReference: ref, orderItemIds: [101], amount: 6000, currencyIsoCode: 'EUR' });
  got = await receive(2);
  expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detail(m, 'status') : m.payload])).toEqual([
    ['PaymentUpdated', 'partially_captured'],
    ['PaymentCaptured', status([101], 6000)],
  ]);

  await shop.publishCommand(tenant, 'CapturePayment', { orderReference: ref, orderItemIds: [102, 103], amount: 4000, currencyIsoCode: 'EUR' });
  got = await receive(2);
  expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detail(m, 'capturedAmount') : m.payload])).toEqual([
    ['PaymentUpdated', 10000],
    ['PaymentCaptured', status([102, 103], 4000)],
  ]);
  expect(detail(got[0]!, 'status')).toBe('captured');
  expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(10000);

  await shop.publishCommand(tenant, 'RefundPayment', { orderReference: ref, orderItems: [{ orderItemId: 101, sku: 'SKU-101' }], amount: -6000, currencyIsoCode: 'EUR' });
  got = await receive(2);
  // the pending refund changes nothing PaymentUpdated carries (messages.md 3.4): no PaymentUpdated for it
  expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detail(m, 'refundedAmount') : m.payload])).toEqual([
    ['PaymentUpdated', 6000], // refund.succeeded webhook
    ['PaymentRefunded', status([101], 6000)],
  ]);

  await shop.publishCommand(tenant, 'RefundPayment', {
    orderReference: ref,
    orderItems: [{ orderItemId: 102, sku: 'SKU-102' }, { orderItemId: 103, sku: 'SKU-103' }],
    orderItemIds: [102, 103],
    amount: -4000,
    currencyIsoCode: 'EUR',
  });
  got = await receive(2);
  expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detail(m, 'refundedAmount') : m.payload])).toEqual([
    ['PaymentUpdated', 10000],
    ['PaymentRefunded', status([102, 103], 4000)],
  ]);
  expect(await sandboxPayment(app, o.transactionId)).toMatchObject({ amountCaptured: 10000, amountRefunded: 10000 });

  // nothing else arrives (no duplicate from the capture/refund webhooks)
  await new Promise((r) => setTimeout(r, 500));
  expect(await receive(1, 300)).toEqual([]);
  // every event has a message id, and none repeats
  expect(all).toHaveLength(11);
  for (const m of all) expect(m.messageId).toMatch(/\S/);
  expect(new Set(all.map((m) => m.messageId)).size).toBe(all.length);
  const p = (await app.deps.db.query<any>('SELECT status, captured_amount, refunded_amount, pending_refund_amount FROM payments WHERE order_reference = $1', [ref])).rows[0];
  expect(p).toEqual({ status: 'captured', captured_amount: 10000, refunded_amount: 10000, pending_refund_amount: 0 });
}

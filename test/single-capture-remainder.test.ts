/**
 * Single-final captures (flows.md 8 step 12, 9 step 7; connectors/stripe.md 3.1, decisions S2 and S3), driven only by
 * the connector's capture outcome (`finalCapture`), never by its name: here the sandbox connector is wrapped so that
 * every capture reports the remainder released, as Stripe does without multicapture.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCaptureWebhook } from '../src/app/capture-payment.js';
import type { Connector } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, pay, publish as publishOn, until, type Order } from './helpers/commands.js';

let app: TestApp;
let restore: () => void;
const T = 'single-final-tenant';

beforeAll(async () => {
  app = await startTestApp();
  await configureTenant(app, T);
  const original = app.deps.connectors.require('sandbox');
  const singleFinal: Connector = {
    ...original,
    capture: async (settings, transactionId, amount, opts) => {
      const r = await original.capture(settings, transactionId, amount, opts);
      return r.ok ? { ok: true, value: { ...r.value, finalCapture: true } } : r;
    },
  };
  restore = app.deps.connectors.use(singleFinal);
});
afterAll(async () => {
  restore?.();
  await app?.close();
});

const FINAL = ['processed', 'ignored', 'rejected', 'dead'];
const inbox = (id: string) =>
  until(
    async () => (await app.deps.db.query<any>('SELECT state, last_error FROM command_inbox WHERE transport_message_id = $1', [id])).rows[0],
    (r) => r !== undefined && FINAL.includes(r.state),
  );
const payment = async (o: Order): Promise<any> => (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [T, o.orderReference])).rows[0];
async function statusEvents(o: Order): Promise<Array<{ name: string; payload: any }>> {
  const p = await payment(o);
  const r = await app.deps.db.query<any>('SELECT message_name, payload FROM outbox WHERE ordering_key = $1 ORDER BY seq', [`${T}/payment/${p.id}`]);
  return r.rows.filter((x) => x.message_name !== 'PaymentUpdated' && x.message_name !== 'PaymentCreated').map((x) => ({ name: x.message_name, payload: x.payload }));
}
const publish = (name: string, payload: Record<string, unknown>) => publishOn(app, T, name, payload, randomUUID());
const capture = (o: Order, items: number[], amount: number) => publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: items, amount, currencyIsoCode: 'EUR' });
const cancel = (o: Order, items: number[]) => publish('CancelPayment', { orderReference: o.orderReference, orderItemIds: items, amount: 0, currencyIsoCode: 'EUR' });

async function authorizedOrder(items: Record<number, number>): Promise<Order> {
  const o = await initializeOrder(app, T, items);
  await pay(app, o.transactionId);
  expect((await until(() => payment(o), (p) => p.status === 'authorized')).status).toBe('authorized');
  return o;
}

describe('single-final captures (S2, S3)', () => {
  it('a partial final capture makes the payment captured, announces the released rest, rejects later captures and answers cancels of uncovered items with amount 0', async () => {
    const o = await authorizedOrder({ 1: 6000, 2: 4000 });
    expect((await inbox(await capture(o, [1], 6000))).state).toBe('processed');
    const p = await payment(o);
    expect(p.status).toBe('captured');
    expect(Number(p.captured_amount)).toBe(6000);
    expect(Number(p.released_amount)).toBe(4000);
    const ev = await statusEvents(o);
    expect(ev.map((e) => e.name)).toEqual(['PaymentAuthorized', 'PaymentCaptured', 'PaymentCanceled']);
    expect(ev[1]!.payload).toMatchObject({ orderItemIds: [1], amount: 6000 });
    expect(ev[2]!.payload).toMatchObject({ orderItemIds: [], amount: 4000 });

    const rejected = await inbox(await capture(o, [2], 4000));
    expect(rejected.state).toBe('rejected');
    expect(rejected.last_error).toMatch(/^remainder_released/);
    expect((await statusEvents(o)).at(-1)).toMatchObject({ name: 'PaymentCaptureFailed', payload: { orderItemIds: [2] } });

    expect((await inbox(await cancel(o, [2]))).state).toBe('processed');
    expect((await statusEvents(o)).at(-1)).toMatchObject({ name: 'PaymentCanceled', payload: { orderItemIds: [2], amount: 0 } });
    expect((await payment(o)).status).toBe('captured');
    const before = (await statusEvents(o)).length;
    expect((await inbox(await cancel(o, [2]))).state).toBe('processed'); // repeat: re-published, nothing new
    expect((await statusEvents(o)).length).toBe(before);

    // items a capture covers: still PaymentCancellationFailed (captured money goes back with a refund)
    expect((await inbox(await cancel(o, [1]))).state).toBe('rejected');
    expect((await statusEvents(o)).at(-1)).toMatchObject({ name: 'PaymentCancellationFailed', payload: { orderItemIds: [1] } });
  });

  it('a full capture releases nothing', async () => {
    const o = await authorizedOrder({ 1: 5000 });
    await inbox(await capture(o, [1], 5000));
    const p = await payment(o);
    expect([p.status, Number(p.released_amount)]).toEqual(['captured', 0]);
    expect((await statusEvents(o)).map((e) => e.name)).toEqual(['PaymentAuthorized', 'PaymentCaptured']);
  });

  it('a final partial capture made in the PSP dashboard sends PaymentCaptured for all items and PaymentCanceled for the released rest (S3)', async () => {
    const o = await authorizedOrder({ 1: 3000, 2: 7000 });
    const tenantOf = await payment(o);
    const r = await app.deps.db.tx((tx) =>
      applyCaptureWebhook(app.deps, tx, T, { kind: 'capture', transactionId: o.transactionId, amountCaptured: 3000, succeeded: true, final: true }, { trigger: 'webhook', ref: randomUUID() }),
    );
    expect(r.kind).toBe('applied');
    const p = await payment(o);
    expect([p.status, Number(p.captured_amount), Number(p.released_amount)]).toEqual(['captured', 3000, 7000]);
    expect(tenantOf.id).toBe(p.id);
    const ev = await statusEvents(o);
    expect(ev.slice(-2)).toMatchObject([
      { name: 'PaymentCaptured', payload: { orderItemIds: [1, 2], amount: 3000 } },
      { name: 'PaymentCanceled', payload: { orderItemIds: [], amount: 7000 } },
    ]);
    // without `final` the same capture leaves the payment partially captured
    const o2 = await authorizedOrder({ 1: 3000, 2: 7000 });
    await app.deps.db.tx((tx) => applyCaptureWebhook(app.deps, tx, T, { kind: 'capture', transactionId: o2.transactionId, amountCaptured: 3000, succeeded: true }, { trigger: 'webhook', ref: randomUUID() }));
    expect((await payment(o2)).status).toBe('partially_captured');
  });
});

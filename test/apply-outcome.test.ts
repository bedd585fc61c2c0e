/**
 * applyPaymentOutcome (flows.md 4 step 9, states.md 1, 8; messages.md 2.4, 3.3, 3.4, 5): the one path through which
 * PSP outcomes change a payment. Payments are created through POST /private/initialize-payment; effects are read
 * back from the payments, history and outbox tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPaymentOutcome, type PaymentOutcome } from '../src/app/apply-payment-outcome.js';
import { messageId } from '../src/messaging/outbox.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const SECRET_KEY = 'sk_sandbox_test1234';
const WEBHOOK_SECRET = 'whsec_0123456789abcdef';
let seq = 0;
const ref = (): string => `DE--apply-${Date.now().toString(36)}-${++seq}`;

async function configure(app: TestApp, tenant: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await app.request('/private/configure', {
    tenant,
    body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, ...extra }) } } },
  });
  expect(r.status, r.text).toBe(200);
}

async function createPayment(app: TestApp, tenant: string, opts: { preOrder?: boolean } = {}): Promise<{ id: string; transactionId: string; orderReference: string | null }> {
  const orderReference = opts.preOrder ? null : ref();
  const body = {
    orderData: {
      ...(orderReference ? { orderReference } : {}),
      grandTotal: 4200,
      currencyCode: 'EUR',
      paymentMethod: 'Credit Card',
      items: [{ idSalesOrderItem: 101 }, { idSalesOrderItem: 102 }, { idSalesOrderItem: 103 }],
    },
    redirectSuccessUrl: 'https://shop.example/success',
    redirectCancelUrl: 'https://shop.example/cancel',
  };
  const r = await app.request('/private/initialize-payment', { tenant, body });
  expect(r.status, r.text).toBe(200);
  const p = (await app.deps.db.query<{ id: string }>('SELECT id FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [tenant, r.body.transactionId])).rows[0]!;
  return { id: p.id, transactionId: r.body.transactionId, orderReference };
}

const apply = (app: TestApp, paymentId: string, outcome: PaymentOutcome, ref = 'inbox-1', trigger: 'webhook' | 'redirect' = 'webhook') =>
  app.deps.db.tx((tx) => applyPaymentOutcome(app.deps, tx, paymentId, outcome, { trigger, ref }));

async function messagesOf(app: TestApp, paymentId: string): Promise<Array<{ id: string; message_name: string; ordering_key: string; attributes: any; payload: any }>> {
  return (await app.deps.db.query<any>("SELECT * FROM outbox WHERE ordering_key LIKE '%/payment/' || $1 ORDER BY seq", [paymentId])).rows;
}

async function paymentRow(app: TestApp, id: string): Promise<any> {
  return (await app.deps.db.query<any>('SELECT * FROM payments WHERE id = $1', [id])).rows[0];
}

async function history(app: TestApp, id: string): Promise<any[]> {
  return (await app.deps.db.query<any>('SELECT * FROM payment_status_history WHERE payment_id = $1 ORDER BY seq', [id])).rows;
}

describe('applyPaymentOutcome (PGlite)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({}, { startWorkers: false });
    await configure(app, 'apply-t');
    await configure(app, 'apply-auto', { captureMode: 'automatic' });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('new → authorized: PaymentUpdated then PaymentAuthorized with every idSalesOrderItem; history, amounts, version', async () => {
    const p = await createPayment(app, 'apply-t');
    const res = await apply(app, p.id, { state: 'authorized', publicDetails: { cardBrand: 'visa', cardLast4: '4242' } }, 'inbox-auth-1');
    expect(res).toEqual({ kind: 'applied', status: 'authorized' });

    const row = await paymentRow(app, p.id);
    expect(row).toMatchObject({ status: 'authorized', version: 2, authorized_amount: 4200, captured_amount: 0 });
    const h = await history(app, p.id);
    expect(h.map((x) => [x.seq, x.status, x.trigger])).toEqual([
      [1, 'new', 'sync'],
      [2, 'authorized', 'webhook'],
    ]);
    expect(h[1].trigger_ref).toBe('inbox-auth-1');

    const msgs = (await messagesOf(app, p.id)).filter((m) => m.message_name !== 'PaymentCreated');
    expect(msgs.map((m) => m.message_name)).toEqual(['PaymentUpdated', 'PaymentAuthorized']);
    const [updated, authorized] = msgs;
    const appId = app.deps.config.appIdentifier;
    expect(updated!.id).toBe(messageId(appId, 'apply-t', 'PaymentUpdated', `payment/${p.id}/version/2`));
    expect(authorized!.id).toBe(messageId(appId, 'apply-t', 'PaymentAuthorized', `payment/${p.id}/status/2`));
    for (const m of msgs) {
      expect(m.ordering_key).toBe(`apply-t/payment/${p.id}`);
      expect(m.attributes.correlationId).toBe('inbox-auth-1');
    }
    expect(authorized!.payload).toEqual({ orderReference: p.orderReference, orderItemIds: [101, 102, 103], amount: 4200, currencyIsoCode: 'EUR' });
    expect(updated!.payload.entityReference).toBe(p.orderReference);
    expect(updated!.payload.paymentReference).toBe(p.transactionId);
    const details = JSON.parse(updated!.payload.details);
    expect(details).toMatchObject({ transactionId: p.transactionId, status: 'authorized', amount: 4200, currencyIsoCode: 'EUR', cardBrand: 'visa', cardLast4: '4242' });
    expect(Object.keys(details).filter((k) => k.startsWith('External status'))).toEqual(['External status "new"', 'External status "authorized"']);
  });

  it('the same outcome twice (webhook and redirect race) → one PaymentAuthorized; the second is a no-op', async () => {
    const p = await createPayment(app, 'apply-t');
    expect((await apply(app, p.id, { state: 'authorized' }, 'req-redirect', 'redirect')).kind).toBe('applied');
    const again = await apply(app, p.id, { state: 'authorized' }, 'inbox-2');
    expect(again).toEqual({ kind: 'noop', status: 'authorized' });
    const names = (await messagesOf(app, p.id)).map((m) => m.message_name);
    expect(names.filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    expect(names.filter((n) => n === 'PaymentUpdated')).toHaveLength(1);
    expect((await paymentRow(app, p.id)).version).toBe(2);
    expect(await history(app, p.id)).toHaveLength(2);
  });

  it('automatic capture (captured) → PaymentUpdated, PaymentAuthorized, PaymentCaptured; captured amount stored', async () => {
    const p = await createPayment(app, 'apply-auto');
    expect((await paymentRow(app, p.id)).capture_mode).toBe('automatic');
    const res = await apply(app, p.id, { state: 'captured', amountCaptured: 4200 });
    expect(res).toEqual({ kind: 'applied', status: 'captured' });
    const msgs = (await messagesOf(app, p.id)).filter((m) => m.message_name !== 'PaymentCreated');
    expect(msgs.map((m) => m.message_name)).toEqual(['PaymentUpdated', 'PaymentAuthorized', 'PaymentCaptured']);
    expect(msgs[2]!.payload).toEqual({ orderReference: p.orderReference, orderItemIds: [101, 102, 103], amount: 4200, currencyIsoCode: 'EUR' });
    expect(new Set(msgs.map((m) => m.id)).size).toBe(3);
    expect(await paymentRow(app, p.id)).toMatchObject({ status: 'captured', authorized_amount: 4200, captured_amount: 4200 });
  });

  it('automatic capture failed (capture_failed) → PaymentUpdated, PaymentAuthorized, PaymentCaptureFailed', async () => {
    const p = await createPayment(app, 'apply-auto');
    expect((await apply(app, p.id, { state: 'capture_failed' })).status).toBe('capture_failed');
    const names = (await messagesOf(app, p.id)).map((m) => m.message_name).filter((n) => n !== 'PaymentCreated');
    expect(names).toEqual(['PaymentUpdated', 'PaymentAuthorized', 'PaymentCaptureFailed']);
  });

  it('final failure → authorization_failed with PaymentUpdated, PaymentAuthorizationFailed; decline kept in history', async () => {
    const p = await createPayment(app, 'apply-t');
    const res = await apply(app, p.id, { state: 'failed', decline: { code: 'card_blocked', message: 'Card blocked.' } });
    expect(res).toEqual({ kind: 'applied', status: 'authorization_failed' });
    const names = (await messagesOf(app, p.id)).map((m) => m.message_name).filter((n) => n !== 'PaymentCreated');
    expect(names).toEqual(['PaymentUpdated', 'PaymentAuthorizationFailed']);
    const h = await history(app, p.id);
    expect(h[1]).toMatchObject({ status: 'authorization_failed', details: { decline: { code: 'card_blocked', message: 'Card blocked.' } } });
    expect((await paymentRow(app, p.id)).authorized_amount).toBe(0);
  });

  it('retryable decline → status stays new, no message, the attempt is a history row with details', async () => {
    const p = await createPayment(app, 'apply-t');
    const before = await messagesOf(app, p.id);
    const res = await apply(app, p.id, { state: 'pending', decline: { code: 'card_declined', message: 'Your card was declined.' } }, 'inbox-decline');
    expect(res.kind).toBe('noop');
    expect(res.status).toBe('new');
    expect(await messagesOf(app, p.id)).toHaveLength(before.length);
    const row = await paymentRow(app, p.id);
    expect(row).toMatchObject({ status: 'new', version: 1 });
    const h = await history(app, p.id);
    expect(h).toHaveLength(2);
    expect(h[1]).toMatchObject({ seq: 2, status: 'new', trigger: 'webhook', trigger_ref: 'inbox-decline', details: { retryableDecline: { code: 'card_declined', message: 'Your card was declined.' } } });
    // After a decline the payment can still be authorized; the decline row adds no second "new" key to details.
    expect((await apply(app, p.id, { state: 'authorized' })).kind).toBe('applied');
    const upd = (await messagesOf(app, p.id)).find((m) => m.message_name === 'PaymentUpdated')!;
    expect(Object.keys(JSON.parse(upd.payload.details)).filter((k) => k.startsWith('External'))).toEqual(['External status "new"', 'External status "authorized"']);
    // the status message event key uses the history sequence of the change (3 here)
    const auth = (await messagesOf(app, p.id)).find((m) => m.message_name === 'PaymentAuthorized')!;
    expect(auth.id).toBe(messageId(app.deps.config.appIdentifier, 'apply-t', 'PaymentAuthorized', `payment/${p.id}/status/3`));
  });

  it('still pending without decline, or requires_action → no-op, nothing written', async () => {
    const p = await createPayment(app, 'apply-t');
    expect((await apply(app, p.id, { state: 'pending' })).kind).toBe('noop');
    expect((await apply(app, p.id, { state: 'requires_action' })).kind).toBe('noop');
    expect(await history(app, p.id)).toHaveLength(1);
    expect((await paymentRow(app, p.id)).version).toBe(1);
  });

  it('pre-order payment (no order) → waiting_for_order, nothing written', async () => {
    const p = await createPayment(app, 'apply-t', { preOrder: true });
    const before = await messagesOf(app, p.id);
    for (const state of ['authorized', 'captured', 'failed'] as const) {
      const res = await apply(app, p.id, { state });
      expect(res.kind).toBe('waiting_for_order');
      expect(res.status).toBe('new');
    }
    expect(await messagesOf(app, p.id)).toHaveLength(before.length);
    expect(await paymentRow(app, p.id)).toMatchObject({ status: 'new', version: 1, authorized_amount: 0 });
    expect(await history(app, p.id)).toHaveLength(1);
  });

  it('stale / illegal outcomes are ignored with a reason and change nothing', async () => {
    const p = await createPayment(app, 'apply-t');
    await apply(app, p.id, { state: 'authorized' });
    const before = await messagesOf(app, p.id);
    const stale = await apply(app, p.id, { state: 'pending' });
    expect(stale).toEqual({ kind: 'ignored', status: 'authorized', reason: 'Payment status transition from "authorized" to "new" is not allowed.' });
    const failed = await apply(app, p.id, { state: 'failed' });
    expect(failed.kind).toBe('ignored');
    expect(failed.reason).toBe('Payment status transition from "authorized" to "authorization_failed" is not allowed.');
    expect(await messagesOf(app, p.id)).toHaveLength(before.length);
    expect(await paymentRow(app, p.id)).toMatchObject({ status: 'authorized', version: 2 });
    expect(await history(app, p.id)).toHaveLength(2);

    const q = await createPayment(app, 'apply-t');
    await apply(app, q.id, { state: 'canceled' });
    const late = await apply(app, q.id, { state: 'authorized' });
    expect(late.kind).toBe('ignored');
    expect((await paymentRow(app, q.id)).status).toBe('canceled');
  });

  it('PSP-side cancel of an authorized payment → PaymentUpdated, PaymentCanceled with the authorized amount', async () => {
    const p = await createPayment(app, 'apply-t');
    await apply(app, p.id, { state: 'authorized' });
    expect((await apply(app, p.id, { state: 'canceled' })).status).toBe('canceled');
    const msgs = (await messagesOf(app, p.id)).filter((m) => !['PaymentCreated'].includes(m.message_name));
    expect(msgs.map((m) => m.message_name)).toEqual(['PaymentUpdated', 'PaymentAuthorized', 'PaymentUpdated', 'PaymentCanceled']);
    expect(msgs[3]!.payload.amount).toBe(4200);
  });
});

describe('applyPaymentOutcome (PostgreSQL): concurrency', async () => {
  const available = await postgresAvailable();
  let app: TestApp | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (!available) return;
    const db = await createTempDatabase();
    drop = db.drop;
    app = await startTestApp({ DATABASE_URL: db.url }, { startWorkers: false });
    await configure(app, 'apply-pg');
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it.skipIf(!available)('50 concurrent applies of `authorized` → exactly one applied and one PaymentAuthorized', async () => {
    const a = app!;
    const p = await createPayment(a, 'apply-pg');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => apply(a, p.id, { state: 'authorized' }, `inbox-${i}`)));
    expect(results.filter((r) => r.kind === 'applied')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'noop')).toHaveLength(49);
    const names = (await messagesOf(a, p.id)).map((m) => m.message_name);
    expect(names.filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    expect(names.filter((n) => n === 'PaymentUpdated')).toHaveLength(1);
    expect(await paymentRow(a, p.id)).toMatchObject({ status: 'authorized', version: 2 });
    expect(await history(a, p.id)).toHaveLength(2);
  });
});

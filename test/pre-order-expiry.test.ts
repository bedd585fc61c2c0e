/**
 * Abandoned pre-order payments: PRE_ORDER_EXPIRY_MS parsing, the worker cancelling unlinked `new` payments at the PSP
 * and here (PaymentUpdated only, held webhooks discarded), linked and young payments untouched, PSP refusals kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PRE_ORDER_EXPIRY_MS, runPreOrderExpiry } from '../src/app/pre-order-expiry.js';
import { loadConfig } from '../src/config.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const CONFIG = { secretKey: 'sk_sandbox_test1234', webhookSecret: 'whsec_0123456789abcdef', paymentMethods: ['credit-card', 'sandbox-express'] };
const configBody = (c: Record<string, unknown>) => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(c) } } });
const glue = (amount: number) => ({
  data: {
    type: 'payments',
    attributes: {
      payment: { paymentProviderName: 'Sandbox', paymentMethodName: 'Sandbox Express', amount },
      quote: { customer: { firstName: 'A', lastName: 'B', email: 'a@example.com' }, billingAddress: { iso2Code: 'DE' }, currency: { code: 'EUR' } },
      preOrderPaymentData: {},
    },
  },
});

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('PRE_ORDER_EXPIRY_MS', () => {
  it('defaults to 24 h, accepts a positive integer, refuses anything else naming the variable', () => {
    expect(loadConfig({}).preOrderExpiryMs).toBe(DEFAULT_PRE_ORDER_EXPIRY_MS);
    expect(DEFAULT_PRE_ORDER_EXPIRY_MS).toBe(86_400_000);
    expect(loadConfig({ PRE_ORDER_EXPIRY_MS: '1500' }).preOrderExpiryMs).toBe(1500);
    for (const bad of ['abc', '0', '-5', '1.5', '1e3']) {
      expect(() => loadConfig({ PRE_ORDER_EXPIRY_MS: bad })).toThrow(/^PRE_ORDER_EXPIRY_MS: /);
    }
  });

});

describe('expiry worker', () => {
  let app: TestApp;
  const T = 'expiry-a';
  const AUTO = 'expiry-auto';
  const rowOf = async (tenant: string, transactionId: string) =>
    (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [tenant, transactionId])).rows[0];
  const names = async (paymentId: string) => (await app.deps.db.query<any>('SELECT message_name FROM outbox WHERE ordering_key LIKE $1 ORDER BY seq', [`%payment/${paymentId}`])).rows.map((r) => r.message_name);
  const start = async (tenant: string, amount = 1000) => {
    const r = await app.request('/payments', { tenant, body: glue(amount) });
    expect(r.status, r.text).toBe(201);
    return r.body.data.attributes.preOrderPaymentData as { transactionId: string; clientSecret: string };
  };
  const pay = (p: { transactionId: string; clientSecret: string }) =>
    app.request(`/sandbox/v1/payments/${p.transactionId}/confirm`, { body: { clientSecret: p.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: 2040, cvc: '123' } } });

  beforeAll(async () => {
    app = await startTestApp({ PRE_ORDER_EXPIRY_MS: '1500' });
    expect((await app.request('/private/configure', { tenant: T, body: configBody(CONFIG) })).status).toBe(200);
    expect((await app.request('/private/configure', { tenant: AUTO, body: configBody({ ...CONFIG, captureMode: 'automatic' }) })).status).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('cancels abandoned payments at the PSP and here (PaymentUpdated only, held webhooks discarded); linked payments stay', async () => {
    const abandoned = await start(T);
    const paidAbandoned = await start(T);
    expect((await pay(paidAbandoned)).status).toBe(200);
    const linked = await start(T);
    const c = await app.request('/private/confirm-pre-order-payment', {
      tenant: T,
      body: { orderReference: 'DE--exp-1', orderData: { grandTotal: 1000, currencyCode: 'EUR', items: [{ idSalesOrderItem: 1 }] }, transactionId: linked.transactionId },
    });
    expect(c.status, c.text).toBe(200);

    const a = await until(() => rowOf(T, abandoned.transactionId), (r) => r.status === 'canceled');
    expect(a.status).toBe('canceled');
    const b = await until(() => rowOf(T, paidAbandoned.transactionId), (r) => r.status === 'canceled');
    expect(b.status).toBe('canceled');
    expect(await names(a.id)).toEqual(['PaymentCreated', 'PaymentUpdated']);
    expect(await names(b.id)).toEqual(['PaymentCreated', 'PaymentUpdated']);
    const history = (await app.deps.db.query<any>('SELECT status, trigger FROM payment_status_history WHERE payment_id = $1 ORDER BY seq', [b.id])).rows;
    expect(history).toEqual([
      { status: 'new', trigger: 'sync' },
      { status: 'canceled', trigger: 'reconciliation' },
    ]);
    // The authorization the shopper gave was held and is now discarded; the PSP released it.
    const inbox = await until(
      async () => (await app.deps.db.query<any>('SELECT event_type, state FROM webhook_inbox WHERE psp_object_id = $1 ORDER BY received_at, id', [paidAbandoned.transactionId])).rows,
      (rows) => rows.some((r) => r.event_type === 'payment.canceled' && r.state !== 'received'),
    );
    expect(inbox.find((r) => r.event_type === 'payment.authorized')?.state).toBe('discarded');
    expect(inbox.filter((r) => r.state === 'waiting_for_order')).toHaveLength(0);
    const psp = await app.request(`/sandbox/v1/payments/${paidAbandoned.transactionId}`, { headers: { authorization: 'Bearer sk_sandbox_test1234' } });
    expect(psp.body.status).toBe('canceled');

    const l = await rowOf(T, linked.transactionId);
    expect(l).toMatchObject({ status: 'new', order_reference: 'DE--exp-1' });
  });

  it('a bad value stops start-up (configuration) with a line naming the variable', () => {
    expect(() => loadConfig({ PRE_ORDER_EXPIRY_MS: 'soon' })).toThrow('PRE_ORDER_EXPIRY_MS: must be an integer, got "soon"; expected positive integer of milliseconds; example: PRE_ORDER_EXPIRY_MS=3600000');
  });

  it('young payments are not due; a PSP refusal (already captured) keeps the status and is held back for a retry later', async () => {
    const young = await start(T);
    const r = await runPreOrderExpiry(app.deps, { expiryMs: 3_600_000 });
    expect(r.canceled).toBe(0);
    expect((await rowOf(T, young.transactionId)).status).toBe('new');

    const captured = await start(AUTO, 700);
    expect((await pay(captured)).body.status).toBe('captured');
    const row = await rowOf(AUTO, captured.transactionId);
    const skipUntil = new Map<string, number>();
    await runPreOrderExpiry(app.deps, { expiryMs: 1, now: new Date(Date.now() + 60_000), skipUntil });
    expect((await rowOf(AUTO, captured.transactionId)).status).toBe('new');
    expect(skipUntil.has(row.id)).toBe(true);
    expect(await names(row.id)).toEqual(['PaymentCreated']);
  });
});

/**
 * Headless pre-order payment over HTTP (flows.md 5, 7; sync-api.md 4.5, 4.6, 4.8): Glue `/payments` → sandbox confirm
 * with the clientSecret → the authorization webhook is held (no order yet) → confirm-pre-order links the order and
 * replays it → PaymentUpdated + exactly one PaymentAuthorized. Plus amount changes, declines, conflicts, cancels and
 * the customer lookup.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;
const TENANT = 'headless-a';
const OTHER = 'headless-b';
const CONFIG = { secretKey: 'sk_sandbox_test1234', webhookSecret: 'whsec_0123456789abcdef', paymentMethods: ['credit-card', 'sandbox-express'] };

export const configBody = (c: Record<string, unknown>) => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(c) } } });

const ref = () => `DE--${randomBytes(4).toString('hex')}`;

export function gluePayment(amount: number | string, extra: Record<string, unknown> = {}, method = 'Credit Card') {
  return {
    data: {
      type: 'payments',
      attributes: {
        payment: { paymentProviderName: 'Sandbox', paymentMethodName: method, amount },
        quote: {
          customer: { firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com' },
          billingAddress: { iso2Code: 'DE', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', zipCode: '10115', city: 'Berlin' },
          currency: { code: 'EUR' },
          items: [{ sku: 'shirt', name: 'Shirt', quantity: 1, unitPrice: amount }],
        },
        preOrderPaymentData: {},
        ...extra,
      },
    },
  };
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const paymentRow = async (transactionId: string) =>
  (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [TENANT, transactionId])).rows[0];
const messagesOf = async (paymentId: string, name?: string) =>
  (
    await app.deps.db.query<any>(`SELECT message_name, payload FROM outbox WHERE ordering_key LIKE $1 ${name ? 'AND message_name = $2' : ''} ORDER BY seq`, name ? [`%payment/${paymentId}`, name] : [`%payment/${paymentId}`])
  ).rows;
const inboxOf = async (transactionId: string) =>
  (await app.deps.db.query<any>('SELECT state, event_type FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2 ORDER BY received_at, id', [TENANT, transactionId])).rows;

async function start(amount = 1000, method = 'Credit Card'): Promise<{ transactionId: string; clientSecret: string }> {
  const r = await app.request('/payments', { tenant: TENANT, body: gluePayment(amount, {}, method), headers: { 'content-type': 'application/vnd.api+json' } });
  expect(r.status, r.text).toBe(201);
  const pod = r.body.data.attributes.preOrderPaymentData;
  return { transactionId: pod.transactionId, clientSecret: pod.clientSecret };
}

async function pay(p: { transactionId: string; clientSecret: string }, number = '4242424242424242', payer?: Record<string, unknown>) {
  return app.request(`/sandbox/v1/payments/${p.transactionId}/confirm`, { body: { clientSecret: p.clientSecret, card: { number, expMonth: 12, expYear: 2040, cvc: '123' }, ...(payer ? { payer } : {}) } });
}

const confirmBody = (transactionId: string, orderReference: string, grandTotal = 1000, extra: Record<string, unknown> = {}) => ({
  orderReference,
  orderData: { orderReference, grandTotal, currencyCode: 'EUR', items: [{ idSalesOrderItem: 11, name: 'Shirt' }, { idSalesOrderItem: 12, name: 'Socks' }] },
  preOrderPaymentData: { transactionId },
  ...extra,
});
const confirm = (body: unknown, tenant = TENANT) => app.request('/private/confirm-pre-order-payment', { tenant, body });

beforeAll(async () => {
  app = await startTestApp();
  for (const t of [TENANT, OTHER]) {
    const r = await app.request('/private/configure', { tenant: t, body: configBody(CONFIG) });
    expect(r.status, r.text).toBe(200);
  }
});
afterAll(async () => {
  await app?.close();
});

describe('headless flow end to end', () => {
  it('/payments → sandbox confirm → held authorization webhook → confirm-pre-order → PaymentUpdated + exactly one PaymentAuthorized', async () => {
    const p = await start(1000);
    expect(p.transactionId).toMatch(/^sbx_pay_/);
    expect(p.clientSecret).toEqual(expect.any(String));
    const created = await paymentRow(p.transactionId);
    expect(created).toMatchObject({ status: 'new', order_reference: null, amount: 1000, currency: 'EUR' });
    const createdMsg = (await messagesOf(created.id, 'PaymentCreated'))[0];
    expect(createdMsg.payload.entityReference).toBeUndefined();

    const paid = await pay(p);
    expect(paid.status, paid.text).toBe(200);
    expect(paid.body.status).toBe('authorized');

    // The PSP's webhook arrives before the order exists: verified, stored and held.
    const held = await until(() => inboxOf(p.transactionId), (rows) => rows.some((r) => r.state === 'waiting_for_order'));
    expect(held.map((r) => [r.event_type, r.state])).toEqual([['payment.authorized', 'waiting_for_order']]);
    expect((await paymentRow(p.transactionId)).status).toBe('new');
    expect(await messagesOf(created.id, 'PaymentAuthorized')).toHaveLength(0);

    const order = ref();
    const r = await confirm(confirmBody(p.transactionId, order));
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ isSuccessful: true, message: null });

    const linked = await paymentRow(p.transactionId);
    expect(linked).toMatchObject({ status: 'authorized', order_reference: order });
    expect(linked.linked_at).not.toBeNull();
    expect(linked.order_data.items).toHaveLength(2);
    expect((await inboxOf(p.transactionId)).map((x) => x.state)).toEqual(['processed']);

    const all = await messagesOf(created.id);
    expect(all.map((m) => m.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentUpdated', 'PaymentAuthorized']);
    expect(all[1].payload.entityReference).toBe(order);
    expect(JSON.parse(all[1].payload.details).status).toBe('new');
    expect(JSON.parse(all[2].payload.details).status).toBe('authorized');
    expect(all[3].payload).toEqual({ orderReference: order, orderItemIds: [11, 12], amount: 1000, currencyIsoCode: 'EUR' });

    // Repeat: same answer, no PSP call, no message.
    const again = await confirm(confirmBody(p.transactionId, order));
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ isSuccessful: true, message: null });
    expect(await messagesOf(created.id)).toHaveLength(4);

    // Another order for the same payment, or the same order for another payment: 409 CONFLICT, nothing changes.
    const other = await confirm(confirmBody(p.transactionId, ref()));
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'CONFLICT', status: 409 }] });
    expect(other.body.message).toBe(other.body.error);
    const q = await start(1000);
    const taken = await confirm(confirmBody(q.transactionId, order));
    expect(taken.status).toBe(409);
    expect(taken.body.errors[0].code).toBe('CONFLICT');
    expect((await paymentRow(q.transactionId)).order_reference).toBeNull();
  });

  it('confirm before the shopper paid: linked, stays new (PaymentUpdated only); the later webhook authorizes it', async () => {
    const p = await start(1500);
    const order = ref();
    const r = await app.request('/confirm-pre-order-payment', { tenant: TENANT, body: { ...confirmBody(p.transactionId, order, 1500), preOrderPaymentData: {}, transactionId: p.transactionId } });
    expect(r.status, r.text).toBe(200);
    const row = await paymentRow(p.transactionId);
    expect(row).toMatchObject({ status: 'new', order_reference: order });
    expect((await messagesOf(row.id)).map((m) => m.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated']);
    expect((await pay(p)).status).toBe(200);
    const done = await until(() => paymentRow(p.transactionId), (x) => x.status === 'authorized');
    expect(done.status).toBe('authorized');
    expect(await until(() => messagesOf(row.id, 'PaymentAuthorized'), (m) => m.length === 1)).toHaveLength(1);
  });

  it('top-level transactionId wins over preOrderPaymentData.transactionId', async () => {
    const p = await start(700);
    const r = await confirm({ ...confirmBody('sbx_pay_does_not_exist', ref(), 700), transactionId: p.transactionId });
    expect(r.status, r.text).toBe(200);
    expect((await paymentRow(p.transactionId)).order_reference).not.toBeNull();
  });

  it('decline card (final failure): 422 PAYMENT_DECLINED, link stored, PaymentAuthorizationFailed; a repeat answers the same 422', async () => {
    const p = await start(1200);
    const paid = await pay(p, '4100000000000019');
    expect(paid.status).toBe(402);
    const order = ref();
    const r = await confirm(confirmBody(p.transactionId, order, 1200));
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'PAYMENT_DECLINED', status: 422 }] });
    const row = await paymentRow(p.transactionId);
    expect(row).toMatchObject({ status: 'authorization_failed', order_reference: order });
    const failed = await messagesOf(row.id, 'PaymentAuthorizationFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0].payload).toEqual({ orderReference: order, orderItemIds: [11, 12], amount: 1200, currencyIsoCode: 'EUR' });
    const again = await confirm(confirmBody(p.transactionId, order, 1200));
    expect(again.status).toBe(422);
    expect(again.body.errors[0].code).toBe('PAYMENT_DECLINED');
    expect(await messagesOf(row.id, 'PaymentAuthorizationFailed')).toHaveLength(1);
  });

  it('amount change between two /payments calls updates the same PSP payment (PaymentUpdated), then confirm with the new total', async () => {
    const p = await start(1000);
    const again = await app.request('/payments', { tenant: TENANT, body: gluePayment(1490, { preOrderPaymentData: { transactionId: p.transactionId, clientSecret: p.clientSecret } }) });
    expect(again.status, again.text).toBe(201);
    expect(again.body.data.attributes.preOrderPaymentData.transactionId).toBe(p.transactionId);
    const row = await paymentRow(p.transactionId);
    expect(row.amount).toBe(1490);
    expect((await messagesOf(row.id)).map((m) => m.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated']);
    const psp = await app.request(`/sandbox/v1/payments/${p.transactionId}`, { headers: { authorization: 'Bearer sk_sandbox_test1234' } });
    expect(psp.body.amount).toBe(1490);
    expect((await pay(p)).status).toBe(200);
    const r = await confirm(confirmBody(p.transactionId, ref(), 1490));
    expect(r.status, r.text).toBe(200);
    const msgs = await until(() => messagesOf(row.id, 'PaymentAuthorized'), (m) => m.length === 1);
    expect(msgs[0].payload.amount).toBe(1490);
  });

  it('confirm with a changed total before payment: the PSP amount is updated, then linked', async () => {
    const p = await start(1000);
    const r = await confirm(confirmBody(p.transactionId, ref(), 1395));
    expect(r.status, r.text).toBe(200);
    expect((await paymentRow(p.transactionId)).amount).toBe(1395);
    const psp = await app.request(`/sandbox/v1/payments/${p.transactionId}`, { headers: { authorization: 'Bearer sk_sandbox_test1234' } });
    expect(psp.body.amount).toBe(1395);
  });

  it('confirm with a changed total after the PSP authorized: 409 CONFLICT, nothing linked, no message', async () => {
    const p = await start(1000, 'Sandbox Express');
    expect((await pay(p)).status).toBe(200);
    const before = await paymentRow(p.transactionId);
    const n = (await messagesOf(before.id)).length;
    const r = await confirm(confirmBody(p.transactionId, ref(), 1495));
    expect(r.status).toBe(409);
    expect(r.body.errors[0]).toMatchObject({ code: 'CONFLICT', message: 'The order total does not match the pre-order payment amount.' });
    const after = await paymentRow(p.transactionId);
    expect(after).toMatchObject({ order_reference: null, amount: 1000, status: 'new' });
    expect(await messagesOf(before.id)).toHaveLength(n);
  });

  it('currency mismatch: 409 CONFLICT', async () => {
    const p = await start(1000);
    const body = confirmBody(p.transactionId, ref());
    body.orderData.currencyCode = 'USD';
    const r = await confirm(body);
    expect(r.status).toBe(409);
    expect(r.body.errors[0].code).toBe('CONFLICT');
  });

  it('validation and lookup errors: 400 naming the field, 404 for unknown or foreign transaction ids', async () => {
    const p = await start(1000);
    const noId = await confirm({ ...confirmBody(p.transactionId, ref()), preOrderPaymentData: {} });
    expect(noId.status).toBe(400);
    expect(noId.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'VALIDATION_FAILED', field: 'preOrderPaymentData.transactionId' }] });
    const noRef = await confirm({ ...confirmBody(p.transactionId, ref()), orderReference: undefined });
    expect(noRef.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'orderReference' });
    const badItems = confirmBody(p.transactionId, ref());
    (badItems.orderData.items[0] as Record<string, unknown>).idSalesOrderItem = 'x';
    expect((await confirm(badItems)).body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'orderData.items[0].idSalesOrderItem' });
    const unknown = await confirm(confirmBody('sbx_pay_unknown', ref()));
    expect(unknown.status).toBe(404);
    expect(unknown.body.errors[0]).toMatchObject({ code: 'PAYMENT_NOT_FOUND', message: 'Could not find a payment with the transaction id "sbx_pay_unknown"' });
    const foreign = await confirm(confirmBody(p.transactionId, ref()), OTHER);
    expect(foreign.status).toBe(404);
    expect((await paymentRow(p.transactionId)).order_reference).toBeNull();
    const noTenant = await app.request('/private/confirm-pre-order-payment', { body: confirmBody(p.transactionId, ref()) });
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.errors[0].code).toBe('TENANT_IDENTIFIER_MISSING');
  });
});

describe('cancel a pre-order payment', () => {
  it('private endpoint: new → canceled at the PSP and here, held webhooks discarded, PaymentUpdated only; repeat is 200', async () => {
    const p = await start(800);
    // A retryable decline produces a held webhook too (payment.attempt_failed).
    expect((await pay(p, '4000000000000002')).status).toBe(402);
    await until(() => inboxOf(p.transactionId), (rows) => rows.length > 0 && rows.every((r) => r.state !== 'received'));
    const row = await paymentRow(p.transactionId);
    const r = await app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body: { preOrderPaymentData: { transactionId: p.transactionId } } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ isSuccessful: true, message: null });
    expect((await paymentRow(p.transactionId)).status).toBe('canceled');
    const psp = await app.request(`/sandbox/v1/payments/${p.transactionId}`, { headers: { authorization: 'Bearer sk_sandbox_test1234' } });
    expect(psp.body.status).toBe('canceled');
    const names = (await messagesOf(row.id)).map((m) => m.message_name);
    expect(names).toEqual(['PaymentCreated', 'PaymentUpdated']);
    expect(names).not.toContain('PaymentCanceled');
    // Held rows are discarded; the cancel webhook that follows finds the payment canceled already.
    const rows = await until(() => inboxOf(p.transactionId), (x) => x.every((y) => ['discarded', 'processed', 'ignored'].includes(y.state)) && x.some((y) => y.event_type === 'payment.canceled'));
    expect(rows.filter((x) => x.state === 'waiting_for_order')).toHaveLength(0);
    const again = await app.request('/cancel-pre-order-payment', { tenant: TENANT, body: { transactionId: p.transactionId } });
    expect(again.status).toBe(200);
    expect(await messagesOf(row.id)).toHaveLength(2);
    // A canceled payment cannot be confirmed.
    const c = await confirm(confirmBody(p.transactionId, ref(), 800));
    expect(c.status).toBe(409);
    expect(c.body.errors[0].code).toBe('ILLEGAL_TRANSITION');
  });

  it('linked payment: 409 ILLEGAL_TRANSITION; unknown: 404; no transaction id: 400', async () => {
    const p = await start(900);
    const order = ref();
    expect((await confirm(confirmBody(p.transactionId, order, 900))).status).toBe(200);
    const r = await app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body: { transactionId: p.transactionId } });
    expect(r.status).toBe(409);
    expect(r.body.errors[0]).toMatchObject({ code: 'ILLEGAL_TRANSITION', message: `The payment is linked to order "${order}"; cancel it through the order.` });
    expect((await app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body: { transactionId: 'sbx_pay_nope' } })).status).toBe(404);
    const bad = await app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('preOrderPaymentData.transactionId');
  });

  it('PSP refuses because the money is already captured (automatic capture): 409, status unchanged', async () => {
    const t = 'headless-auto';
    expect((await app.request('/private/configure', { tenant: t, body: configBody({ ...CONFIG, captureMode: 'automatic' }) })).status).toBe(200);
    const s = await app.request('/payments', { tenant: t, body: gluePayment(600) });
    const pod = s.body.data.attributes.preOrderPaymentData;
    const paid = await pay({ transactionId: pod.transactionId, clientSecret: pod.clientSecret });
    expect(paid.body.status).toBe('captured');
    const r = await app.request('/private/cancel-pre-order-payment', { tenant: t, body: { transactionId: pod.transactionId } });
    expect(r.status).toBe(409);
    expect(r.body.errors[0]).toMatchObject({ code: 'ILLEGAL_TRANSITION', message: 'The payment is already captured at the payment provider.' });
    const row = (await app.deps.db.query<any>('SELECT status FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [t, pod.transactionId])).rows[0];
    expect(row.status).toBe('new');
  });

  it('Glue /payment-cancellations: 201 JSON:API answer, payment canceled', async () => {
    const p = await start(500);
    const r = await app.request('/payment-cancellations', {
      tenant: TENANT,
      headers: { 'content-type': 'application/vnd.api+json' },
      body: { data: { type: 'payment-cancellations', attributes: { payment: { paymentProviderName: 'sandbox', paymentMethodName: 'credit-card' }, preOrderPaymentData: { transactionId: p.transactionId } } } },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
    expect(r.body).toEqual({ data: { type: 'payment-cancellations', id: null, attributes: { isSuccessful: true, error: null, preOrderPaymentData: {} }, links: { self: `${app.url}/payment-cancellations` } } });
    expect((await paymentRow(p.transactionId)).status).toBe('canceled');
  });
});

describe('customer lookup (4.8)', () => {
  const payer = {
    salutation: 'Ms',
    firstName: 'Sonia',
    lastName: 'Wagner',
    email: 'sonia@example.com',
    phone: '+49301234567',
    billingAddress: { salutation: 'Ms', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', zipCode: '10115', city: 'Berlin', iso2Code: 'DE', email: 'sonia@example.com', phone: '+49301234567' },
    shippingAddress: { firstName: 'Max', lastName: 'Wagner', address1: 'Hauptstr. 5', zipCode: '80331', city: 'München', iso2Code: 'de' },
  };

  it('answers the payer in the exact shape: nulls, no locale/country keys; nothing stored', async () => {
    const p = await start(1000, 'Sandbox Express');
    const early = await app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId, idCart: 5 } } });
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'CONFLICT', message: 'The payment provider has no customer data for this payment yet.' }] });
    expect((await pay(p, '4242424242424242', payer)).status).toBe(200);
    const row = await paymentRow(p.transactionId);
    const before = (await messagesOf(row.id)).length;
    const r = await app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId } } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({
      isSuccessful: true,
      customer: {
        salutation: 'Ms',
        firstName: 'Sonia',
        lastName: 'Wagner',
        email: 'sonia@example.com',
        phone: '+49301234567',
        company: null,
        gender: null,
        dateOfBirth: null,
        billingAddress: { salutation: 'Ms', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', address3: null, zipCode: '10115', city: 'Berlin', state: null, region: null, iso2Code: 'DE', company: null, email: 'sonia@example.com', phone: '+49301234567', cellPhone: null },
        shippingAddress: { salutation: null, firstName: 'Max', lastName: 'Wagner', address1: 'Hauptstr. 5', address2: null, address3: null, zipCode: '80331', city: 'München', state: null, region: null, iso2Code: 'DE', company: null, email: null, phone: null, cellPhone: null },
      },
    });
    expect(await messagesOf(row.id)).toHaveLength(before);
  });

  it('400 for neither field / no transactionId, 404 for unknown or foreign payments', async () => {
    const neither = await app.request('/private/customer', { tenant: TENANT, body: {} });
    expect(neither.status).toBe(400);
    expect(neither.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Either customer or customerPaymentServiceProviderData must be provided.' });
    const noId = await app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { idCart: 1 } } });
    expect(noId.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'customerPaymentServiceProviderData.transactionId' });
    const unknown = await app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: 'sbx_pay_x' } } });
    expect(unknown.status).toBe(404);
    const p = await start(1000, 'Sandbox Express');
    const foreign = await app.request('/private/customer', { tenant: OTHER, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId } } });
    expect(foreign.status).toBe(404);
  });
});

describe('PSP failures', () => {
  type Conn = Record<string, any>;
  async function withPatched<T>(name: string, impl: (...args: any[]) => Promise<unknown>, fn: () => Promise<T>, target: Conn = app.deps.connectors.default as unknown as Conn): Promise<T> {
    const original = target[name];
    target[name] = impl;
    try {
      return await fn();
    } finally {
      target[name] = original;
    }
  }
  const down = async () => ({ ok: false, failure: { kind: 'error', message: 'connection refused' } });
  const slow = async () => ({ ok: false, failure: { kind: 'timeout' } });

  it('confirm while the PSP is unreachable: 200, linked, stays new (PaymentUpdated only)', async () => {
    const p = await start(1100);
    const order = ref();
    const r = await withPatched('getPayment', down, () => confirm(confirmBody(p.transactionId, order, 1100)));
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ isSuccessful: true, message: null });
    const row = await paymentRow(p.transactionId);
    expect(row).toMatchObject({ status: 'new', order_reference: order });
    expect((await messagesOf(row.id)).map((m) => m.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated']);
  });

  it('confirm with a changed total while the PSP is down / slow: 502 / 504, nothing linked', async () => {
    const p = await start(1100);
    const a = await withPatched('updatePaymentAmount', down, () => confirm(confirmBody(p.transactionId, ref(), 1200)));
    expect(a.status).toBe(502);
    expect(a.body.errors[0].code).toBe('PSP_ERROR');
    const b = await withPatched('updatePaymentAmount', slow, () => confirm(confirmBody(p.transactionId, ref(), 1200)));
    expect(b.status).toBe(504);
    expect(b.body.errors[0].code).toBe('PSP_TIMEOUT');
    expect(await paymentRow(p.transactionId)).toMatchObject({ order_reference: null, amount: 1100 });
  });

  it('cancel while the PSP fails / times out / refuses: 502 / 504 / 422, status unchanged', async () => {
    const p = await start(1100);
    const body = { transactionId: p.transactionId };
    const a = await withPatched('cancel', down, () => app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body }));
    expect(a.status).toBe(502);
    expect(a.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'PSP_ERROR' }] });
    const b = await withPatched('cancel', slow, () => app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body }));
    expect(b.status).toBe(504);
    const refused = async () => ({ ok: false, failure: { kind: 'declined', code: 'not_cancelable', message: 'nope' } });
    const c = await withPatched('cancel', refused, () => app.request('/private/cancel-pre-order-payment', { tenant: TENANT, body }));
    expect(c.status).toBe(422);
    expect(c.body.errors[0].code).toBe('PAYMENT_DECLINED');
    expect((await paymentRow(p.transactionId)).status).toBe('new');
    // Glue: the same failure is a 422 whose code names the cause.
    const g = await withPatched('cancel', down, () =>
      app.request('/payment-cancellations', { tenant: TENANT, body: { data: { attributes: { payment: { paymentProviderName: 'Sandbox', paymentMethodName: 'Credit Card' }, preOrderPaymentData: body } } } }),
    );
    expect(g.status).toBe(422);
    expect(g.body.errors[0]).toMatchObject({ code: 'PSP_ERROR', status: 422 });
  });

  it('customer lookup while the PSP fails / times out: 502 / 504', async () => {
    const p = await start(1100, 'Sandbox Express');
    const customer = app.deps.connectors.default.customer as unknown as Conn;
    const a = await withPatched('getPayer', down, () => app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId } } }), customer);
    expect(a.status).toBe(502);
    const b = await withPatched('getPayer', slow, () => app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId } } }), customer);
    expect(b.status).toBe(504);
    expect(b.body.errors[0].code).toBe('PSP_TIMEOUT');
  });

  it('connector without customer lookup: 422 UNSUPPORTED_OPERATION', async () => {
    const p = await start(1100, 'Sandbox Express');
    const caps = app.deps.connectors.default.capabilities as { customer: boolean };
    caps.customer = false;
    try {
      const r = await app.request('/private/customer', { tenant: TENANT, body: { customerPaymentServiceProviderData: { transactionId: p.transactionId } } });
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'UNSUPPORTED_OPERATION', message: 'Platform plugin does not provide Customer features' }] });
    } finally {
      caps.customer = true;
    }
  });
});

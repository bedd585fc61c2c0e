/**
 * POST /private/initialize-payment, /initialize-payment, /private/pre-order-payment (sync-api.md 4.3, 4.4):
 * body encodings, validation paths, method matching, idempotency, tenant checks, pre-order mode, stored rows
 * and messages (messages.md 3.4, 5).
 */
import qs from 'qs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostedIdempotencyKey, matchPaymentMethod } from '../src/app/initialize-payment.js';
import type { Connector, CreatePaymentRequest, PspFailure } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const SECRET_KEY = 'sk_sandbox_test1234';
const WEBHOOK_SECRET = 'whsec_0123456789abcdef';
const SHOP = 'https://shop.example';

let app: TestApp;
let seq = 0;
const ref = (): string => `DE--${Date.now().toString(36)}-${++seq}`;

async function configure(tenant: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await app.request('/private/configure', {
    tenant,
    body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, ...extra }) } } },
  });
  expect(r.status, r.text).toBe(200);
}

function hostedBody(orderReference: string, over: Record<string, unknown> = {}, orderOver: Record<string, unknown> = {}): Record<string, any> {
  return {
    orderData: {
      orderReference,
      grandTotal: 10000,
      currencyCode: 'EUR',
      paymentMethod: 'Credit Card',
      items: [
        { idSalesOrderItem: 11, name: 'Shirt', sku: 'S-1', quantity: 1, unitPrice: 6000 },
        { idSalesOrderItem: 12, name: 'Socks', sku: 'S-2', quantity: 2, unitPrice: 2000 },
      ],
      storeName: 'DE',
      customProjectField: { nested: true },
      ...orderOver,
    },
    redirectSuccessUrl: `${SHOP}/en/payment/order-success`,
    redirectCancelUrl: `${SHOP}/en/payment/order-cancel?orderReference=${orderReference}`,
    checkoutSummaryPageUrl: `${SHOP}/en/checkout/summary`,
    ...over,
  };
}

const init = (tenant: string | undefined, body: unknown, path = '/private/initialize-payment', headers: Record<string, string> = {}) =>
  app.request(path, { tenant, body, headers });

async function paymentRows(tenant: string, orderReference: string): Promise<any[]> {
  return (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, orderReference])).rows;
}

async function outbox(tenant: string, name?: string): Promise<any[]> {
  const r = await app.deps.db.query<any>('SELECT * FROM outbox WHERE tenant_identifier = $1 ORDER BY seq', [tenant]);
  return r.rows.filter((m) => m.channel === 'payment-events' && (name === undefined || m.message_name === name));
}

async function sandboxCreates(orderReference: string): Promise<number> {
  const r = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sandbox_payments WHERE reference = $1', [orderReference]);
  return r.rows[0]!.n;
}

function expectFailure(r: { status: number; body: any }, status: number, code: string, field?: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.isSuccessful).toBe(false);
  expect(r.body.message).toBe(r.body.error);
  expect(r.body.errors[0]).toMatchObject({ code, status });
  expect(r.body.errors[0].message).toBe(r.body.error);
  if (field !== undefined) expect(r.body.errors[0].field).toBe(field);
}

beforeAll(async () => {
  app = await startTestApp({}, { startWorkers: false });
  await configure('init-a');
  await configure('init-b');
  await configure('init-auto', { captureMode: 'automatic' });
});
afterAll(async () => {
  await app?.close();
});

describe('initialize-payment: hosted mode', () => {
  it('JSON body: 200 with transactionId and the payment page URL; stores the payment, history, psp object and PaymentCreated', async () => {
    const orderReference = ref();
    const r = await init('init-a', hostedBody(orderReference), '/private/initialize-payment', { 'x-request-id': 'req-init-1' });
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    const tx = r.body.transactionId as string;
    expect(tx).toMatch(/^sbx_pay_/);
    expect(r.body).toEqual({
      isSuccessful: true,
      transactionId: tx,
      redirectUrl: `${app.deps.config.appBaseUrl}/app-payment?transactionId=${encodeURIComponent(tx)}&tenantIdentifier=init-a`,
      message: null,
    });

    const [p] = await paymentRows('init-a', orderReference);
    expect(p).toMatchObject({
      transaction_id: tx,
      status: 'new',
      version: 1,
      amount: 10000,
      currency: 'EUR',
      payment_method: 'credit-card',
      connector: 'sandbox',
      mode: 'test',
      capture_mode: 'manual',
      redirect_success_url: `${SHOP}/en/payment/order-success`,
      checkout_summary_page_url: `${SHOP}/en/checkout/summary`,
    });
    expect(p.order_data).toMatchObject({ orderReference, storeName: 'DE', customProjectField: { nested: true }, items: [{ idSalesOrderItem: 11 }, { idSalesOrderItem: 12 }] });

    const h = (await app.deps.db.query<any>('SELECT * FROM payment_status_history WHERE payment_id = $1', [p.id])).rows;
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ seq: 1, status: 'new', trigger: 'sync', trigger_ref: 'req-init-1' });
    const o = (await app.deps.db.query<any>('SELECT * FROM psp_objects WHERE psp_object_id = $1', [tx])).rows;
    expect(o).toEqual([{ connector: 'sandbox', psp_object_id: tx, tenant_identifier: 'init-a', kind: 'payment' }]);

    const created = (await outbox('init-a', 'PaymentCreated')).filter((m) => m.payload.paymentReference === tx);
    expect(created).toHaveLength(1);
    expect(created[0].ordering_key).toBe(`init-a/payment/${p.id}`);
    expect(created[0].attributes.correlationId).toBe('req-init-1');
    expect(created[0].payload.entityReference).toBe(orderReference);
    const details = JSON.parse(created[0].payload.details);
    expect(details).toMatchObject({ transactionId: tx, status: 'new', amount: 10000, capturedAmount: 0, refundedAmount: 0, currencyIsoCode: 'EUR', paymentMethod: 'credit-card', connector: 'sandbox', mode: 'test' });
    expect(details['External status "new"']).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

    // The sandbox holds the payment with our metadata and the idempotent reference.
    const s = (await app.deps.db.query<any>('SELECT * FROM sandbox_payments WHERE id = $1', [tx])).rows[0];
    expect(s).toMatchObject({ amount: 10000, currency: 'EUR', capture_method: 'manual', reference: orderReference });
    expect(s.metadata).toMatchObject({ tenantIdentifier: 'init-a', orderReference });
    expect(s.return_url).toBe(`${app.deps.config.appBaseUrl}/app-payment/redirect?tenantIdentifier=init-a`);
  });

  it('form_params-wrapped JSON body is accepted', async () => {
    const orderReference = ref();
    const r = await init('init-a', { form_params: hostedBody(orderReference), tenantIdentifier: 'ignored' });
    expect(r.status, r.text).toBe(200);
    expect(await paymentRows('init-a', orderReference)).toHaveLength(1);
  });

  it('form-encoded PHP bracket body: strings converted for integer fields, numeric keys build arrays', async () => {
    const orderReference = ref();
    const body = hostedBody(orderReference);
    body.orderData.items = { 0: body.orderData.items[0], 1: body.orderData.items[1] };
    const raw = qs.stringify(body, { encode: true });
    expect(raw).toContain('orderData%5Bitems%5D%5B0%5D%5BidSalesOrderItem%5D=11');
    const r = await app.request('/initialize-payment', { tenant: 'init-a', raw, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status, r.text).toBe(200);
    const [p] = await paymentRows('init-a', orderReference);
    expect(p.amount).toBe(10000);
    expect(p.order_data.grandTotal).toBe(10000);
    expect(p.order_data.items).toEqual([
      { idSalesOrderItem: 11, name: 'Shirt', sku: 'S-1', quantity: 1, unitPrice: 6000 },
      { idSalesOrderItem: 12, name: 'Socks', sku: 'S-2', quantity: 2, unitPrice: 2000 },
    ]);
    // Non-consecutive numeric keys also build an array (ordered by key).
    const ref2 = ref();
    const raw2 = qs.stringify(hostedBody(ref2, {}, { items: undefined }), { encode: true }) + '&orderData%5Bitems%5D%5B5%5D%5BidSalesOrderItem%5D=7&orderData%5Bitems%5D%5B2%5D%5BidSalesOrderItem%5D=3';
    const r2 = await app.request('/private/initialize-payment', { tenant: 'init-a', raw: raw2, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r2.status, r2.text).toBe(200);
    expect((await paymentRows('init-a', ref2))[0].order_data.items).toEqual([{ idSalesOrderItem: 3 }, { idSalesOrderItem: 7 }]);
  });

  it('integer strings are accepted in JSON too; currency is stored upper-case', async () => {
    const orderReference = ref();
    const r = await init('init-a', hostedBody(orderReference, {}, { grandTotal: '2500', currencyCode: 'eur', items: [{ idSalesOrderItem: '99' }] }));
    expect(r.status, r.text).toBe(200);
    const [p] = await paymentRows('init-a', orderReference);
    expect(p).toMatchObject({ amount: 2500, currency: 'EUR' });
    expect(p.order_data.items).toEqual([{ idSalesOrderItem: 99 }]);
  });

  it('idempotent repeat: same answer, one payment row, one PaymentCreated, one PSP payment', async () => {
    const orderReference = ref();
    const first = await init('init-a', hostedBody(orderReference));
    expect(first.status).toBe(200);
    const second = await init('init-a', hostedBody(orderReference));
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    // a different encoding of the same request is the same request
    const third = await init('init-a', { form_params: hostedBody(orderReference, {}, { grandTotal: '10000', currencyCode: 'eur' }) });
    expect(third.body).toEqual(first.body);
    expect(await paymentRows('init-a', orderReference)).toHaveLength(1);
    expect((await outbox('init-a', 'PaymentCreated')).filter((m) => m.payload.paymentReference === first.body.transactionId)).toHaveLength(1);
    expect(await sandboxCreates(orderReference)).toBe(1);
  });

  it('concurrent identical requests create one payment and answer the same transaction id', async () => {
    const orderReference = ref();
    const answers = await Promise.all(Array.from({ length: 5 }, () => init('init-a', hostedBody(orderReference))));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    expect(new Set(answers.map((a) => a.body.transactionId)).size).toBe(1);
    expect(await paymentRows('init-a', orderReference)).toHaveLength(1);
    expect((await outbox('init-a', 'PaymentCreated')).filter((m) => m.payload.entityReference === orderReference)).toHaveLength(1);
    expect(await sandboxCreates(orderReference)).toBe(1);
  });

  it('repeat with a different amount or currency → 409 CONFLICT, nothing changed', async () => {
    const orderReference = ref();
    expect((await init('init-a', hostedBody(orderReference))).status).toBe(200);
    const before = await outbox('init-a');
    const r = await init('init-a', hostedBody(orderReference, {}, { grandTotal: 10001 }));
    expectFailure(r, 409, 'CONFLICT');
    expect(r.body.error).toBe(`Order "${orderReference}" already has a payment with a different amount or currency.`);
    const r2 = await init('init-a', hostedBody(orderReference, {}, { currencyCode: 'USD' }));
    expectFailure(r2, 409, 'CONFLICT');
    const rows = await paymentRows('init-a', orderReference);
    expect(rows).toHaveLength(1);
    expect(rows[0].amount).toBe(10000);
    expect((await outbox('init-a')).length).toBe(before.length);
  });

  it('two tenants may use the same order reference', async () => {
    const orderReference = ref();
    const a = await init('init-a', hostedBody(orderReference));
    const b = await init('init-b', hostedBody(orderReference));
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.transactionId).not.toBe(b.body.transactionId);
    expect(b.body.redirectUrl).toContain('tenantIdentifier=init-b');
    expect(await paymentRows('init-a', orderReference)).toHaveLength(1);
    expect(await paymentRows('init-b', orderReference)).toHaveLength(1);
    expect(hostedIdempotencyKey('init-a', orderReference)).not.toBe(hostedIdempotencyKey('init-b', orderReference));
  });

  it('automatic capture mode is taken from the tenant settings', async () => {
    const orderReference = ref();
    const r = await init('init-auto', hostedBody(orderReference));
    expect(r.status).toBe(200);
    expect((await paymentRows('init-auto', orderReference))[0].capture_mode).toBe('automatic');
    expect((await app.deps.db.query<any>('SELECT capture_method FROM sandbox_payments WHERE id = $1', [r.body.transactionId])).rows[0].capture_method).toBe('automatic');
  });
});

describe('initialize-payment: validation (400 VALIDATION_FAILED naming the field), nothing stored', () => {
  const cases: Array<[string, (b: Record<string, any>) => void, string]> = [
    ['missing orderData', (b) => delete b.orderData, 'orderData'],
    ['orderData not an object', (b) => (b.orderData = 'x'), 'orderData'],
    ['missing grandTotal', (b) => delete b.orderData.grandTotal, 'orderData.grandTotal'],
    ['null grandTotal', (b) => (b.orderData.grandTotal = null), 'orderData.grandTotal'],
    ['decimal grandTotal', (b) => (b.orderData.grandTotal = '10.00'), 'orderData.grandTotal'],
    ['exponent grandTotal', (b) => (b.orderData.grandTotal = '1e3'), 'orderData.grandTotal'],
    ['empty grandTotal', (b) => (b.orderData.grandTotal = ''), 'orderData.grandTotal'],
    ['zero grandTotal', (b) => (b.orderData.grandTotal = 0), 'orderData.grandTotal'],
    ['float grandTotal', (b) => (b.orderData.grandTotal = 10.5), 'orderData.grandTotal'],
    ['missing currencyCode', (b) => delete b.orderData.currencyCode, 'orderData.currencyCode'],
    ['unknown currencyCode', (b) => (b.orderData.currencyCode = 'EURO'), 'orderData.currencyCode'],
    ['missing paymentMethod and paymentMethodName', (b) => delete b.orderData.paymentMethod, 'orderData.paymentMethod'],
    ['missing items (hosted)', (b) => delete b.orderData.items, 'orderData.items'],
    ['empty items (hosted)', (b) => (b.orderData.items = []), 'orderData.items'],
    ['item without idSalesOrderItem', (b) => delete b.orderData.items[1].idSalesOrderItem, 'orderData.items[1].idSalesOrderItem'],
    ['item with non-integer idSalesOrderItem', (b) => (b.orderData.items[0].idSalesOrderItem = 'abc'), 'orderData.items[0].idSalesOrderItem'],
    ['item not an object', (b) => (b.orderData.items[0] = 5), 'orderData.items[0]'],
    ['item quantity not an integer', (b) => (b.orderData.items[0].quantity = '1.5'), 'orderData.items[0].quantity'],
    ['missing redirectSuccessUrl (hosted)', (b) => delete b.redirectSuccessUrl, 'redirectSuccessUrl'],
    ['relative redirectCancelUrl', (b) => (b.redirectCancelUrl = '/cancel'), 'redirectCancelUrl'],
    ['non-http checkoutSummaryPageUrl', (b) => (b.checkoutSummaryPageUrl = 'javascript:alert(1)'), 'checkoutSummaryPageUrl'],
    ['orderReference not a string', (b) => (b.orderData.orderReference = 42), 'orderData.orderReference'],
  ];
  for (const [name, mutate, field] of cases) {
    it(name, async () => {
      const orderReference = ref();
      const body = hostedBody(orderReference);
      mutate(body);
      const r = await init('init-a', body);
      expectFailure(r, 400, 'VALIDATION_FAILED', field);
      expect(r.body.error).toContain(`"${field}"`);
      expect(await paymentRows('init-a', orderReference)).toHaveLength(0);
    });
  }

  it('unknown payment method → 400 naming orderData.paymentMethod with the spec message', async () => {
    const orderReference = ref();
    const r = await init('init-a', hostedBody(orderReference, {}, { paymentMethod: 'PayPal' }));
    expectFailure(r, 400, 'VALIDATION_FAILED', 'orderData.paymentMethod');
    expect(r.body.error).toBe('Unknown payment method "PayPal" for this tenant.');
    expect(await sandboxCreates(orderReference)).toBe(0);
  });

  it('a method the tenant did not announce is unknown (sandbox-express not enabled)', async () => {
    const r = await init('init-a', hostedBody(ref(), {}, { paymentMethod: 'Sandbox Express' }));
    expectFailure(r, 400, 'VALIDATION_FAILED', 'orderData.paymentMethod');
  });

  it('method matching: name, normalised form, shop key, case-insensitive; paymentMethodName as fallback', async () => {
    for (const m of ['credit card', 'CREDIT-CARD', 'sandbox-credit-card', 'Sandbox-Credit-Card']) {
      const r = await init('init-a', hostedBody(ref(), {}, { paymentMethod: m }));
      expect(r.status, `${m}: ${r.text}`).toBe(200);
    }
    const body = hostedBody(ref());
    delete body.orderData.paymentMethod;
    body.orderData.paymentMethodName = 'Credit Card';
    expect((await init('init-a', body)).status).toBe(200);
    const announced = [{ name: 'credit-card', payload: { name: 'Credit Card', providerName: 'Sandbox' } }];
    expect(matchPaymentMethod('credit_card', announced, 'Sandbox')).toBeNull();
    expect(matchPaymentMethod('Sandbox-credit-card', announced, 'Sandbox')).toBe('credit-card');
  });

  it('a body that is not an object → 400 INVALID_REQUEST; invalid JSON → 400 INVALID_REQUEST', async () => {
    expectFailure(await init('init-a', [1, 2]), 400, 'INVALID_REQUEST');
    const r = await app.request('/private/initialize-payment', { tenant: 'init-a', raw: '{"orderData":', headers: { 'content-type': 'application/json' } });
    expectFailure(r, 400, 'INVALID_REQUEST');
    const empty = await app.request('/private/initialize-payment', { tenant: 'init-a', method: 'POST' });
    expect(empty.status).toBe(400);
    expect(empty.body.isSuccessful).toBe(false);
  });
});

describe('initialize-payment: tenant checks', () => {
  it('no tenant header → 400 TENANT_IDENTIFIER_MISSING', async () => {
    expectFailure(await init(undefined, hostedBody(ref())), 400, 'TENANT_IDENTIFIER_MISSING');
  });

  it('unknown tenant → 404 TENANT_NOT_FOUND', async () => {
    expectFailure(await init('init-never-configured', hostedBody(ref())), 404, 'TENANT_NOT_FOUND');
  });

  it('disconnected tenant → 403 TENANT_DISCONNECTED, nothing stored', async () => {
    await configure('init-gone');
    const d = await app.request('/private/disconnect', { method: 'POST', tenant: 'init-gone', headers: { 'x-confirmation-status': 'true' } });
    expect(d.status).toBe(204);
    const orderReference = ref();
    const r = await init('init-gone', hostedBody(orderReference));
    expectFailure(r, 403, 'TENANT_DISCONNECTED');
    expect(r.body.error).toBe('Tenant is disconnected.');
    expect(await paymentRows('init-gone', orderReference)).toHaveLength(0);
  });

  it('the X-Store-Reference header is a fallback', async () => {
    const r = await init(undefined, hostedBody(ref()), '/private/initialize-payment', { 'x-store-reference': 'init-a' });
    expect(r.status, r.text).toBe(200);
  });
});

describe('initialize-payment: pre-order mode', () => {
  const preBody = (over: Record<string, unknown> = {}, orderOver: Record<string, unknown> = {}) => ({
    orderData: { grandTotal: 5000, currencyCode: 'EUR', paymentMethod: 'credit-card', ...orderOver },
    preOrderPaymentData: {},
    localeName: 'en_US',
    ...over,
  });

  it('first call: payment without order, preOrderPaymentData with transactionId and sandbox data, PaymentCreated without entityReference', async () => {
    const r = await init('init-a', preBody(), '/private/pre-order-payment');
    expect(r.status, r.text).toBe(200);
    const tx = r.body.transactionId;
    expect(r.body).toMatchObject({ isSuccessful: true, transactionId: tx, redirectUrl: null, message: null });
    expect(r.body.preOrderPaymentData).toMatchObject({ transactionId: tx });
    expect(typeof r.body.preOrderPaymentData.clientSecret).toBe('string');
    expect(typeof r.body.preOrderPaymentData.checkoutUrl).toBe('string');
    expect(JSON.stringify(r.body)).not.toContain(SECRET_KEY);
    const p = (await app.deps.db.query<any>('SELECT * FROM payments WHERE transaction_id = $1', [tx])).rows[0];
    expect(p).toMatchObject({ tenant_identifier: 'init-a', order_reference: null, status: 'new', amount: 5000, locale_name: 'en_US' });
    const created = (await outbox('init-a', 'PaymentCreated')).filter((m) => m.payload.paymentReference === tx);
    expect(created).toHaveLength(1);
    expect(created[0].payload).not.toHaveProperty('entityReference');
  });

  it('repeat unchanged → same data, no PSP call, no message', async () => {
    const first = await init('init-a', preBody());
    const before = (await outbox('init-a')).length;
    const again = await init('init-a', preBody({ preOrderPaymentData: first.body.preOrderPaymentData }));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await outbox('init-a')).length).toBe(before);
  });

  it('repeat with a new amount → PSP amount updated, PaymentUpdated, same payment', async () => {
    const first = await init('init-a', preBody());
    const tx = first.body.transactionId;
    const again = await init('init-a', preBody({ preOrderPaymentData: { transactionId: tx } }, { grandTotal: 7000 }));
    expect(again.status, again.text).toBe(200);
    expect(again.body.preOrderPaymentData.transactionId).toBe(again.body.transactionId);
    const p = (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND (transaction_id = $2 OR id IN (SELECT payment_id FROM payment_aliases WHERE transaction_id = $2))', ['init-a', tx])).rows;
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ amount: 7000, version: 2 });
    expect((await app.deps.db.query<any>('SELECT amount FROM sandbox_payments WHERE id = $1', [p[0].transaction_id])).rows[0].amount).toBe(7000);
    const updated = (await outbox('init-a', 'PaymentUpdated')).filter((m) => m.ordering_key === `init-a/payment/${p[0].id}`);
    expect(updated).toHaveLength(1);
    expect(JSON.parse(updated[0].payload.details).amount).toBe(7000);
  });

  it('unknown pre-order transaction id → 404 PAYMENT_NOT_FOUND; another tenant’s id answers the same', async () => {
    expectFailure(await init('init-a', preBody({ preOrderPaymentData: { transactionId: 'sbx_pay_nope' } })), 404, 'PAYMENT_NOT_FOUND');
    const other = await init('init-b', preBody());
    expectFailure(await init('init-a', preBody({ preOrderPaymentData: { transactionId: other.body.transactionId } })), 404, 'PAYMENT_NOT_FOUND');
  });

  it('linked payment → 409 CONFLICT; canceled payment → 409 ILLEGAL_TRANSITION', async () => {
    const a = await init('init-a', preBody());
    await app.deps.db.query("UPDATE payments SET order_reference = 'DE--linked-1' WHERE transaction_id = $1", [a.body.transactionId]);
    const r = await init('init-a', preBody({ preOrderPaymentData: { transactionId: a.body.transactionId } }));
    expectFailure(r, 409, 'CONFLICT');
    expect(r.body.error).toBe('The payment is already linked to order "DE--linked-1".');
    const b = await init('init-a', preBody());
    await app.deps.db.query("UPDATE payments SET status = 'canceled' WHERE transaction_id = $1", [b.body.transactionId]);
    expectFailure(await init('init-a', preBody({ preOrderPaymentData: { transactionId: b.body.transactionId } })), 409, 'ILLEGAL_TRANSITION');
  });

  it('pre-order requires only grandTotal, currencyCode and paymentMethod', async () => {
    const r = await init('init-a', { orderData: { grandTotal: 100, currencyCode: 'EUR', paymentMethodName: 'Credit Card' } }, '/private/initialize-payment');
    expect(r.status, r.text).toBe(200);
    expectFailure(await init('init-a', { orderData: { currencyCode: 'EUR', paymentMethod: 'credit-card' } }, '/private/pre-order-payment'), 400, 'VALIDATION_FAILED', 'orderData.grandTotal');
  });
});

describe('initialize-payment: PSP failures store nothing', () => {
  const failures: Array<[string, PspFailure, number, string]> = [
    ['declined', { kind: 'declined', code: 'amount_too_large', message: 'Amount not supported.' }, 422, 'PAYMENT_DECLINED'],
    ['error', { kind: 'error', message: 'sandbox answered 500' }, 502, 'PSP_ERROR'],
    ['timeout', { kind: 'timeout' }, 504, 'PSP_TIMEOUT'],
  ];
  for (const [name, failure, status, code] of failures) {
    it(`PSP ${name} → ${status} ${code}; no payment, no message`, async () => {
      const connector = app.deps.connectors.default;
      const original = connector.createPayment;
      let calls = 0;
      (connector as { createPayment: Connector['createPayment'] }).createPayment = async () => {
        calls++;
        return { ok: false, failure };
      };
      try {
        const before = (await outbox('init-a')).length;
        const orderReference = ref();
        const r = await init('init-a', hostedBody(orderReference));
        expectFailure(r, status, code);
        expect(r.body.error).not.toContain(SECRET_KEY);
        expect(calls).toBe(1);
        expect(await paymentRows('init-a', orderReference)).toHaveLength(0);
        expect((await outbox('init-a')).length).toBe(before);
        const pre = await init('init-a', { orderData: { grandTotal: 100, currencyCode: 'EUR', paymentMethod: 'credit-card' } });
        expectFailure(pre, status, code);
      } finally {
        (connector as { createPayment: Connector['createPayment'] }).createPayment = original;
      }
    });
  }

  it('the PSP call gets the derived idempotency key and the tenant metadata', async () => {
    const connector = app.deps.connectors.default;
    const original = connector.createPayment;
    const seen: Array<{ req: CreatePaymentRequest; key: string }> = [];
    (connector as { createPayment: Connector['createPayment'] }).createPayment = async (settings, req, opts) => {
      seen.push({ req, key: opts.idempotencyKey });
      expect(opts.signal).toBeInstanceOf(AbortSignal);
      return original.call(connector, settings, req, opts);
    };
    try {
      const orderReference = ref();
      expect((await init('init-a', hostedBody(orderReference))).status).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.key).toBe(hostedIdempotencyKey('init-a', orderReference));
      expect(seen[0]!.req).toMatchObject({ tenantIdentifier: 'init-a', amount: 10000, currency: 'EUR', orderReference, captureMode: 'manual', metadata: { tenantIdentifier: 'init-a', orderReference } });
    } finally {
      (connector as { createPayment: Connector['createPayment'] }).createPayment = original;
    }
  });
});

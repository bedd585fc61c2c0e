/**
 * Glue-compatible storefront endpoints (sync-api.md 5): JSON:API shapes, 201 + application/vnd.api+json, Glue's
 * request validation (422, code "901", `<path> => <message>` per violation), provider/method checks, business
 * failures as 422 naming the real cause, tenant errors as section 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;
const TENANT = 'glue-a';
const CONFIG = { secretKey: 'sk_sandbox_test1234', webhookSecret: 'whsec_0123456789abcdef', paymentMethods: ['credit-card', 'sandbox-express'] };
const configBody = (c: Record<string, unknown>) => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(c) } } });

type Attrs = Record<string, any>;
function attrs(): Attrs {
  return {
    payment: { paymentProviderName: 'Sandbox', paymentMethodName: 'Credit Card', amount: 2500 },
    quote: {
      customer: { firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com', salutation: 'Ms', locale: { localeName: 'de_DE' } },
      billingAddress: { iso2Code: 'DE', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', zipCode: '10115', city: 'Berlin', phone: '+49301234567' },
      shippingAddress: { iso2Code: 'AT', firstName: 'Max', lastName: 'Muster', address1: 'Ring 1', zipCode: '1010', city: 'Wien' },
      currency: { code: 'eur' },
      items: [{ sku: 'shirt', name: 'Shirt', quantity: 2, unitGrossPrice: 1250 }],
      store: { name: 'DE' },
      priceMode: 'GROSS_MODE',
      customerReference: 'DE--1',
    },
    preOrderPaymentData: {},
  };
}

const post = (path: string, a: unknown, opts: { type?: string | null; tenant?: string | null } = {}) =>
  app.request(path, {
    ...(opts.tenant === null ? {} : { tenant: opts.tenant ?? TENANT }),
    headers: { 'content-type': 'application/vnd.api+json' },
    body: { data: { ...(opts.type === null ? {} : { type: opts.type ?? path.slice(1) }), attributes: a } },
  });

function expectGlueError(r: { status: number; headers: Headers; body: any }, status: number) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
  expect(r.body.error).toBe(r.body.errors[0].message);
  for (const e of r.body.errors) {
    expect(e.status).toBe(status);
    expect(e.detail).toBe(e.message);
  }
}

beforeAll(async () => {
  app = await startTestApp();
  expect((await app.request('/private/configure', { tenant: TENANT, body: configBody(CONFIG) })).status).toBe(200);
});
afterAll(async () => {
  await app?.close();
});

describe('POST /payments', () => {
  it('201 JSON:API answer with preOrderPaymentData; the quote is mapped onto orderData (5.1 table)', async () => {
    const r = await post('/payments', attrs());
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
    const pod = r.body.data.attributes.preOrderPaymentData;
    expect(r.body).toEqual({
      data: { type: 'payments', id: null, attributes: { isSuccessful: true, error: null, preOrderPaymentData: pod }, links: { self: `${app.url}/payments` } },
    });
    expect(pod).toMatchObject({ transactionId: expect.stringMatching(/^sbx_pay_/), clientSecret: expect.any(String), checkoutUrl: expect.stringContaining('/sandbox/checkout/') });
    const row = (await app.deps.db.query<any>('SELECT * FROM payments WHERE transaction_id = $1', [pod.transactionId])).rows[0];
    expect(row).toMatchObject({ tenant_identifier: TENANT, amount: 2500, currency: 'EUR', payment_method: 'credit-card', order_reference: null, locale_name: 'de_DE' });
    expect(row.order_data).toMatchObject({
      grandTotal: 2500,
      currencyCode: 'eur',
      customerFirstName: 'Sonia',
      customerLastName: 'Wagner',
      customerEmail: 'sonia@example.com',
      countryCode: 'DE',
      zip: '10115',
      city: 'Berlin',
      address1: 'Julie-Wolfthorn-Str.',
      phone: '+49301234567',
      shippingCountryCode: 'AT',
      shippingFirstName: 'Max',
      shippingZip: '1010',
      storeName: 'DE',
      priceMode: 'GROSS_MODE',
      customerReference: 'DE--1',
      items: [{ sku: 'shirt', name: 'Shirt', quantity: 2, unitPrice: 1250 }],
    });
  });

  it('missing data.type is accepted; another type answers 400 INVALID_REQUEST; express methods go through the pre-order path', async () => {
    const a = attrs();
    a.payment.paymentMethodName = 'sandbox-express';
    a.payment.amount = '1999';
    const r = await post('/payments', a, { type: null });
    expect(r.status, r.text).toBe(201);
    const row = (await app.deps.db.query<any>('SELECT * FROM payments WHERE transaction_id = $1', [r.body.data.attributes.preOrderPaymentData.transactionId])).rows[0];
    expect(row).toMatchObject({ payment_method: 'sandbox-express', amount: 1999, order_reference: null });
    const wrong = await post('/payments', attrs(), { type: 'carts' });
    expectGlueError(wrong, 400);
    expect(wrong.body.errors[0].code).toBe('INVALID_REQUEST');
  });

  const cases: Array<[string, (a: Attrs) => void, string[]]> = [
    ['missing payment.amount', (a) => delete a.payment.amount, ['payment.amount => This field is missing.']],
    ['blank payment.amount', (a) => (a.payment.amount = ''), ['payment.amount => This value should not be blank.']],
    ['non-numeric payment.amount', (a) => (a.payment.amount = '10.00'), ['payment.amount => This value should be of type numeric.']],
    ['invalid email', (a) => (a.quote.customer.email = 'sonia-at-example'), ['quote.customer.email => This value is not a valid email address.']],
    ['unknown currency', (a) => (a.quote.currency.code = 'XYZ'), ['quote.currency.code => This value is not a valid currency.']],
    ['invalid iso2Code', (a) => (a.quote.billingAddress.iso2Code = 'XX'), ['quote.billingAddress.iso2Code => This value is not a valid country.']],
    ['blank names', (a) => ((a.quote.customer.firstName = ' '), (a.quote.customer.lastName = null)), ['quote.customer.firstName => This value should not be blank.', 'quote.customer.lastName => This value should not be blank.']],
    ['blank provider and method', (a) => ((a.payment.paymentProviderName = ''), (a.payment.paymentMethodName = '')), ['payment.paymentProviderName => This value should not be blank.', 'payment.paymentMethodName => This value should not be blank.']],
    ['missing quote', (a) => delete a.quote, ['quote => This field is missing.']],
    ['missing currency object', (a) => delete a.quote.currency, ['quote.currency => This field is missing.']],
    [
      'several violations at once',
      (a) => ((a.payment.amount = 'abc'), (a.quote.customer.email = 'x'), (a.quote.currency.code = 'EURO')),
      ['payment.amount => This value should be of type numeric.', 'quote.customer.email => This value is not a valid email address.', 'quote.currency.code => This value is not a valid currency.'],
    ],
  ];
  for (const [name, mutate, details] of cases) {
    it(`validation: ${name} → 422 code "901" with detail`, async () => {
      const a = attrs();
      mutate(a);
      const before = (await app.deps.db.query<any>('SELECT count(*)::int AS n FROM payments')).rows[0].n;
      const r = await post('/payments', a);
      expectGlueError(r, 422);
      expect(r.body.errors.map((e: any) => e.code)).toEqual(details.map(() => '901'));
      expect(r.body.errors.map((e: any) => e.detail)).toEqual(details);
      expect((await app.deps.db.query<any>('SELECT count(*)::int AS n FROM payments')).rows[0].n).toBe(before);
    });
  }

  it('provider or method not ours: 422 "Payment method not found"', async () => {
    for (const mutate of [(a: Attrs) => (a.payment.paymentProviderName = 'Stripe'), (a: Attrs) => (a.payment.paymentMethodName = 'PayPal')]) {
      const a = attrs();
      mutate(a);
      const r = await post('/payments', a);
      expectGlueError(r, 422);
      expect(r.body.errors).toHaveLength(1);
      expect(r.body.errors[0].detail).toBe('Payment method not found');
    }
  });

  it('business failures: 422 whose code names the real cause', async () => {
    const a = attrs();
    a.preOrderPaymentData = { transactionId: 'sbx_pay_unknown' };
    const unknown = await post('/payments', a);
    expectGlueError(unknown, 422);
    expect(unknown.body.errors[0]).toMatchObject({ code: 'PAYMENT_NOT_FOUND', detail: 'Could not find a payment with the transaction id "sbx_pay_unknown"' });

    // A payment linked to an order can no longer be re-initialised: CONFLICT.
    const first = await post('/payments', attrs());
    const transactionId = first.body.data.attributes.preOrderPaymentData.transactionId;
    const link = await app.request('/private/confirm-pre-order-payment', {
      tenant: TENANT,
      body: { orderReference: 'DE--glue-1', orderData: { grandTotal: 2500, currencyCode: 'EUR', items: [{ idSalesOrderItem: 1 }] }, preOrderPaymentData: { transactionId } },
    });
    expect(link.status, link.text).toBe(200);
    const b = attrs();
    b.preOrderPaymentData = { transactionId };
    const linked = await post('/payments', b);
    expectGlueError(linked, 422);
    expect(linked.body.errors[0].code).toBe('CONFLICT');
  });

  it('tenant errors keep their section-2 status (400 / 404) with the JSON:API media type', async () => {
    const none = await post('/payments', attrs(), { tenant: null });
    expectGlueError(none, 400);
    expect(none.body.errors[0].code).toBe('TENANT_IDENTIFIER_MISSING');
    const unknown = await post('/payments', attrs(), { tenant: 'glue-never-configured' });
    expectGlueError(unknown, 404);
    expect(unknown.body.errors[0].code).toBe('TENANT_NOT_FOUND');
  });
});

describe('POST /payment-cancellations and /payment-customers', () => {
  const method = { paymentProviderName: 'Sandbox', paymentMethodName: 'Sandbox Express' };

  it('cancellation validation: missing preOrderPaymentData.transactionId → 422 "901" naming the deepest field', async () => {
    const r = await post('/payment-cancellations', { payment: method, preOrderPaymentData: {} });
    expectGlueError(r, 422);
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0]).toMatchObject({ code: '901', detail: 'preOrderPaymentData.transactionId => This field is missing.' });
    const absent = await post('/payment-cancellations', { payment: method });
    expect(absent.body.errors[0].detail).toBe('preOrderPaymentData => This field is missing.');
    const r2 = await post('/payment-cancellations', { payment: method, preOrderPaymentData: { transactionId: '' } });
    expect(r2.body.errors[0].detail).toBe('preOrderPaymentData.transactionId => This value should not be blank.');
  });

  it('cancellation business failures: unknown → 422 PAYMENT_NOT_FOUND; linked → 422 ILLEGAL_TRANSITION', async () => {
    const unknown = await post('/payment-cancellations', { payment: method, preOrderPaymentData: { transactionId: 'sbx_pay_nope' } });
    expectGlueError(unknown, 422);
    expect(unknown.body.errors[0].code).toBe('PAYMENT_NOT_FOUND');
    const first = await post('/payments', attrs());
    const transactionId = first.body.data.attributes.preOrderPaymentData.transactionId;
    await app.request('/private/confirm-pre-order-payment', {
      tenant: TENANT,
      body: { orderReference: 'DE--glue-2', orderData: { grandTotal: 2500, currencyCode: 'EUR', items: [{ idSalesOrderItem: 1 }] }, transactionId },
    });
    const linked = await post('/payment-cancellations', { payment: method, preOrderPaymentData: { transactionId } });
    expectGlueError(linked, 422);
    expect(linked.body.errors[0]).toMatchObject({ code: 'ILLEGAL_TRANSITION', detail: 'The payment is linked to order "DE--glue-2"; cancel it through the order.' });
  });

  it('customers: validation 901, no payer yet → 422 CONFLICT, wrong provider → Payment method not found', async () => {
    const missing = await post('/payment-customers', { payment: method });
    expectGlueError(missing, 422);
    expect(missing.body.errors[0]).toMatchObject({ code: '901', detail: 'customerPaymentServiceProviderData => This field is missing.' });
    const a = attrs();
    a.payment.paymentMethodName = 'Sandbox Express';
    const p = await post('/payments', a);
    const pod = p.body.data.attributes.preOrderPaymentData;
    const early = await post('/payment-customers', { payment: method, customerPaymentServiceProviderData: pod });
    expectGlueError(early, 422);
    expect(early.body.errors[0]).toMatchObject({ code: 'CONFLICT', detail: 'The payment provider has no customer data for this payment yet.' });
    const wrong = await post('/payment-customers', { payment: { ...method, paymentProviderName: 'Other' }, customerPaymentServiceProviderData: pod });
    expect(wrong.body.errors[0].detail).toBe('Payment method not found');

    const payer = { firstName: 'Ina', lastName: 'Payer', email: 'ina@example.com', billingAddress: { firstName: 'Ina', lastName: 'Payer', address1: 'Weg 2', zipCode: '20095', city: 'Hamburg', iso2Code: 'DE' } };
    const paid = await app.request(`/sandbox/v1/payments/${pod.transactionId}/confirm`, { body: { clientSecret: pod.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: 2040, cvc: '123' }, payer } });
    expect(paid.status).toBe(200);
    const r = await post('/payment-customers', { payment: method, customerPaymentServiceProviderData: pod });
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
    expect(r.body.data).toMatchObject({ type: 'payment-customers', id: null, links: { self: `${app.url}/payment-customers` } });
    expect(r.body.data.attributes.customer).toMatchObject({ firstName: 'Ina', lastName: 'Payer', email: 'ina@example.com', company: null, shippingAddress: null });
    expect(r.body.data.attributes.customer.billingAddress).toMatchObject({ city: 'Hamburg', iso2Code: 'DE', address2: null });
    expect(r.body.data.attributes.customer.billingAddress).not.toHaveProperty('country');
    expect(r.body.data.attributes.customer).not.toHaveProperty('locale');
  });
});

/**
 * Sandbox Express in a real browser (Debian Chromium through playwright-core): a tiny storefront on another origin,
 * with a strict CSP, loads the announced widget script (`/sandbox/express.js`), the shopper completes the express
 * dialog (payer, addresses, test card), then `/payment-customers` returns the payer and confirm-pre-order links the
 * order (flows.md 6). Also: final decline in the widget → confirm answers 422 with PaymentAuthorizationFailed;
 * cancel in the dialog; changed total after the express authorization → 409, nothing linked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';

const available = await browserAvailable();
const T = 'express-browser';
const CONFIG = { secretKey: 'sk_sandbox_test1234', webhookSecret: 'whsec_0123456789abcdef', paymentMethods: ['credit-card', 'sandbox-express'] };
const METHOD = { paymentProviderName: 'Sandbox', paymentMethodName: 'Sandbox Express' };

const SHOP_JS = `(function () {
var el = document.getElementById('express');
var status = document.getElementById('status'); // shadows window.status inside the IIFE
SandboxExpress.render(el, {
  label: 'Buy now with Sandbox Express',
  createPayment: function () {
    return fetch('/api/payments' + location.search, { method: 'POST' }).then(function (r) { return r.json(); }).then(function (b) { return b.data.attributes.preOrderPaymentData; });
  }
});
el.addEventListener('sandbox-express:approve', function (ev) {
  status.textContent = 'approved ' + ev.detail.preOrderPaymentData.transactionId;
  fetch('/api/customer', { method: 'POST', body: JSON.stringify(ev.detail.preOrderPaymentData) })
    .then(function (r) { return r.json(); })
    .then(function (b) { document.getElementById('customer').textContent = JSON.stringify(b.data.attributes.customer); });
});
el.addEventListener('sandbox-express:error', function (ev) { status.textContent = 'error ' + (ev.detail.preOrderPaymentData ? ev.detail.preOrderPaymentData.transactionId : '') + ' ' + ev.detail.message; });
el.addEventListener('sandbox-express:cancel', function (ev) { status.textContent = 'canceled ' + ev.detail.preOrderPaymentData.transactionId; });
})();
`;

describe.skipIf(!available)('Sandbox Express widget in Chromium', () => {
  let app: TestApp;
  let shop: Server;
  let shopUrl = '';
  let context: BrowserContext;

  const glue = (path: string, attributes: Record<string, unknown>) =>
    app.request(path, { tenant: T, headers: { 'content-type': 'application/vnd.api+json' }, body: { data: { type: path.slice(1), attributes } } });

  beforeAll(async () => {
    app = await startTestApp();
    const c = await app.request('/private/configure', { tenant: T, body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify(CONFIG) } } } });
    expect(c.status, c.text).toBe(200);
    const appOrigin = new URL(app.url).origin;
    shop = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://shop');
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        void (async () => {
          if (url.pathname === '/') {
            res.writeHead(200, {
              'content-type': 'text/html; charset=utf-8',
              'content-security-policy': `default-src 'self'; script-src 'self' ${appOrigin}; frame-src ${appOrigin}; connect-src 'self'; style-src 'self'`,
            });
            res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><script src="${app.url}/sandbox/express.js"></script><script src="/shop.js" defer></script></head>
<body><h1>Cart</h1><div id="express" data-sandbox-express data-manual></div><p id="status"></p><pre id="customer"></pre></body></html>`);
          } else if (url.pathname === '/shop.js') {
            res.writeHead(200, { 'content-type': 'text/javascript' }).end(SHOP_JS);
          } else if (url.pathname === '/api/payments') {
            // The shop backend (Glue) → the app's Glue-shaped /payments.
            const amount = Number(url.searchParams.get('amount') ?? '2000');
            const r = await glue('/payments', {
              payment: { ...METHOD, amount },
              quote: { customer: { firstName: 'Guest', lastName: 'Shopper', email: 'guest@example.com' }, billingAddress: { iso2Code: 'DE' }, currency: { code: 'EUR' } },
              preOrderPaymentData: {},
            });
            res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.text);
          } else if (url.pathname === '/api/customer') {
            const pod = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            const r = await glue('/payment-customers', { payment: METHOD, customerPaymentServiceProviderData: pod });
            res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.text);
          } else {
            res.writeHead(404).end();
          }
        })();
      });
    });
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    context = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await new Promise<void>((r) => (shop ? shop.close(() => r()) : r()));
  });

  const paymentRow = async (transactionId: string) => (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [T, transactionId])).rows[0];
  const names = async (paymentId: string) => (await app.deps.db.query<any>('SELECT message_name FROM outbox WHERE ordering_key LIKE $1 ORDER BY seq', [`%payment/${paymentId}`])).rows.map((r) => r.message_name);

  async function openDialog(amount: number): Promise<{ page: Page; cspErrors: string[] }> {
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${shopUrl}/?amount=${amount}`);
    await page.click('button.sandbox-express-button');
    await page.waitForSelector('iframe[name="sandbox-express"]');
    await page.frameLocator('iframe[name="sandbox-express"]').locator('input[name="email"]').waitFor();
    return { page, cspErrors };
  }

  async function fillDialog(page: Page, card: string, opts: { shipping?: boolean } = {}): Promise<void> {
    const f = page.frameLocator('iframe[name="sandbox-express"]');
    const values: Record<string, string> = {
      salutation: 'Ms',
      phone: '+49301234567',
      email: 'sonia@example.com',
      firstName: 'Sonia',
      lastName: 'Wagner',
      address1: 'Julie-Wolfthorn-Str.',
      address2: '1',
      zipCode: '10115',
      city: 'Berlin',
      iso2Code: 'de',
      cardNumber: card,
      expMonth: '12',
      expYear: '2040',
      cvc: '123',
    };
    for (const [k, v] of Object.entries(values)) await f.locator(`input[name="${k}"]`).fill(v);
    if (opts.shipping) {
      await f.locator('#sameAddress').uncheck();
      const ship: Record<string, string> = { ship_firstName: 'Max', ship_lastName: 'Wagner', ship_address1: 'Hauptstr. 5', ship_zipCode: '80331', ship_city: 'München', ship_iso2Code: 'DE' };
      for (const [k, v] of Object.entries(ship)) await f.locator(`input[name="${k}"]`).fill(v);
    }
    await f.locator('button[type="submit"]').click();
  }

  it('completes the express dialog; /payment-customers returns the payer; changed total → 409; confirm → PaymentAuthorized once', async () => {
    const { page, cspErrors } = await openDialog(2000);
    await fillDialog(page, '4242424242424242', { shipping: true });
    await page.locator('#status').filter({ hasText: /^approved sbx_pay_/ }).waitFor();
    const transactionId = (await page.textContent('#status'))!.split(' ')[1]!;
    expect(await page.locator('iframe[name="sandbox-express"]').count()).toBe(0);
    await page.locator('#customer').filter({ hasText: /\S/ }).waitFor();
    const shown = JSON.parse((await page.textContent('#customer'))!);
    expect(shown).toMatchObject({ firstName: 'Sonia', email: 'sonia@example.com' });
    expect(cspErrors).toEqual([]);
    await page.close();

    // The storefront's lookup, directly: the payer as entered in the dialog.
    const r = await glue('/payment-customers', { payment: METHOD, customerPaymentServiceProviderData: { transactionId } });
    expect(r.status, r.text).toBe(201);
    expect(r.body.data.attributes.customer).toEqual({
      salutation: 'Ms',
      firstName: 'Sonia',
      lastName: 'Wagner',
      email: 'sonia@example.com',
      phone: '+49301234567',
      company: null,
      gender: null,
      dateOfBirth: null,
      billingAddress: { salutation: 'Ms', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', address3: null, zipCode: '10115', city: 'Berlin', state: null, region: null, iso2Code: 'DE', company: null, email: 'sonia@example.com', phone: '+49301234567', cellPhone: null },
      shippingAddress: { salutation: null, firstName: 'Max', lastName: 'Wagner', address1: 'Hauptstr. 5', address2: null, address3: null, zipCode: '80331', city: 'München', state: null, region: null, iso2Code: 'DE', company: null, email: 'sonia@example.com', phone: '+49301234567', cellPhone: null },
    });
    const priv = await app.request('/private/customer', { tenant: T, body: { customerPaymentServiceProviderData: { transactionId } } });
    expect(priv.status).toBe(200);
    expect(priv.body).toEqual({ isSuccessful: true, customer: r.body.data.attributes.customer });

    const row = await paymentRow(transactionId);
    expect(row).toMatchObject({ status: 'new', order_reference: null, payment_method: 'sandbox-express' });
    const orderData = (grandTotal: number) => ({ orderReference: 'DE--express-1', grandTotal, currencyCode: 'EUR', items: [{ idSalesOrderItem: 41 }, { idSalesOrderItem: 42 }] });

    // Shipping added after the express authorization: the sandbox cannot change the amount any more.
    const changed = await app.request('/private/confirm-pre-order-payment', { tenant: T, body: { orderReference: 'DE--express-1', orderData: orderData(2490), preOrderPaymentData: { transactionId } } });
    expect(changed.status).toBe(409);
    expect(changed.body.errors[0]).toMatchObject({ code: 'CONFLICT', message: 'The order total does not match the pre-order payment amount.' });
    expect((await paymentRow(transactionId)).order_reference).toBeNull();

    const ok = await app.request('/private/confirm-pre-order-payment', { tenant: T, body: { orderReference: 'DE--express-1', orderData: orderData(2000), preOrderPaymentData: { transactionId } } });
    expect(ok.status, ok.text).toBe(200);
    expect(await paymentRow(transactionId)).toMatchObject({ status: 'authorized', order_reference: 'DE--express-1' });
    const n = await names(row.id);
    expect(n.filter((x: string) => x === 'PaymentAuthorized')).toHaveLength(1);
    expect(n).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentUpdated', 'PaymentAuthorized']);
  });

  it('final decline card in the dialog: the widget reports the error; confirm answers 422 and PaymentAuthorizationFailed is sent', async () => {
    const { page } = await openDialog(1500);
    await fillDialog(page, '4100000000000019');
    await page.locator('#status').filter({ hasText: /^error sbx_pay_/ }).waitFor();
    const transactionId = (await page.textContent('#status'))!.split(' ')[1]!;
    await page.close();
    const r = await app.request('/private/confirm-pre-order-payment', {
      tenant: T,
      body: { orderReference: 'DE--express-2', orderData: { grandTotal: 1500, currencyCode: 'EUR', items: [{ idSalesOrderItem: 51 }] }, preOrderPaymentData: { transactionId } },
    });
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'PAYMENT_DECLINED' }] });
    const row = await paymentRow(transactionId);
    expect(row).toMatchObject({ status: 'authorization_failed', order_reference: 'DE--express-2' });
    expect((await names(row.id)).filter((x: string) => x === 'PaymentAuthorizationFailed')).toHaveLength(1);
  });

  it('retryable decline shows the reason in the dialog; Cancel closes it and the storefront cancels the payment', async () => {
    const { page } = await openDialog(900);
    await fillDialog(page, '4000000000000002');
    const f = page.frameLocator('iframe[name="sandbox-express"]');
    await f.locator('#message').waitFor({ state: 'visible' });
    expect(await f.locator('#message').textContent()).toMatch(/declined/i);
    await f.locator('#cancel').click();
    await page.locator('#status').filter({ hasText: /^canceled sbx_pay_/ }).waitFor();
    const transactionId = (await page.textContent('#status'))!.split(' ')[1]!;
    await page.close();
    const c = await glue('/payment-cancellations', { payment: METHOD, preOrderPaymentData: { transactionId } });
    expect(c.status, c.text).toBe(201);
    expect((await paymentRow(transactionId)).status).toBe('canceled');
  });

  it('serves the widget as JavaScript from the announced URL', async () => {
    const r = await fetch(`${app.url}/sandbox/express.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/javascript');
    expect(await r.text()).toContain('window.SandboxExpress');
    const methods = await app.deps.db.query<any>('SELECT announced_methods FROM tenants WHERE tenant_identifier = $1', [T]);
    expect(JSON.stringify(methods.rows[0].announced_methods)).toContain(`${app.url}/sandbox/express.js`);
  });
});

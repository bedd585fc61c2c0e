/**
 * GET /app-payment (sync-api.md 4.11) and GET /app-payment/redirect (4.12): every row of both situation tables,
 * headers (CSP with frame-ancestors of the shop, no-store, no-referrer), escaping, tenant isolation, and the decision
 * for capture_failed / cancellation_failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatMoney } from '../src/http/payment-page.js';
import { setTenantSecrets, startTestApp, tenantSecrets, type TestApp } from './helpers/app.js';
import { CARD_YEAR, SHOP, browse, configureTenant, initialize, messageNames, parseForm, payOnPage } from './helpers/hosted-flow.js';

let app: TestApp;
const A = 'page-tenant-a';
const B = 'page-tenant-b';

beforeAll(async () => {
  app = await startTestApp();
  await configureTenant(app, A);
  await configureTenant(app, B);
});
afterAll(async () => {
  await app?.close();
});

const get = async (path: string) => {
  const res = await fetch(app.url + path, { redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
};
const q = (o: Record<string, string>) => new URLSearchParams(o).toString();
const setStatus = (paymentId: string, status: string) => app.deps.db.query('UPDATE payments SET status = $2 WHERE id = $1', [paymentId, status]);

const decodeHtml = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function expectHtmlHeaders(h: Headers): void {
  expect(h.get('content-type')).toBe('text/html; charset=utf-8');
  expect(h.get('cache-control')).toBe('no-store');
  expect(h.get('referrer-policy')).toBe('no-referrer');
  expect(h.get('content-security-policy')).toMatch(/default-src 'none'/);
}

describe('GET /app-payment', () => {
  it('missing or empty parameter: 400 page "The payment link is incomplete."', async () => {
    for (const path of ['/app-payment', `/app-payment?${q({ transactionId: 'x' })}`, `/app-payment?${q({ tenantIdentifier: A })}`, `/app-payment?${q({ transactionId: '', tenantIdentifier: A })}`]) {
      const r = await get(path);
      expect(r.status).toBe(400);
      expectHtmlHeaders(r.headers);
      expect(r.text).toContain('The payment link is incomplete.');
      expect(r.text).toContain('Please return to the shop');
      expect(r.text).not.toMatch(/<a\s/);
    }
    const de = await fetch(`${app.url}/app-payment`, { headers: { 'accept-language': 'de-DE,de;q=0.9' } });
    expect(await de.text()).toContain('Der Zahlungslink ist unvollständig.');
  });

  it('unknown transaction: 404 page "Payment not found."', async () => {
    const r = await get(`/app-payment?${q({ transactionId: 'sbx_pay_nope', tenantIdentifier: A })}`);
    expect(r.status).toBe(404);
    expectHtmlHeaders(r.headers);
    expect(r.text).toContain('Payment not found.');
    expect(r.text).not.toMatch(/<a\s/);
  });

  it('status new: the page with amount, currency, items, the PSP form, cancel and back links; strict headers', async () => {
    const p = await initialize(app, A, { amount: 12345, currency: 'EUR' });
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(r.status).toBe(200);
    expectHtmlHeaders(r.headers);
    const csp = r.headers.get('content-security-policy')!;
    const appOrigin = new URL(app.deps.config.appBaseUrl).origin;
    expect(csp).toContain(`frame-ancestors ${SHOP}`);
    expect(csp).toMatch(new RegExp(`form-action 'self'[^;]*${appOrigin.replace(/[.:/]/g, '\\$&')}`));
    expect(csp).toContain("style-src 'unsafe-inline'");
    expect(csp).toContain("img-src 'self' data:");
    // one inline script (the sandbox form's progressive enhancement), allowed by this response's nonce only; the
    // form needs none, so no <noscript> notice
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'(;|$)/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(r.text.match(/<script\b[^>]*>/gi)).toEqual([`<script nonce="${nonce}">`]);
    expect(csp).toContain(`connect-src ${appOrigin}`);
    expect(r.text).not.toContain('<noscript');
    expect(r.text).toContain(formatMoney(12345, 'EUR', 'en_US'));
    expect(r.text).toContain('123.45');
    expect(r.text).toContain('Blue shirt');
    expect(r.text).toContain('Socks');
    expect(r.text).toContain('name="viewport"');
    const form = parseForm(r.text);
    expect(form.action).toBe(`${appOrigin}/sandbox/checkout/${p.transactionId}/confirm`);
    expect(Object.keys(form.hidden)).toContain('clientSecret');
    expect(r.text).toContain(`href="${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}"`);
    expect(r.text).toContain(`href="${SHOP}/en/checkout/summary"`);
    expect(r.text).not.toContain('role="alert"');
  });

  it('no back link without checkoutSummaryPageUrl; amounts use the currency exponent (JPY has none)', async () => {
    const p = await initialize(app, A, { summaryUrl: null, amount: 5000, currency: 'JPY', items: [{ idSalesOrderItem: 9, name: 'Tea', quantity: 1, unitPrice: 5000 }] });
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('class="back"');
    expect(r.text).toContain(formatMoney(5000, 'JPY', 'en_US'));
    expect(formatMoney(5000, 'JPY', 'en_US')).toContain('5,000');
    expect(formatMoney(1999, 'KWD', 'en_US')).toContain('1.999');
  });

  it('every value is HTML-escaped (item names); an unknown error code is never echoed (phishing vector)', async () => {
    const p = await initialize(app, A, { items: [{ idSalesOrderItem: 1, name: '<img src=x onerror=alert(1)>"&', quantity: 1, unitPrice: 12345 }] });
    const u = new URL(p.redirectUrl);
    u.searchParams.set('error', '<b>x</b>');
    const r = await get(u.pathname + u.search);
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('<img src=x');
    expect(r.text).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&amp;');
    expect(r.text).not.toContain('<b>x</b>');
    expect(r.text).not.toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(r.text).toContain('role="alert"');
  });

  it('error parameter: the decline message is shown with the form to retry', async () => {
    const p = await initialize(app, A);
    const u = new URL(p.redirectUrl);
    u.searchParams.set('error', 'insufficient_funds');
    const r = await get(u.pathname + u.search);
    expect(r.status).toBe(200);
    expect(r.text).toContain('role="alert"');
    expect(r.text).toContain('insufficient funds');
    expect(parseForm(r.text).action).toContain('/confirm');
  });

  it('the summary shows the shop, items, shipping, discount and a total consistent with the order; the button names the amount', async () => {
    const p = await initialize(app, A, {
      amount: 10490,
      items: [{ idSalesOrderItem: 1, name: 'Shoe', quantity: 1, unitPrice: 10500 }],
      orderData: { storeName: 'DE', expenses: [{ type: 'SHIPMENT_EXPENSE_TYPE', name: 'Standard shipping', quantity: 1, unitPrice: 490 }], discountTotal: 500 },
    });
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(r.status).toBe(200);
    const rows = [...r.text.matchAll(/<tr class="(\w+)"><th scope="row">(.*?)<\/th><td[^>]*>(.*?)<\/td><\/tr>/g)].map((m) => [m[1], m[2]!.replace(/<[^>]+>/g, ''), m[3]]);
    expect(rows).toEqual([
      ['item', 'Shoe', '€105.00'],
      ['expense', 'Standard shipping', '€4.90'],
      ['discount', 'Discount', '−€5.00'],
      ['total', 'Total', '€104.90'],
    ]);
    expect(r.text).toContain('<p class="shop">DE</p>');
    expect(r.text).toMatch(/<button type="submit" class="pay">Pay €104\.90<\/button>/);
    expect(r.text).not.toContain('class="tax"');
    // net prices: the tax is a line of its own; gross prices already contain it
    const net = await initialize(app, A, { amount: 11900, items: [{ idSalesOrderItem: 1, name: 'Shoe', quantity: 1, unitPrice: 10000 }], orderData: { priceMode: 'NET_MODE', taxTotal: 1900 } });
    const n = await get(new URL(net.redirectUrl).pathname + new URL(net.redirectUrl).search);
    expect(n.text).toContain('<tr class="tax"><th scope="row">Tax</th><td>€19.00</td></tr>');
    const gross = await initialize(app, A, { orderData: { priceMode: 'GROSS_MODE', taxTotal: 1900 } });
    expect((await get(new URL(gross.redirectUrl).pathname + new URL(gross.redirectUrl).search)).text).not.toContain('class="tax"');
  });

  it('German: amounts, labels and the pay button in German ("104,90 € bezahlen")', async () => {
    const p = await initialize(app, A, {
      amount: 10490,
      localeName: 'de_DE',
      items: [{ idSalesOrderItem: 1, name: 'Schuh', quantity: 1, unitPrice: 10500 }],
      orderData: { expenses: [{ type: 'SHIPMENT_EXPENSE_TYPE', quantity: 1, unitPrice: 490 }], discountTotal: 500 },
    });
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(r.text).toContain('104,90\u00a0€ bezahlen');
    expect(r.text).toContain('<th scope="row">Versand</th><td>4,90\u00a0€</td>');
    expect(r.text).toContain('<th scope="row">Rabatt</th><td>−5,00\u00a0€</td>');
    expect(r.text).toContain('Gesamtsumme');
    expect(r.text).toContain('Kartennummer');
  });

  it('the card form: autocomplete tokens, numeric keyboards, month/year/CVC on one row', async () => {
    const p = await initialize(app, A);
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    const input = (name: string) => new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(r.text)?.[0] ?? '';
    expect(input('cardholderName')).toContain('autocomplete="cc-name"');
    for (const [name, token] of [['cardNumber', 'cc-number'], ['expMonth', 'cc-exp-month'], ['expYear', 'cc-exp-year'], ['cvc', 'cc-csc']]) {
      expect(input(name!)).toContain(`autocomplete="${token}"`);
      expect(input(name!)).toContain('inputmode="numeric"');
      expect(input(name!)).not.toContain('aria-invalid');
    }
    const row = /<div class="row">([\s\S]*?)<\/div>\n<\/div>/.exec(r.text)?.[1] ?? '';
    expect(row).toContain('name="expMonth"');
    expect(row).toContain('name="expYear"');
    expect(row).toContain('name="cvc"');
    expect(row).not.toContain('name="cardNumber"');
  });

  it('a decline code ties its message to the field it concerns (aria-invalid, aria-describedby)', async () => {
    const p = await initialize(app, A);
    for (const [code, field, text] of [
      ['card_declined', 'cardNumber', 'Your card was declined.'],
      ['invalid_cvc', 'cvc', 'The security code is not valid.'],
      ['expired_card', 'expMonth', 'Your card has expired.'],
      ['decline_insufficient_funds', 'cardNumber', 'Your card has insufficient funds.'],
    ] as const) {
      const u = new URL(p.redirectUrl);
      u.searchParams.set('error', code);
      const r = await get(u.pathname + u.search);
      expect(r.text).toContain(`<p id="payment-error" class="error" role="alert">${text}`);
      const input = new RegExp(`<input[^>]*name="${field}"[^>]*>`).exec(r.text)![0];
      expect(input).toContain('aria-invalid="true"');
      expect(input).toContain('aria-describedby="payment-error"');
      expect(r.text.match(/<input[^>]*aria-invalid/g)!.length).toBe(field === 'expMonth' ? 2 : 1);
    }
    // a status check that could not be made concerns no field
    const u = new URL(p.redirectUrl);
    u.searchParams.set('error', 'status_unavailable');
    const r = await get(u.pathname + u.search);
    expect(r.text).toContain('We could not confirm the payment status yet.');
    expect(r.text).not.toMatch(/<input[^>]*aria-invalid/);
  });

  it('the form script gets, per sandbox decline code, only the catalog text and field the page would show for ?error=', async () => {
    for (const locale of ['en_US', 'de_DE'] as const) {
      const p = await initialize(app, A, { localeName: locale });
      const page = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
      const form = /<form class="card-form"[^>]*>/.exec(page.text)![0];
      const attr = (name: string) => decodeHtml(new RegExp(`${name}="([^"]*)"`).exec(form)?.[1] ?? '');
      expect(attr('data-confirm-url')).toBe(`${app.deps.config.appBaseUrl}/sandbox/v1/payments/${p.transactionId}/confirm`);
      expect(attr('data-return-url')).toBe(`${app.deps.config.appBaseUrl}/app-payment/redirect?transactionId=${p.transactionId}&tenantIdentifier=${A}`);
      expect(attr('data-message-id')).toBe('payment-error');
      const declines = JSON.parse(attr('data-declines')) as Record<string, { text: string; field: string | null }>;
      for (const code of ['card_declined', 'insufficient_funds', 'invalid_number', 'expired_card', 'invalid_cvc', '*']) {
        const u = new URL(p.redirectUrl);
        u.searchParams.set('error', code === '*' ? 'card_declined' : code);
        const shown = await get(u.pathname + u.search);
        const text = decodeHtml(/<p id="payment-error" class="error" role="alert">([^<]*)<\/p>/.exec(shown.text)![1]!);
        expect(declines[code]!.text, `${locale} ${code}`).toBe(text);
        const marked = /<input[^>]*name="(\w+)"[^>]*aria-invalid="true"/.exec(shown.text)?.[1];
        expect(declines[code]!.field).toBe({ cardNumber: 'number', expMonth: 'expiry', cvc: 'cvc' }[marked!]);
      }
    }
  });

  it("the sandbox's storefront confirm answers a page of another origin (CORS, no credentials), declines included", async () => {
    const p = await initialize(app, A);
    const url = `${app.url}/sandbox/v1/payments/${p.transactionId}/confirm`;
    const pre = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const clientSecret = parseForm((await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search)).text).hidden.clientSecret;
    const confirm = (body: unknown) => fetch(url, { method: 'POST', headers: { origin: 'https://shop.example', 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const declined = await confirm({ clientSecret, card: { number: '4000000000000002', expMonth: '12', expYear: CARD_YEAR, cvc: '123' } });
    expect(declined.status).toBe(402);
    expect(declined.headers.get('access-control-allow-origin')).toBe('*');
    expect(await declined.json()).toMatchObject({ error: { type: 'card_error', code: 'card_declined', declineType: 'retryable' } });
    const wrongSecret = await confirm({ clientSecret: 'nope', card: { number: '4242424242424242', expMonth: '12', expYear: CARD_YEAR, cvc: '123' } });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.headers.get('access-control-allow-origin')).toBe('*');
    // other sandbox API calls stay closed to browsers of other origins
    const other = await fetch(`${app.url}/sandbox/v1/account`, { headers: { origin: 'https://shop.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('only catalog text: unknown codes, catalog keys that are not declines and text all show the generic decline message', async () => {
    const p = await initialize(app, A);
    for (const value of ['Call +49 555 to verify your card', 'disconnect_open_orders', 'generic', 'decline_generic', 'decline_page_title', 'page_title', 'unknown_code', '__proto__', 'constructor']) {
      const u = new URL(p.redirectUrl);
      u.searchParams.set('error', value);
      const r = await get(u.pathname + u.search);
      expect(r.status).toBe(200);
      const alert = /<p id="payment-error" class="error" role="alert">([^<]*)<\/p>/.exec(r.text)?.[1];
      expect([value, alert]).toEqual([value, 'The payment was not completed. Please try again or use another card.']);
      expect(r.text).not.toContain(value);
    }
  });

  it('German locale renders German labels', async () => {
    const p = await initialize(app, A, { localeName: 'de_DE' });
    const r = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(r.text).toContain('Zahlung abbrechen');
    expect(r.text).toContain('lang="de"');
  });

  it('paid statuses redirect to redirectSuccessUrl, canceled / authorization_failed to redirectCancelUrl; decision: capture_failed → success, cancellation_failed → cancel', async () => {
    const p = await initialize(app, A);
    const path = new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search;
    const cases: Array<[string, string]> = [
      ['authorized', `${SHOP}/en/payment/order-success`],
      ['capture_requested', `${SHOP}/en/payment/order-success`],
      ['partially_captured', `${SHOP}/en/payment/order-success`],
      ['captured', `${SHOP}/en/payment/order-success`],
      ['capture_failed', `${SHOP}/en/payment/order-success`],
      ['canceled', `${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}`],
      ['authorization_failed', `${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}`],
      ['cancellation_failed', `${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}`],
    ];
    for (const [status, target] of cases) {
      await setStatus(p.paymentId, status);
      const r = await get(path);
      expect([status, r.status]).toEqual([status, 302]);
      expect(r.headers.get('location')).toBe(target);
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('a payment that cannot be paid any more and has no URL to send the shopper to: a status page with the way back it has', async () => {
    const p = await initialize(app, A);
    const path = new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search;
    await app.deps.db.query("UPDATE payments SET status = 'canceled', redirect_cancel_url = NULL WHERE id = $1", [p.paymentId]);
    const r = await get(path);
    expect(r.status).toBe(200);
    expectHtmlHeaders(r.headers);
    expect(r.text).toContain('This payment can no longer be paid.');
    expect(r.text).toContain(`class="back" href="${SHOP}/en/checkout/summary"`);
    await app.deps.db.query("UPDATE payments SET status = 'authorized', redirect_success_url = NULL WHERE id = $1", [p.paymentId]);
    const paid = await get(path);
    expect(paid.text).toContain('This payment has been completed.');
  });

  it('the sandbox challenge page offers a cancel link back to the shop\'s cancel URL', async () => {
    const p = await initialize(app, A);
    const r = await payOnPage(app, p.redirectUrl, '4000002500003155');
    expect(r.final.status).toBe(200);
    expect(r.final.html).toContain(`<a class="cancel" href="${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}">`);
    // the link is only ever an http(s) URL
    const evil = await get(`${new URL(r.finalUrl).pathname}?cancelUrl=${encodeURIComponent('javascript:alert(1)')}`);
    expect(evil.status).toBe(200);
    expect(evil.text).not.toContain('class="cancel"');
  });

  it("the sandbox's own checkout page keeps the typed number after a decline and ties the message to the field", async () => {
    const p = await initialize(app, A);
    const page = await browse(app, `/sandbox/checkout/${p.transactionId}`);
    const { action, hidden } = parseForm(page.final.html);
    const r = await browse(app, action, { ...hidden, cardNumber: '4000 0000 0000 0002', expMonth: '12', expYear: CARD_YEAR, cvc: '123' });
    expect(r.final.status).toBe(200);
    const input = (name: string) => new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(r.final.html)![0];
    expect(input('cardNumber')).toContain('value="4000 0000 0000 0002"');
    expect(input('cardNumber')).toContain('aria-invalid="true"');
    expect(input('cardNumber')).toContain('aria-describedby="sbx-error"');
    expect(input('expYear')).toContain(`value="${CARD_YEAR}"`);
    expect(input('cvc')).not.toContain('value=');
    expect(r.final.html).toContain('<p id="sbx-error" class="error" role="alert">Your card was declined.</p>');
  });

  it('PSP unavailable: 502 page with a retry link', async () => {
    const p = await initialize(app, B);
    const path = new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search;
    const saved = await tenantSecrets(app, B);
    try {
      // a key the sandbox refuses
      await setTenantSecrets(app, B, { ...saved, secretKey: app.deps.secrets.encrypt('sk_sandbox_revokedrevoked') });
      const r = await get(path);
      expect(r.status).toBe(502);
      expectHtmlHeaders(r.headers);
      expect(r.text).toContain('class="retry"');
      expect(r.text).toContain(`transactionId=${p.transactionId}`);
      expect(r.text).toContain(`class="cancel" href="${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}"`);
      expect(r.text).toContain(`class="back" href="${SHOP}/en/checkout/summary"`);
      // the return handler sends the shopper back to the page with error=status_unavailable
      const back = await get(`/app-payment/redirect?${q({ transactionId: p.transactionId, tenantIdentifier: B })}`);
      expect(back.status).toBe(302);
      const loc = new URL(back.headers.get('location')!);
      expect(loc.pathname).toBe('/app-payment');
      expect(loc.searchParams.get('error')).toBe('status_unavailable');
      expect(loc.searchParams.get('transactionId')).toBe(p.transactionId);
      expect(loc.searchParams.get('tenantIdentifier')).toBe(B);
    } finally {
      await setTenantSecrets(app, B, saved);
    }
  });
});

describe('tenant isolation', () => {
  it("a second tenant can neither open nor pay the first tenant's payment page (404 without the other tenant's data)", async () => {
    const p = await initialize(app, A, { items: [{ idSalesOrderItem: 1, name: 'Secret-Item-Name', quantity: 1, unitPrice: 777 }], amount: 777 });
    const other = await get(`/app-payment?${q({ transactionId: p.transactionId, tenantIdentifier: B })}`);
    expect(other.status).toBe(404);
    expect(other.text).toContain('Payment not found.');
    for (const leak of ['Secret-Item-Name', p.orderReference, '7.77', 'clientSecret', 'order-success']) expect(other.text).not.toContain(leak);
    const ret = await get(`/app-payment/redirect?${q({ transactionId: p.transactionId, tenantIdentifier: B })}`);
    expect(ret.status).toBe(404);
    expect(ret.text).not.toContain('Secret-Item-Name');
    expect(ret.headers.get('location')).toBeNull();
    // and nothing happened to the payment
    expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
    expect((await app.deps.db.query<any>('SELECT status FROM payments WHERE id = $1', [p.paymentId])).rows[0].status).toBe('new');
  });
});

describe('GET /app-payment/redirect', () => {
  it('missing transactionId: 400 text/plain "Transaction ID is missing."', async () => {
    for (const path of ['/app-payment/redirect', `/app-payment/redirect?${q({ tenantIdentifier: A })}`, '/app-payment/redirect?transactionId=']) {
      const r = await get(path);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(r.text).toBe('Transaction ID is missing.');
    }
  });

  it('unknown transaction: 404 "Payment not found."', async () => {
    const r = await get(`/app-payment/redirect?${q({ transactionId: 'sbx_pay_unknown' })}`);
    expect(r.status).toBe(404);
    expect(r.text).toContain('Payment not found.');
  });

  it('not paid yet (shopper came back without paying): back to the page without error, nothing sent', async () => {
    const p = await initialize(app, A);
    const r = await get(`/app-payment/redirect?${q({ transactionId: p.transactionId, tenantIdentifier: A })}`);
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(loc.pathname).toBe('/app-payment');
    expect(loc.searchParams.get('error')).toBeNull();
    expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
  });

  it('without tenantIdentifier the transaction id alone identifies the payment; authorized → success URL and PaymentAuthorized once', async () => {
    const p = await initialize(app, A);
    // pay at the sandbox API directly (no browser), then the return arrives without tenant
    const page = await browse(app, p.redirectUrl);
    const { hidden } = parseForm(page.final.html);
    const pay = await app.request(`/sandbox/v1/payments/${p.transactionId}/confirm`, {
      body: { clientSecret: hidden.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: new Date().getUTCFullYear() + 2, cvc: '123' } },
    });
    expect(pay.status).toBe(200);
    const r1 = await get(`/app-payment/redirect?${q({ transactionId: p.transactionId })}`);
    expect(r1.status).toBe(302);
    expect(r1.headers.get('location')).toBe(`${SHOP}/en/payment/order-success`);
    const r2 = await get(`/app-payment/redirect?${q({ transactionId: p.transactionId, tenantIdentifier: A })}`);
    expect(r2.headers.get('location')).toBe(`${SHOP}/en/payment/order-success`);
    const names = await messageNames(app, p.paymentId);
    expect(names.filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    const hist = (await app.deps.db.query<any>(`SELECT trigger FROM payment_status_history WHERE payment_id = $1 AND status = 'authorized'`, [p.paymentId])).rows;
    expect(hist).toHaveLength(1);
  });

  it('the page itself settles a payment the PSP already authorized (reload before the return)', async () => {
    const p = await initialize(app, A);
    const r = await payOnPage(app, p.redirectUrl, '4242424242424242');
    expect(r.finalUrl).toBe(`${SHOP}/en/payment/order-success`);
    // even if our row were still `new`, the page would ask the PSP and redirect instead of offering the form again
    await setStatus(p.paymentId, 'new');
    const again = await get(new URL(p.redirectUrl).pathname + new URL(p.redirectUrl).search);
    expect(again.status).toBe(302);
    expect(again.headers.get('location')).toBe(`${SHOP}/en/payment/order-success`);
  });
});

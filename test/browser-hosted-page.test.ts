/**
 * The hosted payment page in a real browser (Debian Chromium through playwright-core): pay with 4242 and land on the
 * shop's success URL (also with JavaScript switched off), pay with a declined card and see the decline tied to the card
 * number field with the number still there (with JavaScript, also across origins; without it the page comes back with
 * the message), cancel from the page and from the challenge page, and leave the error pages for the shop. (Every state's axe-core check and screenshots: test/page-a11y.test.ts.)
 * The "shop" is a tiny local HTTP server on another origin that records the URLs it is sent to.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BrowserContext } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';
import { until } from './helpers/commands.js';
import { CARD_YEAR, configureTenant, initialize, messageNames } from './helpers/hosted-flow.js';

const available = await browserAvailable();

describe.skipIf(!available)('hosted payment page in Chromium', () => {
  let app: TestApp;
  let shop: Server;
  let shopUrl = '';
  const visits: string[] = [];
  let context: BrowserContext;
  const T = 'browser-tenant';
  const logLines: string[] = [];

  beforeAll(async () => {
    shop = createServer((req, res) => {
      visits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Shop</title><h1 id="shop">Shop page ${req.url?.split('?')[0]}</h1>`);
    });
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    // every log line at every level, unredacted, to check that no card number is ever logged
    app = await startTestApp({}, { log: pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) }) });
    await configureTenant(app, T);
    context = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await new Promise<void>((r) => (shop ? shop.close(() => r()) : r()));
  });

  const urls = () => ({
    successUrl: `${shopUrl}/en/payment/order-success`,
    cancelUrl: `${shopUrl}/en/payment/order-cancel`,
    summaryUrl: `${shopUrl}/en/checkout/summary`,
  });

  async function fillCard(page: import('playwright-core').Page, number: string): Promise<void> {
    await page.fill('input[name="cardNumber"]', number);
    await page.fill('input[name="expMonth"]', '12');
    await page.fill('input[name="expYear"]', CARD_YEAR);
    await page.fill('input[name="cvc"]', '123');
  }

  it('pays with 4242424242424242 and lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      const res = await page.goto(p.redirectUrl);
      expect(res?.status()).toBe(200);
      expect(await page.textContent('body')).toContain('123.45');
      expect(await page.textContent('button.pay')).toBe('Pay €123.45');
      await page.setViewportSize({ width: 390, height: 844 });
      await fillCard(page, '4242424242424242');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button[type="submit"]')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      expect(visits).toContain('/en/payment/order-success');
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  /** Records what the page sends: every request's URL, and the ones whose body holds `needle` (a card number). */
  function watch(page: import('playwright-core').Page, needle: RegExp) {
    const urls: string[] = [];
    const bodies: string[] = [];
    let navigations = 0;
    page.on('request', (r) => {
      urls.push(r.url());
      if (needle.test(r.postData() ?? '')) bodies.push(`${r.method()} ${r.url()}`);
    });
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    return { urls, bodies, navigations: () => navigations };
  }

  /**
   * With JavaScript: a declined card stays on the page with everything typed (the number too), the catalog message
   * is the number field's description and the field is marked invalid; a corrected number then pays. `origin`: where
   * the page is opened (the app's own origin, or another one, so the card goes to the sandbox cross-origin).
   */
  async function declineThenPay(pageOrigin: (redirectUrl: string) => string): Promise<void> {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      const sent = watch(page, /4000\D*0000\D*0000\D*0002|4242\D*4242/);
      await page.goto(pageOrigin(p.redirectUrl));
      const before = sent.navigations();
      await fillCard(page, '4000 0000 0000 0002');
      await page.click('button.pay');
      await page.waitForSelector('#payment-error');
      expect(await page.textContent('#payment-error')).toBe('Your card was declined. Please try again or use another card.');
      expect(await page.getAttribute('#payment-error', 'role')).toBe('alert');
      // the number is kept as typed, and the message is tied to it
      const number = page.locator('input[name="cardNumber"]');
      expect(await number.inputValue()).toBe('4000 0000 0000 0002');
      expect(await number.getAttribute('aria-invalid')).toBe('true');
      expect(await number.getAttribute('aria-describedby')).toBe('payment-error');
      expect(await page.evaluate<string | undefined>('document.activeElement && document.activeElement.getAttribute("name")')).toBe('cardNumber');
      expect(await page.inputValue('input[name="expMonth"]')).toBe('12');
      expect(await page.inputValue('input[name="cvc"]')).toBe('123');
      expect(await page.getAttribute('input[name="cvc"]', 'aria-invalid')).toBeNull();
      expect(await page.isEnabled('button.pay')).toBe(true);
      // the page was not left: no navigation since it was opened
      expect(sent.navigations()).toBe(before);
      expect(page.url()).toBe(pageOrigin(p.redirectUrl));
      // the app learns of the attempt from the sandbox's webhook and records it in the payment's history (flows.md 4.13)
      const declines = await until(
        async () => (await app.deps.db.query<{ details: any }>("SELECT details FROM payment_status_history WHERE payment_id = $1 AND details ? 'retryableDecline'", [p.paymentId])).rows,
        (rows) => rows.length > 0,
      );
      expect(declines.map((r) => r.details.retryableDecline.code)).toEqual(['card_declined']);

      await page.fill('input[name="cardNumber"]', '4242 4242 4242 4242');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button.pay')]);
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
      // the card went to the sandbox's confirm API only, in the body, never in a URL
      const confirm = `${app.deps.config.appBaseUrl}/sandbox/v1/payments/${p.transactionId}/confirm`;
      expect(sent.bodies).toEqual([`POST ${confirm}`, `POST ${confirm}`]);
      expect(sent.urls.filter((u) => /4000\D*0000\D*0000\D*0002|4242\D*4242/.test(decodeURIComponent(u)))).toEqual([]);
      expect(logLines.length).toBeGreaterThan(0);
      expect(logLines.filter((l) => /4000\D{0,3}0000\D{0,3}0000\D{0,3}0002|4242\D{0,3}4242\D{0,3}4242/.test(l))).toEqual([]);
    } finally {
      await page.close();
    }
  }

  it('declined card 4000000000000002: the number stays, the message is tied to it; a corrected number pays', async () => {
    await declineThenPay((u) => u);
  }, 60_000);

  it('the same when the page and the sandbox are on different origins (CORS on the storefront confirm)', async () => {
    await declineThenPay((u) => u.replace('//127.0.0.1:', '//localhost:'));
  }, 60_000);

  it('a card that fails for good (4100000000000019) leaves the page for the shop cancel URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      await page.goto(p.redirectUrl);
      await fillCard(page, '4100000000000019');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-cancel**`), page.click('button.pay')]);
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorizationFailed')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('without JavaScript a decline returns to the page with the message tied to the number (typed again), then pays', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Emulation.setScriptExecutionDisabled', { value: true });
      await page.goto(p.redirectUrl);
      await fillCard(page, '4000000000000002');
      await Promise.all([page.waitForURL(/\/app-payment\?.*error=card_declined/), page.click('button[type="submit"]')]);
      expect(await page.textContent('#payment-error')).toContain('declined');
      expect(await page.getAttribute('#payment-error', 'role')).toBe('alert');
      const number = page.locator('input[name="cardNumber"]');
      expect(await number.getAttribute('aria-invalid')).toBe('true');
      expect(await number.getAttribute('aria-describedby')).toBe('payment-error');
      // the declined card's expiry is filled in again; the number never comes back from the PSP
      expect(await page.inputValue('input[name="expMonth"]')).toBe('12');
      expect(await page.inputValue('input[name="expYear"]')).toBe(CARD_YEAR);
      expect(await number.inputValue()).toBe('');
      await page.fill('input[name="cardNumber"]', '4242424242424242');
      await page.fill('input[name="cvc"]', '123');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button.pay')]);
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('works with JavaScript switched off (the sandbox form needs none): pays and lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Emulation.setScriptExecutionDisabled', { value: true });
      const res = await page.goto(p.redirectUrl);
      expect(await page.locator('noscript').count()).toBe(0); // the form needs no script: no notice
      await fillCard(page, '4242424242424242');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button.pay')]);
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('the challenge page\'s cancel link lands on the shop cancel URL without paying', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      await page.goto(p.redirectUrl);
      await fillCard(page, '4000002500003155');
      await Promise.all([page.waitForURL(/\/sandbox\/checkout\/[^/]+\/challenge/), page.click('button.pay')]);
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-cancel**`), page.click('a.cancel')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-cancel');
      expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('error pages: an unknown payment explains what to do; a known one offers the ways back to the shop', async () => {
    const page = await context.newPage();
    try {
      const res = await page.goto(`${app.url}/app-payment?transactionId=sbx_pay_unknown&tenantIdentifier=${T}`);
      expect(res?.status()).toBe(404);
      expect(await page.textContent('main')).toContain('Please return to the shop');
      expect(await page.locator('a').count()).toBe(0);
      // a payment that can no longer be paid and has no cancel URL: back to the order summary
      const p = await initialize(app, T, urls());
      await app.deps.db.query("UPDATE payments SET status = 'canceled', redirect_cancel_url = NULL WHERE id = $1", [p.paymentId]);
      await page.goto(p.redirectUrl);
      await Promise.all([page.waitForURL(`${shopUrl}/en/checkout/summary**`), page.click('a.back')]);
      expect(await page.textContent('#shop')).toContain('/en/checkout/summary');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('the cancel link lands on the shop cancel URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      await page.goto(p.redirectUrl);
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-cancel**`), page.click('a.cancel')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-cancel');
      expect(visits).toContain('/en/payment/order-cancel');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('completes the challenge card 4000002500003155 and lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      await page.goto(p.redirectUrl);
      await fillCard(page, '4000002500003155');
      await Promise.all([page.waitForURL(/\/sandbox\/checkout\/[^/]+\/challenge/), page.click('button[type="submit"]')]);
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button[value="complete"]')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);
});

/**
 * The Stripe payment page in a real browser (Debian Chromium through playwright-core), offline: the app runs with
 * CONNECTOR=stripe against the project's Stripe fake, and the page loads the fake's stripe.js double from
 * STRIPE_JS_URL under the page's nonce CSP. The shopper types a test card into the Payment Element and pays: success,
 * a decline then success on the same page, and a 3DS challenge — each lands on the shop's success URL. The "shop" is a
 * local HTTP server on another origin that records the URLs it is sent to.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStripeFake, type StripeFake } from './fakes/stripe/index.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';
import { count, initialize, messageNames } from './helpers/hosted-flow.js';

const available = await browserAvailable();

describe.skipIf(!available)('Stripe payment page in Chromium', () => {
  let fake: StripeFake;
  let app: TestApp;
  let shop: Server;
  let shopUrl = '';
  const visits: string[] = [];
  const cspViolations: string[] = [];
  let context: BrowserContext;
  const T = 'stripe-browser';

  beforeAll(async () => {
    shop = createServer((req, res) => {
      visits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Shop</title><h1 id="shop">Shop page ${req.url?.split('?')[0]}</h1>`);
    });
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    fake = await startStripeFake();
    app = await startTestApp({ CONNECTOR: 'stripe', STRIPE_API_BASE: fake.url, STRIPE_JS_URL: `${fake.url}/v3/` });
    const r = await app.request('/private/configure', {
      tenant: T,
      body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: fake.account.restrictedKey, publishableKey: fake.account.publishableKey }) } } },
    });
    expect(r.status, r.text).toBe(200);
    context = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await fake?.close();
    await new Promise<void>((r) => (shop ? shop.close(() => r()) : r()));
  });

  const urls = () => ({ paymentMethod: 'Stripe', successUrl: `${shopUrl}/en/payment/order-success`, cancelUrl: `${shopUrl}/en/payment/order-cancel`, summaryUrl: `${shopUrl}/en/checkout/summary` });

  async function openPage(redirectUrl: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    const res = await page.goto(redirectUrl);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('[data-testid="card-number"]');
    return page;
  }

  async function payWith(page: Page, card: string): Promise<void> {
    await page.fill('[data-testid="card-number"]', card);
    await page.click('#oacp-stripe-pay');
  }

  /** Waits until the app received the fake's webhooks for the payment and processed them. */
  async function settled(transactionId: string): Promise<void> {
    const end = Date.now() + 15_000;
    for (;;) {
      await fake.webhooks.flush();
      const open = await app.deps.db.query(`SELECT 1 FROM webhook_inbox WHERE psp_object_id = $1 AND state IN ('received', 'retrying')`, [transactionId]);
      const queued = fake.webhooks.pending().filter((e) => JSON.stringify(e).includes(transactionId));
      if ((open.rows.length === 0 && queued.length === 0) || Date.now() > end) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('pays with 4242 4242 4242 4242 and lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    expect(p.transactionId).toMatch(/^pi_/);
    const page = await openPage(p.redirectUrl);
    try {
      expect(await page.textContent('body')).toContain('123.45');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), payWith(page, '4242 4242 4242 4242')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      expect(visits).toContain('/en/payment/order-success');
      await settled(p.transactionId);
      expect(count(await messageNames(app, p.paymentId), 'PaymentAuthorized')).toBe(1);
      expect(fake.get(p.transactionId)?.status).toBe('requires_capture');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('a declined card shows the decline on the page; the next card pays and lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await openPage(p.redirectUrl);
    try {
      await Promise.all([page.waitForURL(/\/app-payment\?.*error=/), payWith(page, '4000000000000002')]);
      await page.waitForSelector('[data-testid="card-number"]');
      expect((await page.textContent('[role="alert"]'))?.trim()).toMatch(/declined/i);
      await settled(p.transactionId);
      expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), payWith(page, '4242424242424242')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      await settled(p.transactionId);
      expect(count(await messageNames(app, p.paymentId), 'PaymentAuthorized')).toBe(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('a 3DS card opens the challenge; "Complete" lands on the shop success URL', async () => {
    const p = await initialize(app, T, urls());
    const page = await openPage(p.redirectUrl);
    try {
      await Promise.all([page.waitForURL(/\/challenge\//), payWith(page, '4000000000003220')]);
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('[data-testid="challenge-complete"]')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      await settled(p.transactionId);
      expect(count(await messageNames(app, p.paymentId), 'PaymentAuthorized')).toBe(1);
      expect(cspViolations).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});

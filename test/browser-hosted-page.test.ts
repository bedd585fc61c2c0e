/**
 * The hosted payment page in a real browser (Debian Chromium through playwright-core, no JavaScript needed):
 * pay with 4242 and land on the shop's success URL, pay with a declined card and see the decline, and cancel.
 * The "shop" is a tiny local HTTP server on another origin that records the URLs it is sent to.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';
import { CARD_YEAR, configureTenant, initialize, messageNames } from './helpers/hosted-flow.js';

const available = await browserAvailable();

describe.skipIf(!available)('hosted payment page in Chromium', () => {
  let app: TestApp;
  let shop: Server;
  let shopUrl = '';
  const visits: string[] = [];
  let context: BrowserContext;
  const T = 'browser-tenant';

  beforeAll(async () => {
    shop = createServer((req, res) => {
      visits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Shop</title><h1 id="shop">Shop page ${req.url?.split('?')[0]}</h1>`);
    });
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    app = await startTestApp();
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
      await page.setViewportSize({ width: 375, height: 740 });
      await fillCard(page, '4242424242424242');
      await Promise.all([page.waitForURL(`${shopUrl}/en/payment/order-success**`), page.click('button[type="submit"]')]);
      expect(await page.textContent('#shop')).toContain('/en/payment/order-success');
      expect(visits).toContain('/en/payment/order-success');
      expect((await messageNames(app, p.paymentId)).filter((n) => n === 'PaymentAuthorized')).toHaveLength(1);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('pays with 4000000000000002 and sees the decline on the page, with the form to retry', async () => {
    const p = await initialize(app, T, urls());
    const page = await context.newPage();
    try {
      await page.goto(p.redirectUrl);
      await fillCard(page, '4000000000000002');
      await Promise.all([page.waitForURL(/\/app-payment\?.*error=card_declined/), page.click('button[type="submit"]')]);
      const alert = await page.textContent('[role="alert"]');
      expect(alert).toContain('declined');
      expect(await page.locator('input[name="cardNumber"]').count()).toBe(1);
      expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
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

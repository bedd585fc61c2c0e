/**
 * Every state of the hosted payment page (sync-api.md 4.11) and of the sandbox challenge page in Chromium, at a 390 px
 * phone and a desktop width: an axe-core check (axe-core injected into the page) with no serious or critical violation,
 * and a screenshot written to docs/screenshots/<state>-<390|desktop>.png (shown by docs/payment-page.md).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTenantSecrets, startTestApp, tenantSecrets, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';
import { CARD_YEAR, configureTenant, initialize, type InitOptions } from './helpers/hosted-flow.js';

const available = await browserAvailable();
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots');
const VIEWPORTS = [
  { name: '390', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
] as const;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/** Injects axe-core (through the DevTools protocol, so the page's CSP does not block it) and runs it on the page. */
async function seriousViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate<boolean>('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate<AxeViolation[]>('axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations)');
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => JSON.stringify(n.target)).join(' ')}`);
}

describe.skipIf(!available)('payment page states: axe-core and screenshots', () => {
  let app: TestApp;
  let shop: Server;
  let shopUrl = '';
  let context: BrowserContext;
  const A = 'a11y-tenant';
  const DOWN = 'a11y-tenant-down';

  beforeAll(async () => {
    shop = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><html lang="en"><title>Shop</title><main><h1 id="shop">Shop</h1></main></html>'));
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    app = await startTestApp();
    await configureTenant(app, A);
    await configureTenant(app, DOWN);
    context = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await new Promise<void>((r) => (shop ? shop.close(() => r()) : r()));
  });

  /** The order of the docs' example: items 105,00, shipping 4,90, discount 5,00 → 104,90. */
  const order = (ref: string, extra: InitOptions = {}): InitOptions => ({
    orderReference: ref,
    amount: 10490,
    items: [
      { idSalesOrderItem: 1, name: 'Trail running shoe', sku: 'SHOE-1', quantity: 1, unitPrice: 8500 },
      { idSalesOrderItem: 2, name: 'Merino socks', sku: 'SOCK-2', quantity: 2, unitPrice: 1000 },
    ],
    orderData: { storeName: 'DE', expenses: [{ type: 'SHIPMENT_EXPENSE_TYPE', name: 'Standard shipping', quantity: 1, unitPrice: 490 }], discountTotal: 500 },
    successUrl: `${shopUrl}/en/payment/order-success`,
    cancelUrl: `${shopUrl}/en/payment/order-cancel`,
    summaryUrl: `${shopUrl}/en/checkout/summary`,
    ...extra,
  });

  async function fillCard(page: Page, number: string): Promise<void> {
    await page.fill('input[name="cardNumber"]', number);
    await page.fill('input[name="expMonth"]', '12');
    await page.fill('input[name="expYear"]', CARD_YEAR);
    await page.fill('input[name="cvc"]', '123');
  }

  /**
   * Opens the state at both widths (`open` navigates the page there), checks it (`check`), runs axe-core and writes
   * the screenshots. `javaScript: false`: the page's own scripts do not run.
   */
  async function state(name: string, open: (page: Page) => Promise<void>, check: (page: Page) => Promise<void>, opts: { javaScript?: boolean } = {}): Promise<void> {
    const page = await context.newPage();
    try {
      const cdp = opts.javaScript === false ? await context.newCDPSession(page) : null;
      const scripts = async (on: boolean) => void (await cdp?.send('Emulation.setScriptExecutionDisabled', { value: !on }));
      for (const vp of VIEWPORTS) {
        await page.setViewportSize({ width: vp.width, height: vp.height });
        await scripts(false);
        await open(page);
        await check(page);
        await scripts(true); // for axe-core; the page's own script, never run at load, stays unrun
        expect(await seriousViolations(page), `${name} at ${vp.name}`).toEqual([]);
        // the page fits the phone: nothing wider than the viewport
        expect(await page.evaluate<number>('document.documentElement.scrollWidth'), `${name} at ${vp.name}: horizontal scroll`).toBeLessThanOrEqual(vp.width);
        await page.screenshot({ path: join(SHOTS, `${name}-${vp.name}.png`), fullPage: true });
      }
    } finally {
      await page.close();
    }
  }

  it('the check can fail: a page with an unlabeled field and unreadable text has serious violations', async () => {
    const page = await context.newPage();
    try {
      await page.setContent('<!doctype html><html><title>x</title><body><p style="color:#ccc;background:#fff">faint</p><input name="n"></body></html>');
      const found = await seriousViolations(page);
      expect(found.some((v) => v.startsWith('color-contrast'))).toBe(true);
      expect(found.some((v) => v.startsWith('label'))).toBe(true);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('the payment page (en_US): shop, items, shipping, discount, total, pay button with the amount', async () => {
    const p = await initialize(app, A, order('DE--1001'));
    await state(
      'page-en',
      async (page) => void (await page.goto(p.redirectUrl)),
      async (page) => {
        expect(await page.textContent('.shop')).toBe('DE');
        expect(await page.textContent('tfoot')).toContain('€104.90');
        expect(await page.textContent('button.pay')).toBe('Pay €104.90');
      },
    );
  }, 90_000);

  it('the payment page (de_DE)', async () => {
    const p = await initialize(app, A, order('DE--1002', { localeName: 'de_DE' }));
    await state(
      'page-de',
      async (page) => void (await page.goto(p.redirectUrl)),
      async (page) => {
        expect(await page.getAttribute('html', 'lang')).toBe('de');
        expect(await page.textContent('button.pay')).toBe('104,90\u00a0€ bezahlen');
      },
    );
  }, 90_000);

  it('after a decline: the number kept, the message tied to the card number field', async () => {
    // each width declines once on the same payment (a retryable decline leaves it open)
    const p = await initialize(app, A, order('DE--1003'));
    await state(
      'declined',
      async (page) => {
        await page.goto(p.redirectUrl);
        await fillCard(page, '4000 0000 0000 0002');
        await page.click('button.pay');
        await page.waitForSelector('#payment-error');
      },
      async (page) => {
        expect(await page.textContent('#payment-error')).toBe('Your card was declined. Please try again or use another card.');
        expect(await page.inputValue('input[name="cardNumber"]')).toBe('4000 0000 0000 0002');
        expect(await page.getAttribute('input[name="cardNumber"]', 'aria-invalid')).toBe('true');
        expect(await page.getAttribute('input[name="cardNumber"]', 'aria-describedby')).toBe('payment-error');
        expect(page.url()).toBe(p.redirectUrl);
      },
    );
  }, 90_000);

  it('after a decline without JavaScript: the page comes back with the message tied to the card number field', async () => {
    const p = await initialize(app, A, order('DE--1008'));
    await state(
      'declined-no-js',
      async (page) => {
        await page.goto(p.redirectUrl);
        await fillCard(page, '4000000000000002');
        await Promise.all([page.waitForURL(/\/app-payment\?.*error=card_declined/), page.click('button.pay')]);
      },
      async (page) => {
        expect(await page.textContent('#payment-error')).toContain('Your card was declined.');
        expect(await page.getAttribute('input[name="cardNumber"]', 'aria-invalid')).toBe('true');
        expect(await page.getAttribute('input[name="cardNumber"]', 'aria-describedby')).toBe('payment-error');
      },
      { javaScript: false },
    );
  }, 90_000);

  it('an unknown error code: the generic decline text, never the URL text', async () => {
    const p = await initialize(app, A, order('DE--1004'));
    const u = new URL(p.redirectUrl);
    u.searchParams.set('error', 'Your account is locked, call +1 555 0100');
    await state(
      'unknown-error',
      async (page) => void (await page.goto(u.toString())),
      async (page) => {
        expect(await page.textContent('[role="alert"]')).toBe('The payment was not completed. Please try again or use another card.');
        expect(await page.textContent('body')).not.toContain('call +1 555');
      },
    );
  }, 90_000);

  it('the sandbox challenge page with its cancel link', async () => {
    const p = await initialize(app, A, order('DE--1005'));
    await state(
      'challenge',
      async (page) => {
        await page.goto(p.redirectUrl);
        await fillCard(page, '4000002500003155');
        await Promise.all([page.waitForURL(/\/sandbox\/checkout\/[^/]+\/challenge/), page.click('button.pay')]);
      },
      async (page) => expect(await page.getAttribute('a.cancel', 'href')).toBe(`${shopUrl}/en/payment/order-cancel`),
    );
  }, 90_000);

  it('the incomplete link page (400)', async () => {
    await state(
      'incomplete-link',
      async (page) => expect((await page.goto(`${app.url}/app-payment?transactionId=x`))?.status()).toBe(400),
      async (page) => expect(await page.textContent('h1')).toBe('The payment link is incomplete.'),
    );
  }, 90_000);

  it('the payment not found page (404)', async () => {
    await state(
      'not-found',
      async (page) => expect((await page.goto(`${app.url}/app-payment?transactionId=sbx_pay_unknown&tenantIdentifier=${A}`))?.status()).toBe(404),
      async (page) => expect(await page.textContent('h1')).toBe('Payment not found.'),
    );
  }, 90_000);

  it('the provider unavailable page (502) with retry and the ways back to the shop', async () => {
    const p = await initialize(app, DOWN, order('DE--1006'));
    await setTenantSecrets(app, DOWN, { ...(await tenantSecrets(app, DOWN)), secretKey: app.deps.secrets.encrypt('sk_sandbox_revokedrevoked') });
    await state(
      'provider-unavailable',
      async (page) => expect((await page.goto(p.redirectUrl))?.status()).toBe(502),
      async (page) => {
        expect(await page.locator('a.retry').count()).toBe(1);
        expect(await page.getAttribute('a.cancel', 'href')).toBe(`${shopUrl}/en/payment/order-cancel`);
        expect(await page.getAttribute('a.back', 'href')).toBe(`${shopUrl}/en/checkout/summary`);
      },
    );
  }, 90_000);

  it('a payment that can no longer be paid (expired or cancelled without a cancel URL)', async () => {
    const p = await initialize(app, A, order('DE--1007', { localeName: 'de_DE' }));
    await app.deps.db.query("UPDATE payments SET status = 'canceled', redirect_cancel_url = NULL WHERE id = $1", [p.paymentId]);
    await state(
      'closed-de',
      async (page) => void (await page.goto(p.redirectUrl)),
      async (page) => {
        expect(await page.textContent('h1')).toBe('Diese Zahlung kann nicht mehr bezahlt werden.');
        expect(await page.getAttribute('a.back', 'href')).toBe(`${shopUrl}/en/checkout/summary`);
      },
    );
  }, 90_000);
});

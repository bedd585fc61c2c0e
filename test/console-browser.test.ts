/**
 * The operator console in Chromium (issue 11): sign in with a local account and through an OpenID provider the test
 * runs itself, find a payment by order reference, read its timeline, re-queue a dead outbox message and replay a dead
 * webhook (effects checked on the rows and the payment's timeline), a viewer's action and a request without the CSRF
 * token refused. Takes the screenshots of docs/console.md (docs/screenshots/console-*.png).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from './helpers/app.js';
import { until } from './helpers/commands.js';
import { OPERATOR, VIEWER, paidPayment, startConsoleApp } from './helpers/console.js';
import type { Initialized } from './helpers/hosted-flow.js';
import { startOidcProvider, type TestOidcProvider } from './helpers/oidc-provider.js';
import { browserAvailable, launchChromium } from './helpers/services.js';

const available = await browserAvailable();
const T = 'acme-store';
const SHOTS = join(process.cwd(), 'docs', 'screenshots');

describe.skipIf(!available)('operator console in Chromium', () => {
  let app: TestApp;
  let idp: TestOidcProvider;
  let context: BrowserContext;
  let page: Page;
  let pay: Initialized;
  let deadMessage = '';
  let deadWebhook = '';

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
  const row = async (sql: string, id: string) => (await app.deps.db.query<{ state: string }>(sql, [id])).rows[0]!;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    idp = await startOidcProvider();
    app = await startConsoleApp({ CONSOLE_OIDC_ISSUER: idp.issuer, CONSOLE_OIDC_CLIENT_ID: idp.clientId });
    pay = await paidPayment(app, T);
    await paidPayment(app, 'globex-shop');
    await until(
      async () => (await app.deps.db.query<{ state: string }>(`SELECT state FROM webhook_inbox WHERE tenant_identifier = $1`, [T])).rows,
      (r) => r.some((w) => w.state === 'processed'),
    );
    deadMessage = (await app.deps.db.query<{ id: string }>('SELECT id FROM outbox WHERE ordering_key = $1 ORDER BY seq DESC LIMIT 1', [`${T}/payment/${pay.paymentId}`])).rows[0]!.id;
    await app.deps.db.query(`UPDATE outbox SET state = 'dead', attempts = 41, last_error = 'Event Platform answered 503 for 72 hours' WHERE id = $1`, [deadMessage]);
    deadWebhook = (await app.deps.db.query<{ id: string }>(`SELECT id FROM webhook_inbox WHERE tenant_identifier = $1 AND state = 'processed' LIMIT 1`, [T])).rows[0]!.id;
    await app.deps.db.query(`UPDATE webhook_inbox SET state = 'dead', attempts = 30, reason = 'dead after 24 hours: processing failed: database timeout' WHERE id = $1`, [deadWebhook]);
    context = await launchChromium();
    page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 90_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await idp?.close();
  });

  it('operator signs in with a local account, finds the payment by order reference and reads its timeline', async () => {
    await page.goto(`${app.url}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await shot('login');
    await page.fill('input[name=user]', OPERATOR.user);
    await page.fill('input[name=password]', OPERATOR.password);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(`${app.url}/console`);
    await expect(page.locator('.who').textContent()).resolves.toContain('alice (operator)');
    await shot('overview');
    await page.click('nav >> text=Payments');
    await page.fill('input[name=q]', pay.orderReference);
    await page.click('button:has-text("Search")');
    await page.click(`a:has-text("${pay.orderReference}")`);
    await expect(page.locator('h1').textContent()).resolves.toContain(pay.orderReference);
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toContain('new');
    expect(timeline).toContain('authorized');
  }, 60_000);

  it('re-queues the dead outbox message: delivered with the same id, on the timeline', async () => {
    await page.goto(`${app.url}/console/outbox?state=dead`);
    await expect(page.locator(`#outbox-${deadMessage}`).textContent()).resolves.toContain('Event Platform answered 503');
    await page.fill(`#outbox-${deadMessage} form[action$="/requeue"] input[name=reason]`, 'Event Platform is reachable again (INC-4711)');
    await shot('outbox');
    await page.click(`#outbox-${deadMessage} form[action$="/requeue"] button`);
    await expect(page.locator('main').textContent()).resolves.toContain('is now pending');
    const r = await until(() => row('SELECT state FROM outbox WHERE id = $1', deadMessage), (x) => x.state === 'delivered');
    expect(r.state).toBe('delivered');
  }, 60_000);

  it('replays the dead webhook: processed again', async () => {
    await page.goto(`${app.url}/console/webhooks`);
    await page.fill(`#webhook-${deadWebhook} input[name=reason]`, 'database is back; replaying');
    await shot('webhooks');
    await page.click(`#webhook-${deadWebhook} button:has-text("Replay")`);
    await expect(page.locator('main').textContent()).resolves.toContain('is now processed');
    expect((await row('SELECT state FROM webhook_inbox WHERE id = $1', deadWebhook)).state).toBe('processed');
    await page.click('text=The payment');
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toContain('Event Platform is reachable again (INC-4711)');
    expect(timeline).toContain('database is back; replaying');
    await shot('payment');
    await page.goto(`${app.url}/console/tenants`);
    await shot('tenants');
    await page.goto(`${app.url}/console/tenants/${T}`);
    expect(await page.content()).not.toContain('sk_sandbox_test1234');
    await shot('tenant');
  }, 60_000);

  it('a request without the CSRF token is refused', async () => {
    const r = await page.request.post(`${app.url}/console/outbox/${deadMessage}/requeue`, { form: { reason: 'no token' } });
    expect(r.status()).toBe(403);
  });

  it("a viewer sees no actions and a viewer's action is refused", async () => {
    await page.goto(`${app.url}/console`);
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${app.url}/console/login`);
    await page.fill('input[name=user]', VIEWER.user);
    await page.fill('input[name=password]', VIEWER.password);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(`${app.url}/console`);
    await app.deps.db.query(`UPDATE webhook_inbox SET state = 'dead' WHERE id = $1`, [deadWebhook]);
    await page.goto(`${app.url}/console/webhooks`);
    expect(await page.locator(`#webhook-${deadWebhook} form`).count()).toBe(0);
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const r = await page.request.post(`${app.url}/console/webhooks/${deadWebhook}/replay`, { form: { reason: 'viewer tries', csrf: csrf! } });
    expect(r.status()).toBe(403);
    expect((await row('SELECT state FROM webhook_inbox WHERE id = $1', deadWebhook)).state).toBe('dead');
  }, 60_000);

  it('signs in through the OpenID provider', async () => {
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${app.url}/console/login`);
    idp.nextUser = { sub: 'sso-1', email: 'ops@acme.example', roles: ['operator'] };
    await page.click('text=Sign in with single sign-on');
    await page.waitForURL(`${app.url}/console`);
    await expect(page.locator('.who').textContent()).resolves.toContain('ops@acme.example (operator)');
    expect(idp.lastToken?.pkceVerified).toBe(true);
  }, 60_000);
});

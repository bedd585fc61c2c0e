/**
 * Merchant onboarding in a real browser (Debian Chromium through playwright-core): the shop asks the app for an
 * onboarding link (sync-api.md 4.9), the merchant opens it, submits the sandbox onboarding page and lands on the
 * portal's success URL; the account webhook makes the merchant `enabled` and the app sends
 * MerchantAppOnboardingStatusChanged `pending` then `enabled` (read back from the embedded Event Platform).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { browserAvailable, launchChromium } from './helpers/services.js';

const available = await browserAvailable();
const T = 'onb-browser';

describe.skipIf(!available)('merchant onboarding in Chromium', () => {
  let app: TestApp;
  let portal: Server;
  let portalUrl = '';
  const visits: string[] = [];
  let context: BrowserContext;

  beforeAll(async () => {
    portal = createServer((req, res) => {
      visits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Portal</title><h1 id="portal">Portal ${req.url?.split('?')[0]}</h1>`);
    });
    await new Promise<void>((r) => portal.listen(0, '127.0.0.1', () => r()));
    portalUrl = `http://127.0.0.1:${(portal.address() as AddressInfo).port}`;
    app = await startTestApp();
    const configuration = JSON.stringify({ secretKey: 'sk_sandbox_test1234', webhookSecret: 'whsec_0123456789abcdef' });
    expect((await app.request('/private/configure', { tenant: T, body: { data: { type: 'configuration', attributes: { configuration } } } })).status).toBe(200);
    context = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await app?.close();
    await new Promise<void>((r) => (portal ? portal.close(() => r()) : r()));
  });

  /** Reads merchant-app-events for the tenant until `count` MerchantAppOnboardingStatusChanged arrived. */
  async function statusMessages(count: number): Promise<any[]> {
    const out: any[] = [];
    for (let i = 0; i < 400 && out.length < count; i++) {
      const r = await app.request('/event-platform/merchant-app-events?limit=100', { headers: { 'consumer-id': T } });
      expect(r.status).toBe(200);
      const msgs = r.body as any[];
      for (const m of msgs) if (m.MessageAttributes.transferName === 'MerchantAppOnboardingStatusChanged') out.push(JSON.parse(m.MessageBody));
      if (msgs.length > 0) {
        const ack = await app.request('/event-platform/merchant-app-events', { method: 'DELETE', headers: { 'consumer-id': T }, body: { messageIds: msgs.map((m) => m.MessageId) } });
        expect(ack.status).toBe(204);
      } else await new Promise((res) => setTimeout(res, 25));
    }
    return out;
  }

  it('the merchant completes the sandbox onboarding page: back on the portal, status pending then enabled', async () => {
    const r = await app.request('/private/merchants/onboarding', {
      tenant: T,
      headers: { 'x-merchant-reference': 'MER000777' },
      body: {
        merchant: { merchantReference: 'MER000777', name: 'Browser Merchant' },
        successUrl: `${portalUrl}/merchant-portal/onboarding/success`,
        refreshUrl: `${portalUrl}/merchant-portal/onboarding/refresh`,
      },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ strategy: 'redirect', content: null, status: 'pending' });
    const accountId = /\/sandbox\/onboarding\/([^/?]+)/.exec(r.body.url)![1]!;

    const first = await statusMessages(1);
    expect(first).toEqual([
      { merchantReference: 'MER000777', appIdentifier: 'open-acp-pay', type: 'payment', status: 'pending', additionalInfo: JSON.stringify({ accountId, requirements: [] }) },
    ]);

    const page = await context.newPage();
    await page.goto(r.body.url);
    expect(await page.textContent('body')).toContain('Browser Merchant');
    await Promise.all([page.waitForURL(`${portalUrl}/merchant-portal/onboarding/success**`), page.click('button[value="complete"]')]);
    expect(await page.textContent('#portal')).toBe('Portal /merchant-portal/onboarding/success');
    expect(visits.some((v) => v.startsWith('/merchant-portal/onboarding/success'))).toBe(true);
    await page.close();

    const next = await statusMessages(1);
    expect(next).toEqual([
      { merchantReference: 'MER000777', appIdentifier: 'open-acp-pay', type: 'payment', status: 'enabled', additionalInfo: JSON.stringify({ accountId, requirements: [] }) },
    ]);
    const again = await app.request('/private/merchants/onboarding', {
      tenant: T,
      headers: { 'x-merchant-reference': 'MER000777' },
      body: { merchant: { merchantReference: 'MER000777' }, successUrl: `${portalUrl}/s`, refreshUrl: `${portalUrl}/r` },
    });
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('enabled');
  }, 60_000);
});

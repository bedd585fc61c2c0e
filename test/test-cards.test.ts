/**
 * Every sandbox test card through the HTTP flow of the hosted payment page (flows.md 4, sandbox-psp.md "Test cards"):
 * initialize → /app-payment → the sandbox form posted like a browser (form-encoded, straight to the sandbox) →
 * /app-payment/redirect → where the shopper lands, and the messages in the outbox (webhooks race with the redirect).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { SHOP, answerChallenge, configureTenant, count, initialize, messageNames, payOnPage } from './helpers/hosted-flow.js';

let app: TestApp;
const T = 'cards-tenant';
const SUCCESS = `${SHOP}/en/payment/order-success`;

beforeAll(async () => {
  app = await startTestApp();
  await configureTenant(app, T);
});
afterAll(async () => {
  await app?.close();
});

/** Waits until the sandbox's webhooks for the payment were received and settled (no row left to process). */
async function settled(paymentTx: string): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    const pending = await app.deps.db.query(
      `SELECT 1 FROM sandbox_events WHERE state NOT IN ('delivered', 'skipped', 'dead') AND body LIKE $1`,
      [`%${paymentTx}%`],
    );
    const inbox = await app.deps.db.query(`SELECT 1 FROM webhook_inbox WHERE psp_object_id = $1 AND state IN ('received', 'retrying')`, [paymentTx]);
    if ((pending.rows.length === 0 && inbox.rows.length === 0) || Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('test cards through the hosted payment page', () => {
  it('4242424242424242: lands on the success URL, exactly one PaymentAuthorized', async () => {
    const p = await initialize(app, T);
    const r = await payOnPage(app, p.redirectUrl, '4242424242424242');
    expect(r.finalUrl).toBe(SUCCESS);
    expect(r.hops.some((h) => h.url.includes('/app-payment/redirect'))).toBe(true);
    await settled(p.transactionId);
    const names = await messageNames(app, p.paymentId);
    expect(count(names, 'PaymentAuthorized')).toBe(1);
    expect(count(names, 'PaymentAuthorizationFailed')).toBe(0);
    const row = (await app.deps.db.query<any>('SELECT status, authorized_amount FROM payments WHERE id = $1', [p.paymentId])).rows[0];
    expect(row).toMatchObject({ status: 'authorized', authorized_amount: 12345 });
    // reload after paying → success URL (flows.md 4 step 15)
    const reload = await fetch(p.redirectUrl, { redirect: 'manual' });
    expect(reload.status).toBe(302);
    expect(reload.headers.get('location')).toBe(SUCCESS);
  });

  for (const [card, code] of [
    ['4000000000000002', 'card_declined'],
    ['4000000000009995', 'insufficient_funds'],
  ] as const) {
    it(`${card}: back to the page with error=${code}, no message; then 4242 works`, async () => {
      const p = await initialize(app, T);
      const r = await payOnPage(app, p.redirectUrl, card);
      const pageHop = r.hops.find((h) => h.url.includes('/app-payment?'));
      expect(pageHop, JSON.stringify(r.hops.map((h) => [h.status, h.url, h.location]))).toBeDefined();
      const u = new URL(pageHop!.url);
      expect(u.searchParams.get('error')).toBe(code);
      expect(u.searchParams.get('transactionId')).toBe(p.transactionId);
      expect(r.final.status).toBe(200);
      expect(r.final.html).toContain('role="alert"');
      expect(r.final.html).toMatch(/<form[^>]+action="[^"]*\/sandbox\/checkout\//);
      await settled(p.transactionId);
      let names = await messageNames(app, p.paymentId);
      expect(names.filter((n) => n !== 'PaymentCreated')).toEqual([]);
      const status = (await app.deps.db.query<any>('SELECT status FROM payments WHERE id = $1', [p.paymentId])).rows[0].status;
      expect(status).toBe('new');
      const hist = (await app.deps.db.query<any>('SELECT details FROM payment_status_history WHERE payment_id = $1 ORDER BY seq', [p.paymentId])).rows;
      expect(JSON.stringify(hist)).toContain(code);

      // Retry on the page shown with the error: a good card pays.
      const again = await payOnPage(app, pageHop!.url, '4242424242424242');
      expect(again.finalUrl).toBe(SUCCESS);
      await settled(p.transactionId);
      names = await messageNames(app, p.paymentId);
      expect(count(names, 'PaymentAuthorized')).toBe(1);
    });
  }

  it('4100000000000019: final failure → cancel URL, exactly one PaymentAuthorizationFailed', async () => {
    const p = await initialize(app, T);
    const r = await payOnPage(app, p.redirectUrl, '4100000000000019');
    expect(r.finalUrl).toBe(`${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}`);
    await settled(p.transactionId);
    const names = await messageNames(app, p.paymentId);
    expect(count(names, 'PaymentAuthorizationFailed')).toBe(1);
    expect(count(names, 'PaymentAuthorized')).toBe(0);
    // reload → cancel URL
    const reload = await fetch(p.redirectUrl, { redirect: 'manual' });
    expect(reload.status).toBe(302);
    expect(reload.headers.get('location')).toBe(`${SHOP}/en/payment/order-cancel?orderReference=${p.orderReference}`);
  });

  it('4000002500003155: challenge; "Complete" authorizes (one PaymentAuthorized)', async () => {
    const p = await initialize(app, T);
    const r = await payOnPage(app, p.redirectUrl, '4000002500003155');
    expect(r.final.status).toBe(200);
    expect(r.finalUrl).toMatch(/\/sandbox\/checkout\/[^/]+\/challenge(\?|$)/);
    await settled(p.transactionId);
    expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
    const done = await answerChallenge(app, r.final.html, 'complete');
    expect(done.hops.some((h) => h.url.includes('/app-payment/redirect'))).toBe(true);
    expect(done.finalUrl).toBe(SUCCESS);
    await settled(p.transactionId);
    expect(count(await messageNames(app, p.paymentId), 'PaymentAuthorized')).toBe(1);
  });

  it('4000002500003155: challenge "Fail" is a retryable decline (back to the page with an error, no message)', async () => {
    const p = await initialize(app, T);
    const r = await payOnPage(app, p.redirectUrl, '4000002500003155');
    const failed = await answerChallenge(app, r.final.html, 'fail');
    const pageHop = failed.hops.find((h) => h.url.includes('/app-payment?'));
    expect(pageHop).toBeDefined();
    expect(new URL(pageHop!.url).searchParams.get('error')).toBeTruthy();
    expect(failed.final.status).toBe(200);
    await settled(p.transactionId);
    expect((await messageNames(app, p.paymentId)).filter((n) => n !== 'PaymentCreated')).toEqual([]);
    expect((await app.deps.db.query<any>('SELECT status FROM payments WHERE id = $1', [p.paymentId])).rows[0].status).toBe('new');
  });

  it('4000000000000341: authorizes (capture failures come later with the capture)', async () => {
    const p = await initialize(app, T);
    const r = await payOnPage(app, p.redirectUrl, '4000000000000341');
    expect(r.finalUrl).toBe(SUCCESS);
    await settled(p.transactionId);
    expect(count(await messageNames(app, p.paymentId), 'PaymentAuthorized')).toBe(1);
  });
});

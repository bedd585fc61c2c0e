/**
 * The redirect/webhook race (flows.md 4 steps 8-9): for 50 paid payments the shopper's return (GET /app-payment/redirect)
 * and the PSP's webhook arrive at the same time. Exactly one PaymentAuthorized per payment, whichever wins.
 * Runs on PGlite and, when available, on PostgreSQL (real concurrency between connections).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { SECRET_KEY, SHOP, WEBHOOK_SECRET, configureTenant, initialize, messageNames } from './helpers/hosted-flow.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const N = 50;
/**
 * Every webhook processed inline, racing the returns (the webhook worker, which would take those beyond the default 4,
 * is off), and at once: acknowledgements first (which would let this burst's processing wait for its answers) is off.
 */
const INLINE_ALL = { WEBHOOK_INLINE_CONCURRENCY: '100', WEBHOOK_ACK_FIRST_MS: '0' };

function signed(body: string): Record<string, string> {
  const t = Math.floor(Date.now() / 1000);
  return { 'content-type': 'application/json', 'sandbox-signature': `t=${t},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex')}` };
}

async function race(app: TestApp, tenant: string): Promise<void> {
  const year = new Date().getUTCFullYear() + 2;
  // 50 payments, each paid at the sandbox (its own webhook delivery is not running: workers are off)
  const payments = [];
  for (let i = 0; i < N; i++) {
    const p = await initialize(app, tenant, { amount: 1000 + i });
    const psp = await app.request(`/sandbox/v1/payments/${p.transactionId}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
    const pay = await app.request(`/sandbox/v1/payments/${p.transactionId}/confirm`, {
      body: { clientSecret: psp.body.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: year, cvc: '123' } },
    });
    expect(pay.status).toBe(200);
    const obj = (await app.request(`/sandbox/v1/payments/${p.transactionId}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } })).body;
    expect(obj.status).toBe('authorized');
    const event = JSON.stringify({ id: `evt_${randomBytes(8).toString('hex')}`, type: 'payment.authorized', created: Math.floor(Date.now() / 1000), livemode: false, data: { object: obj } });
    payments.push({ ...p, event });
  }

  // Everything at once: 50 returns and 50 webhooks (plus a repeated webhook delivery each).
  const results = await Promise.all(
    payments.flatMap((p) => [
      fetch(`${app.url}/app-payment/redirect?transactionId=${p.transactionId}&tenantIdentifier=${tenant}`, { redirect: 'manual' }).then(async (r) => ({ kind: 'redirect', status: r.status, location: r.headers.get('location'), body: await r.text() })),
      fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: signed(p.event), body: p.event }).then(async (r) => ({ kind: 'webhook', status: r.status, location: null, body: await r.text() })),
      fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: signed(p.event), body: p.event }).then(async (r) => ({ kind: 'webhook', status: r.status, location: null, body: await r.text() })),
    ]),
  );
  for (const r of results) {
    if (r.kind === 'redirect') {
      expect(r.status).toBe(302);
      expect(r.location).toBe(`${SHOP}/en/payment/order-success`);
    } else {
      expect(r.status, r.body).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ isSuccessful: true });
    }
  }

  let total = 0;
  for (const p of payments) {
    const names = await messageNames(app, p.paymentId);
    const authorized = names.filter((n) => n === 'PaymentAuthorized').length;
    expect([p.transactionId, authorized]).toEqual([p.transactionId, 1]);
    total += authorized;
    const row = (await app.deps.db.query<any>('SELECT status FROM payments WHERE id = $1', [p.paymentId])).rows[0];
    expect(row.status).toBe('authorized');
    const inbox = (await app.deps.db.query<any>('SELECT state FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2', [tenant, p.transactionId])).rows;
    expect(inbox.map((x) => x.state)).toEqual(['processed']);
  }
  expect(total).toBe(N);
}

describe('redirect/webhook race on PGlite', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(INLINE_ALL, { startWorkers: false });
    await configureTenant(app, 'race-pglite');
  });
  afterAll(async () => {
    await app?.close();
  });
  it(`${N} payments: return and webhook concurrently → exactly one PaymentAuthorized each`, async () => {
    await race(app, 'race-pglite');
  }, 120_000);
});

describe('redirect/webhook race on PostgreSQL', async () => {
  const available = await postgresAvailable();
  let app: TestApp;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (!available) return;
    const db = await createTempDatabase();
    drop = db.drop;
    app = await startTestApp({ ...INLINE_ALL, DATABASE_URL: db.url }, { startWorkers: false });
    await configureTenant(app, 'race-pg');
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });
  it.skipIf(!available)(`${N} payments: return and webhook concurrently → exactly one PaymentAuthorized each`, async () => {
    await race(app, 'race-pg');
  }, 120_000);
});

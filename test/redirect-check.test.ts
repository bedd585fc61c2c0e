/**
 * The redirect check (sync-api.md 4.12, flows.md 4 step 9) writes only when the PSP reports something new (issue 12):
 * a return after the webhook already applied the authorization runs no transaction and adds no history row; a return
 * before the webhook applies the authorization itself (once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, pay, until } from './helpers/commands.js';

const history = async (app: TestApp, transactionId: string): Promise<string[]> =>
  (
    await app.deps.db.query<{ status: string }>(
      'SELECT h.status FROM payment_status_history h JOIN payments p ON p.id = h.payment_id WHERE p.transaction_id = $1 ORDER BY h.seq',
      [transactionId],
    )
  ).rows.map((r) => r.status);

const redirect = (app: TestApp, tenant: string, transactionId: string) =>
  fetch(`${app.url}/app-payment/redirect?${new URLSearchParams({ transactionId, tenantIdentifier: tenant })}`, { redirect: 'manual' });

describe('redirect check', () => {
  let app: TestApp;
  let late: TestApp;
  beforeAll(async () => {
    app = await startTestApp({}, { startWorkers: true });
    late = await startTestApp({ SANDBOX_WEBHOOK_DELAY_MS: '3600000' }, { startWorkers: true });
    await configureTenant(app, 'rc-1');
    await configureTenant(late, 'rc-2');
  });
  afterAll(async () => {
    await app?.close();
    await late?.close();
  });

  it('after the webhook: no transaction, no history row, shopper sent to the success URL', async () => {
    const o = await initializeOrder(app, 'rc-1', { 1: 1000 });
    await pay(app, o.transactionId);
    await until(() => history(app, o.transactionId), (h) => h.includes('authorized'));
    const before = { history: await history(app, o.transactionId) };
    const trace: string[] = [];
    app.deps.db.stats.trace = trace;
    const r = await redirect(app, 'rc-1', o.transactionId);
    app.deps.db.stats.trace = undefined;
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('https://shop.example/en/payment/order-success');
    // (background workers may run their own statements meanwhile; none of them locks or writes a payment)
    expect(trace.filter((sql) => /FROM payments WHERE id = \$1 FOR UPDATE|UPDATE payments/.test(sql))).toEqual([]);
    expect(await history(app, o.transactionId)).toEqual(before.history);
  });

  it('before the webhook: the return applies the authorization once', async () => {
    const o = await initializeOrder(late, 'rc-2', { 1: 1000 });
    await pay(late, o.transactionId);
    expect(await history(late, o.transactionId)).toEqual(['new']);
    const r = await redirect(late, 'rc-2', o.transactionId);
    expect(r.headers.get('location')).toBe('https://shop.example/en/payment/order-success');
    expect(await history(late, o.transactionId)).toEqual(['new', 'authorized']);
    await redirect(late, 'rc-2', o.transactionId);
    expect(await history(late, o.transactionId)).toEqual(['new', 'authorized']);
  });
});

/**
 * A PostgreSQL connection drop (issue 10 item 1): with a TCP proxy between the app and PostgreSQL cut, the process
 * stays up, requests answer 503 DATABASE_UNAVAILABLE with Retry-After, /ready answers 503 naming the database,
 * /health answers, and once the proxy is back everything resumes by itself (requests, workers, relay).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, listMigrations, openDb, pendingMigrations, setAfterCommitErrorSink } from '../src/store/db.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, pay, sandboxPayment, until } from './helpers/commands.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();
const T = 'outage-tenant';

describe.skipIf(!pgOk)('PostgreSQL connection cut', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let proxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    temp = await createTempDatabase();
    proxy = TcpProxy.forUrl(temp.url, 5432);
    await proxy.start();
    app = await startTestApp({ DATABASE_URL: proxy.via(temp.url), SANDBOX_REFUND_SETTLE_MS: '50' });
    await configureTenant(app, T);
  }, 60_000);

  afterAll(async () => {
    if (proxy && !proxy.up) await proxy.start();
    await app?.close();
    await proxy?.cut();
    await temp?.drop();
  });

  const initialize = () =>
    app.request('/private/initialize-payment', {
      tenant: T,
      body: {
        orderData: { orderReference: `DE--${Math.random().toString(36).slice(2, 10)}`, grandTotal: 1000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [{ idSalesOrderItem: 1, name: 'I', sku: 'S', quantity: 1, unitPrice: 1000 }] },
        redirectSuccessUrl: 'https://shop.example/ok',
        redirectCancelUrl: 'https://shop.example/cancel',
      },
    });

  it('keeps the process up, answers 503 with Retry-After during the cut, and resumes by itself afterwards', async () => {
    expect((await initialize()).status).toBe(200);
    // connections checked out in a transaction and in a session when the cut happens
    const inTx = app.deps.db.tx((tx) => tx.query('SELECT pg_sleep(5)'));
    const inSession = app.deps.db.session((s) => s.query('SELECT pg_sleep(5)'));
    // and requests in flight
    const inFlight = Array.from({ length: 10 }, () => initialize());
    await new Promise((r) => setTimeout(r, 200));
    await proxy.cut();

    const [txResult, sessionResult] = await Promise.allSettled([inTx, inSession]);
    expect(txResult.status).toBe('rejected');
    expect(isDatabaseUnavailable((txResult as PromiseRejectedResult).reason)).toBe(true);
    expect(sessionResult.status).toBe('rejected');
    for (const r of await Promise.all(inFlight)) expect([200, 503]).toContain(r.status);

    const during = await initialize();
    expect(during.status, during.text).toBe(503);
    expect(during.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(during.body.errors[0]).toMatchObject({ code: 'DATABASE_UNAVAILABLE', status: 503 });
    expect(during.body).toMatchObject({ isSuccessful: false }); // the endpoint's own error shape
    expect(during.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);

    expect((await app.request('/health')).status).toBe(200);
    const ready = await app.request('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toBe('unreachable');
    expect(ready.body.reasons[0]).toMatch(/^database: unreachable/);
    // still the same after a while: the workers and relay keep running into the outage without killing the process
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await app.request('/health')).status).toBe(200);

    await proxy.start();
    const back = await until(() => app.request('/ready'), (r) => r.status === 200, 30_000);
    expect(back.status).toBe(200);
    const o = await initializeOrder(app, T, { 1: 2500 });
    await pay(app, o.transactionId);
    // the webhook worker and relay resumed: the payment reaches authorized and its events are delivered
    expect((await sandboxPayment(app, o.transactionId)).status).toBe('authorized');
    const status = async () => (await app.deps.db.query<{ status: string }>('SELECT status FROM payments WHERE transaction_id = $1', [o.transactionId])).rows[0]?.status;
    expect(await until(status, (s) => s === 'authorized', 30_000)).toBe('authorized');
    const rows = await until(
      () => app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state <> 'delivered'`),
      (r) => r.rows[0]!.n === 0,
      // a claim the database committed while its answer was lost in the cut is not known to the relay: its row comes
      // back when its 60 s lease runs out (nothing is lost, it is late)
      75_000,
    );
    expect(rows.rows[0]!.n).toBe(0);
  }, 180_000);
});

describe('swallowed database errors (issue 10 item 7)', () => {
  it('an after-commit callback error is reported with its cause; the committed result is still returned', async () => {
    const db = await openDb({ kind: 'pglite-memory' });
    const seen: unknown[] = [];
    setAfterCommitErrorSink((err) => seen.push(err));
    try {
      const r = await db.tx(async (tx) => {
        tx.afterCommit(() => {
          throw new Error('wake-up failed');
        });
        return (await tx.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n;
      });
      expect(r).toBe(1);
      expect(seen).toHaveLength(1);
      expect((seen[0] as Error).message).toBe('wake-up failed');
    } finally {
      await db.close();
    }
  });

  it('a database error in pendingMigrations is thrown, not reported as every migration pending', async () => {
    const down = { query: async () => Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })) };
    await expect(pendingMigrations(down)).rejects.toThrow(/ECONNRESET/);
    // a database with nothing migrated yet (no schema_migrations table) has every migration pending
    const fresh = await openDb({ kind: 'pglite-memory' });
    try {
      expect(await pendingMigrations(fresh)).toBe(listMigrations().length);
    } finally {
      await fresh.close();
    }
  });
});

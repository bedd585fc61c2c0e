/**
 * Group commit of new payments (`src/store/coalesce.ts`): initialize-payment calls of one tenant that arrive while an
 * earlier one is being written share one statement. Seen from outside nothing may differ from one statement per
 * payment: every answer right, one payment, one history row, one PSP object and one PaymentCreated per payment, the
 * tenant's message timestamps strictly increasing, identical requests answered with the first payment, a different
 * amount for a stored order refused. Runs on PGlite and, when available, on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, statementsOf, type TestApp } from './helpers/app.js';
import { SHOP, configureTenant } from './helpers/hosted-flow.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const ref = (): string => `DE--${randomBytes(5).toString('hex')}`;

function body(orderReference: string | null, amount = 10_000): Record<string, unknown> {
  return {
    orderData: {
      ...(orderReference ? { orderReference } : {}),
      grandTotal: amount,
      currencyCode: 'EUR',
      paymentMethod: 'Credit Card',
      items: [{ idSalesOrderItem: 1, name: 'Shirt', sku: 'SKU-1', quantity: 1, unitPrice: amount }],
    },
    ...(orderReference ? { redirectSuccessUrl: `${SHOP}/success`, redirectCancelUrl: `${SHOP}/cancel` } : {}),
  };
}

/**
 * On PostgreSQL: holds the message clock (which every new payment's statement takes) in another session
 * until a write of the app waits on it and the rest of the burst has had time to queue behind it, so the burst is
 * certain to form batches however fast or slow this machine is. Returns the release.
 */
async function holdClock(url: string): Promise<() => Promise<void>> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('SELECT pg_advisory_lock(7270012, 2)'); // the message clock's lock (migrations/012)
  return async () => {
    try {
      await expect
        .poll(
          async () => {
            await client.query('SELECT pg_stat_clear_snapshot()'); // statistics views are a snapshot per transaction otherwise
            return (await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n;
          },
          { timeout: 30_000 },
        )
        .toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await client.query('SELECT pg_advisory_unlock(7270012, 2)');
      await client.end();
    }
  };
}

async function burst(app: TestApp, tenant: string, hold?: () => Promise<() => Promise<void>>): Promise<void> {
  const distinct = Array.from({ length: 30 }, () => ref());
  const repeated = ref(); // six identical requests
  const contested = ref(); // three with one amount, three with another: one amount wins
  const requests: Array<{ kind: string; order: string | null; amount: number }> = [
    ...distinct.map((order) => ({ kind: 'distinct', order, amount: 10_000 })),
    ...Array.from({ length: 6 }, () => ({ kind: 'repeated', order: repeated, amount: 10_000 })),
    ...Array.from({ length: 6 }, (_, i) => ({ kind: 'contested', order: contested, amount: i % 2 === 0 ? 10_000 : 20_000 })),
    ...Array.from({ length: 10 }, () => ({ kind: 'pre-order', order: null, amount: 5_000 })),
  ];
  let answers: Array<{ req: (typeof requests)[number]; status: number; body: any; text: string }> = [];
  const release = await hold?.();
  const sql = await statementsOf(app, async () => {
    const all = Promise.all(
      requests.map(async (req) => {
        const r = await app.request('/private/initialize-payment', { tenant, body: body(req.order, req.amount) });
        return { req, status: r.status, body: r.body, text: r.text };
      }),
    );
    await release?.();
    answers = await all;
  });

  for (const a of answers.filter((x) => x.req.kind !== 'contested')) expect(a.status, a.text).toBe(200);
  // the identical requests: one payment, the same answer
  expect(new Set(answers.filter((a) => a.req.kind === 'repeated').map((a) => a.body.transactionId)).size).toBe(1);
  // the contested order: the stored amount's requests answered with its payment, the others 409
  const stored = (await app.deps.db.query<{ amount: string | number; transaction_id: string }>('SELECT amount, transaction_id FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, contested])).rows;
  expect(stored).toHaveLength(1);
  for (const a of answers.filter((x) => x.req.kind === 'contested')) {
    if (a.req.amount === Number(stored[0]!.amount)) {
      expect(a.status, a.text).toBe(200);
      expect(a.body.transactionId).toBe(stored[0]!.transaction_id);
    } else {
      expect(a.status, a.text).toBe(409);
      expect(a.body.errorCode ?? a.body.code ?? a.text).toContain('CONFLICT');
    }
  }
  const preOrders = answers.filter((a) => a.req.kind === 'pre-order');
  for (const a of preOrders) expect(a.body.preOrderPaymentData.transactionId).toBe(a.body.transactionId);

  // every answered transaction id: exactly one payment with one history row, one PSP object, one PaymentCreated
  const answered = [...new Set(answers.filter((a) => a.status === 200).map((a) => a.body.transactionId as string))];
  expect(answered).toHaveLength(30 + 1 + 1 + 10);
  const rows = (
    await app.deps.db.query<{ transaction_id: string; order_reference: string | null; amount: string | number; history: number; objects: number }>(
      `SELECT p.transaction_id, p.order_reference, p.amount,
         (SELECT count(*)::int FROM payment_status_history h WHERE h.payment_id = p.id AND h.seq = 1 AND h.status = 'new') AS history,
         (SELECT count(*)::int FROM psp_objects o WHERE o.psp_object_id = p.transaction_id AND o.tenant_identifier = p.tenant_identifier) AS objects
       FROM payments p WHERE p.tenant_identifier = $1`,
      [tenant],
    )
  ).rows;
  expect(rows.map((r) => r.transaction_id).sort()).toEqual([...answered].sort());
  for (const r of rows) expect([r.transaction_id, r.history, r.objects]).toEqual([r.transaction_id, 1, 1]);
  for (const order of distinct) expect(rows.filter((r) => r.order_reference === order).map((r) => Number(r.amount))).toEqual([10_000]);

  const created = (
    await app.deps.db.query<{ payload: any; message_timestamp: string; attributes: any }>(
      `SELECT payload, message_timestamp, attributes FROM outbox WHERE tenant_identifier = $1 AND message_name = 'PaymentCreated' ORDER BY seq`,
      [tenant],
    )
  ).rows;
  expect(created.map((m) => m.payload.paymentReference).sort()).toEqual([...answered].sort());
  // the tenant's clock: strictly increasing in the order the rows were written, each in its attributes too
  for (let i = 1; i < created.length; i++) expect(created[i]!.message_timestamp > created[i - 1]!.message_timestamp).toBe(true);
  for (const m of created) expect(m.attributes.timestamp).toBe(m.message_timestamp);

  // and the payments did share statements: a statement of several payments, fewer payment inserts than payments
  const inserts = sql.filter((s) => s.includes('INSERT INTO payments'));
  expect(inserts.filter((s) => s.includes('WITH ORDINALITY AS x(id, transaction_id')).length).toBeGreaterThan(0);
  expect(inserts.length).toBeLessThan(rows.length);
}

for (const database of ['PGlite', 'PostgreSQL'] as const) {
  describe(`group commit of new payments on ${database}`, async () => {
    const available = database === 'PGlite' || (await postgresAvailable());
    const tenant = `gc-${database.toLowerCase()}`;
    let app: TestApp;
    let drop: (() => Promise<void>) | undefined;
    let url: string | undefined;
    beforeAll(async () => {
      if (!available) return;
      const env: Record<string, string> = {};
      if (database === 'PostgreSQL') {
        const db = await createTempDatabase();
        drop = db.drop;
        env.DATABASE_URL = db.url;
        url = db.url;
      }
      app = await startTestApp(env, { startWorkers: false });
      await configureTenant(app, tenant);
    });
    afterAll(async () => {
      await app?.close();
      await drop?.();
    });
    it.skipIf(!available)('58 concurrent initializations of one tenant (30 orders, identical and contested repeats, pre-orders): one payment, history row, PSP object and message each', async () => {
      await burst(app, tenant, url ? () => holdClock(url!) : undefined);
    }, 120_000);
  });
}

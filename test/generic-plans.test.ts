/**
 * The statements that write outbox rows and record deliveries settle on one generic plan per connection (README
 * "Benchmark", `unplannedArray` in src/store/db.ts): PostgreSQL plans a named statement with its parameters for its
 * first five runs, then keeps a generic plan only when it is estimated no dearer. With bare array parameters the
 * custom plans counted the arrays and the generic one could not, so every run was planned again. Checked on the
 * connection that ran them (`pg_prepared_statements`: generic_plans / custom_plans), on PGlite and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDb, type Db, type Tx } from '../src/store/db.js';
import { insertOutboxMessages, markOutboxBatchDelivered, type OutboxInsert } from '../src/store/outbox.js';
import { findOrderPaymentSummary, insertPayment, updatePaymentRecording } from '../src/store/payments.js';
import { testPayment } from './helpers/payments.js';
import { openTempPostgresDb, postgresAvailable } from './helpers/services.js';

const RUNS = 8;
const TENANT = 'plans-t1';

function message(paymentId: string, name: string): OutboxInsert {
  const id = randomUUID();
  return {
    id,
    tenantIdentifier: TENANT,
    channel: 'payment-events',
    messageName: name,
    orderingKey: `${TENANT}/payment/${paymentId}`,
    attributes: { transferName: name, tenantIdentifier: TENANT, messageId: id } as unknown as OutboxInsert['attributes'],
    payload: { orderReference: `DE--${paymentId.slice(0, 8)}`, amount: 1000 },
  };
}

/** Plans of the prepared statements on `tx`'s connection whose text contains `marker`. */
async function plans(tx: Tx, marker: string): Promise<Array<{ generic: number; custom: number }>> {
  const r = await tx.query<{ generic_plans: number | string; custom_plans: number | string }>(
    'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE $1',
    [`%${marker}%`],
  );
  return r.rows.map((x) => ({ generic: Number(x.generic_plans), custom: Number(x.custom_plans) }));
}

async function newPayment(tx: Tx): Promise<string> {
  const p = testPayment({ tenantIdentifier: TENANT, transactionId: `sbx_pay_${randomUUID()}` });
  await insertPayment(tx, p);
  return p.id;
}

function suite(name: string, open: () => Promise<{ db: Db; cleanup: () => Promise<void> } | null>): void {
  describe(`generic plans of the outbox statements (${name})`, async () => {
    const ctx = await open();
    let db: Db;
    beforeAll(async () => {
      if (!ctx) return;
      db = ctx.db;
      await migrate(db);
    });
    afterAll(async () => {
      await ctx?.cleanup();
    });

    it.skipIf(!ctx)('messages written with a state change and alone, and deliveries recorded, are planned once each', async () => {
      // one transaction: every statement on one connection, whose prepared statements are then read
      await db.tx(async (tx) => {
        const written: string[] = [];
        for (let i = 0; i < RUNS; i++) {
          const paymentId = await newPayment(tx);
          const announced = [message(paymentId, 'PaymentUpdated'), message(paymentId, 'PaymentAuthorized')];
          const r = await updatePaymentRecording(tx, paymentId, { status: 'authorized', authorizedAmount: 1000 }, { status: 'authorized', trigger: 'webhook', ref: `w${i}` }, false, {
            at: new Date(),
            seq: 2,
            outbox: announced,
          });
          expect(r.payment.status).toBe('authorized');
          const alone = [message(paymentId, 'PaymentUpdated'), message(paymentId, 'PaymentCaptured'), message(paymentId, 'PaymentRefunded')].slice(0, 1 + (i % 3));
          await insertOutboxMessages(tx, TENANT, alone);
          written.push(...announced.map((m) => m.id), ...alone.map((m) => m.id));
        }
        // every message is stored, with a strictly increasing timestamp in seq order
        const stored = (await tx.query<{ id: string; message_timestamp: string }>('SELECT id, message_timestamp FROM outbox WHERE id = ANY($1::text[]) ORDER BY seq', [written])).rows;
        expect(stored.map((s) => s.id).sort()).toEqual([...written].sort());
        for (let i = 1; i < stored.length; i++) expect(stored[i]!.message_timestamp > stored[i - 1]!.message_timestamp).toBe(true);
        // deliveries recorded in batches of one or two rows: the first half without receipts, the second with them
        const half = Math.floor(written.length / 2);
        for (const [from, to, withReceipts] of [[0, half, false], [half, written.length, true]] as const) {
          for (let i = from, k = 0; i < to; k++) {
            const batch = written.slice(i, Math.min(to, i + 1 + (k % 2)));
            i += batch.length;
            await markOutboxBatchDelivered(tx, batch, batch.map((id) => (withReceipts ? `receipt-${id}` : null)));
          }
        }
        const rows = (await tx.query<{ id: string; state: string; receipt: string | null }>('SELECT id, state, receipt FROM outbox WHERE id = ANY($1::text[])', [written])).rows;
        const byId = new Map(rows.map((r) => [r.id, r]));
        written.forEach((id, i) => expect(byId.get(id)).toEqual({ id, state: 'delivered', receipt: i < half ? null : `receipt-${id}` }));

        for (const marker of ['UPDATE payments SET', 'WITH outbox_input AS', "state = 'delivered', delivered_at = now(), receipt = NULL", "receipt = v.receipt"]) {
          const ps = await plans(tx, marker);
          expect(ps, marker).toHaveLength(1);
          // custom plans for the first five runs at most (the rule of PostgreSQL's plan cache), generic ones after
          expect(ps[0]!.custom, marker).toBeLessThanOrEqual(5);
          expect(ps[0]!.generic, marker).toBeGreaterThan(0);
        }
      });
    });

    // PGlite only: its one connection runs every grouped look-up (on PostgreSQL they spread over the pool's connections)
    if (name === 'PGlite') it('grouped order look-ups of initialize-payment are planned once', async () => {
      const tx0 = await db.tx(async (tx) => {
        const ids: string[] = [];
        for (let i = 0; i < 2; i++) ids.push(await newPayment(tx));
        return ids;
      });
      // a table of some size, as in use: the plan then probes the order index once per asked order, so its cost grows
      // with the group (copies of a stored payment, then fresh statistics)
      await db.query(
        `INSERT INTO payments SELECT (jsonb_populate_record(p, jsonb_build_object('id', 'copy-' || i, 'transaction_id', 'copy-tx-' || i, 'order_reference', 'copy-ord-' || i))).*
         FROM payments p CROSS JOIN generate_series(1, 3000) AS i WHERE p.id = $1`,
        [tx0[0]],
      );
      await db.query('ANALYZE payments');
      const known = (await db.query<{ order_reference: string; transaction_id: string }>('SELECT order_reference, transaction_id FROM payments WHERE id = ANY($1::text[])', [tx0])).rows;
      // groups of varying sizes, each arriving while the previous one is in flight
      for (let round = 0; round < RUNS; round++) {
        // small groups, as most are at moderate load (a custom plan counts them: it looked cheaper than the generic one)
        const asks = [...known.map((k) => k.order_reference).slice(0, 2), ...Array.from({ length: 1 + (round % 2) }, (_, i) => `DE--none-${round}-${i}`)];
        const answers = await Promise.all(asks.map((ref) => findOrderPaymentSummary(db, TENANT, ref)));
        known.slice(0, 2).forEach((k, i) => expect(answers[i]?.transactionId).toBe(k.transaction_id));
        expect(answers.slice(2).every((a) => a === null)).toBe(true);
      }
      const ps = await db.tx((tx) => plans(tx, 'JOIN unnest'));
      expect(ps).toHaveLength(1);
      expect(ps[0]!.custom).toBeLessThanOrEqual(5);
      expect(ps[0]!.generic).toBeGreaterThan(0);
    });
  });
}

suite('PGlite', async () => {
  const db = await openDb({ kind: 'pglite-memory' });
  return { db, cleanup: () => db.close() };
});

const pgOk = await postgresAvailable();
suite('PostgreSQL', async () => {
  if (!pgOk) return null;
  return openTempPostgresDb();
});

/**
 * Payment repository (src/store/payments.ts) on PGlite and PostgreSQL: mapping, tenant-scoped lookups with aliases,
 * unique keys, versioned updates, history sequence, PSP object attribution, row locks.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDb, type Db } from '../src/store/db.js';
import {
  addAlias,
  appendHistory,
  findOrderPaymentSummary,
  findPaymentById,
  findPaymentByOrder,
  findPaymentByTransaction,
  findPaymentsByTransactionAnyTenant,
  insertNewPayment,
  insertPayment,
  listHistory,
  lockPayment,
  lockPaymentByTransactionWithHistory,
  recordPspObject,
  tenantForPspObject,
  updatePayment,
  type NewPayment,
} from '../src/store/payments.js';
import { openTempPostgresDb, postgresAvailable } from './helpers/services.js';

function newPayment(over: Partial<NewPayment> = {}): NewPayment {
  const id = randomUUID();
  return {
    id,
    tenantIdentifier: 'repo-t1',
    transactionId: `sbx_pay_${id.slice(0, 8)}`,
    orderReference: `DE--${id.slice(0, 8)}`,
    status: 'new',
    amount: 1999,
    currency: 'EUR',
    paymentMethod: 'credit-card',
    connector: 'sandbox',
    mode: 'test',
    captureMode: 'manual',
    orderData: { grandTotal: 1999, items: [{ idSalesOrderItem: 5 }], extra: { a: [1, 'x'] } },
    redirectSuccessUrl: 'https://shop.example/ok',
    ...over,
  };
}

function suite(name: string, open: () => Promise<{ db: Db; cleanup: () => Promise<void> } | null>): void {
  describe(`payment repository (${name})`, async () => {
    let db: Db;
    let cleanup: () => Promise<void> = async () => {};
    const ctx = await open();
    beforeAll(async () => {
      if (!ctx) return;
      db = ctx.db;
      cleanup = ctx.cleanup;
      await migrate(db);
    });
    afterAll(async () => {
      await cleanup();
    });
    const t = ctx ? it : it.skip;

    t('inserts and maps every column (camelCase, numbers, jsonb, dates)', async () => {
      const n = newPayment({ pspDetails: { cardBrand: 'visa' }, preOrderData: { transactionId: 'x', clientSecret: 'cs' }, localeName: 'de_DE' });
      const p = await db.tx((tx) => insertPayment(tx, n));
      expect(p).not.toBeNull();
      expect(p).toMatchObject({
        id: n.id,
        tenantIdentifier: 'repo-t1',
        transactionId: n.transactionId,
        orderReference: n.orderReference,
        status: 'new',
        version: 1,
        amount: 1999,
        currency: 'EUR',
        authorizedAmount: 0,
        capturedAmount: 0,
        paymentMethod: 'credit-card',
        connector: 'sandbox',
        mode: 'test',
        captureMode: 'manual',
        orderData: n.orderData,
        redirectSuccessUrl: 'https://shop.example/ok',
        redirectCancelUrl: null,
        localeName: 'de_DE',
        preOrderData: { transactionId: 'x', clientSecret: 'cs' },
        pspDetails: { cardBrand: 'visa' },
      });
      expect(p!.createdAt).toBeInstanceOf(Date);
      expect(p!.linkedAt).toBeInstanceOf(Date);
      expect(typeof p!.amount).toBe('number');
      expect(await findPaymentById(db, n.id)).toEqual(p);
    });

    t('a pre-order payment has no order and no linked_at', async () => {
      const p = await db.tx((tx) => insertPayment(tx, newPayment({ orderReference: null })));
      expect(p).toMatchObject({ orderReference: null, linkedAt: null });
    });

    t('unique (tenant, transaction) and (tenant, order): a second insert returns null and writes nothing', async () => {
      const n = newPayment();
      await db.tx((tx) => insertPayment(tx, n));
      expect(await db.tx((tx) => insertPayment(tx, newPayment({ transactionId: n.transactionId })))).toBeNull();
      expect(await db.tx((tx) => insertPayment(tx, newPayment({ orderReference: n.orderReference })))).toBeNull();
      // another tenant may reuse both
      expect(await db.tx((tx) => insertPayment(tx, newPayment({ tenantIdentifier: 'repo-t2', transactionId: n.transactionId, orderReference: n.orderReference })))).not.toBeNull();
      // several payments without order are fine
      expect(await db.tx((tx) => insertPayment(tx, newPayment({ orderReference: null })))).not.toBeNull();
      expect(await db.tx((tx) => insertPayment(tx, newPayment({ orderReference: null })))).not.toBeNull();
    });

    t('lookups are tenant-scoped; aliases resolve; the any-tenant lookup returns every tenant', async () => {
      const n = newPayment();
      await db.tx((tx) => insertPayment(tx, n));
      expect((await findPaymentByTransaction(db, 'repo-t1', n.transactionId))?.id).toBe(n.id);
      expect(await findPaymentByTransaction(db, 'repo-other', n.transactionId)).toBeNull();
      expect((await findPaymentByOrder(db, 'repo-t1', n.orderReference!))?.id).toBe(n.id);
      expect(await findPaymentByOrder(db, 'repo-other', n.orderReference!)).toBeNull();

      await db.tx(async (tx) => {
        await addAlias(tx, 'repo-t1', 'sbx_pay_old_1', n.id);
        await addAlias(tx, 'repo-t1', 'sbx_pay_old_1', n.id); // idempotent
      });
      expect((await findPaymentByTransaction(db, 'repo-t1', 'sbx_pay_old_1'))?.id).toBe(n.id);
      expect(await findPaymentByTransaction(db, 'repo-t2', 'sbx_pay_old_1')).toBeNull();
      // current id, old id and no such id: one statement each, locked with the history too
      const statements = async <T,>(fn: () => Promise<T>): Promise<[T, number]> => {
        const before = db.stats.statements;
        const v = await fn();
        return [v, db.stats.statements - before];
      };
      for (const [id, want] of [[n.transactionId, n.id], ['sbx_pay_old_1', n.id], ['sbx_pay_none', undefined]] as const) {
        const [found, count] = await statements(() => findPaymentByTransaction(db, 'repo-t1', id, { forUpdate: true }));
        expect([found?.id, count]).toEqual([want, 1]);
        const [locked, lockCount] = await statements(() => db.tx((tx) => lockPaymentByTransactionWithHistory(tx, 'repo-t1', id)));
        expect([locked?.payment.id, locked?.history, lockCount]).toEqual([want, want ? [] : undefined, 1]);
      }
      // an alias row naming another tenant's payment resolves to nothing
      const foreign = newPayment({ tenantIdentifier: 'repo-t4' });
      await db.tx((tx) => insertPayment(tx, foreign));
      await db.tx((tx) => addAlias(tx, 'repo-t1', 'sbx_pay_old_foreign', foreign.id));
      expect(await findPaymentByTransaction(db, 'repo-t1', 'sbx_pay_old_foreign')).toBeNull();
      expect(await db.tx((tx) => lockPaymentByTransactionWithHistory(tx, 'repo-t1', 'sbx_pay_old_foreign'))).toBeNull();
      expect((await findPaymentsByTransactionAnyTenant(db, 'sbx_pay_old_1')).map((p) => p.id)).toEqual([n.id]);

      const other = newPayment({ tenantIdentifier: 'repo-t3', transactionId: n.transactionId });
      await db.tx((tx) => insertPayment(tx, other));
      expect((await findPaymentsByTransactionAnyTenant(db, n.transactionId)).map((p) => p.tenantIdentifier).sort()).toEqual(['repo-t1', 'repo-t3']);
      expect(await findPaymentsByTransactionAnyTenant(db, 'sbx_pay_unknown')).toEqual([]);
    });

    t('order look-ups arriving together share statements, across tenants, and each gets its own tenant\'s order only', async () => {
      const stored = [newPayment({ tenantIdentifier: 'repo-look' }), newPayment({ tenantIdentifier: 'repo-look', amount: 500, currency: 'USD' })];
      const foreign = newPayment({ tenantIdentifier: 'repo-look-other', orderReference: 'DE--shared-ref' });
      for (const n of [...stored, foreign]) await db.tx((tx) => insertPayment(tx, n));
      const asks: Array<[string, string]> = Array.from({ length: 30 }, (_, i) => {
        if (i % 5 === 4) return ['repo-look-other', 'DE--shared-ref'];
        if (i % 5 === 3) return ['repo-look', 'DE--shared-ref'];
        if (i % 5 === 2) return ['repo-look-other', stored[0]!.orderReference!];
        if (i % 5 === 1) return ['repo-look', `DE--none-${i}`];
        return ['repo-look', stored[i % 2]!.orderReference!];
      });
      const before = db.stats.statements;
      const answers = await Promise.all(asks.map(([tenant, ref]) => findOrderPaymentSummary(db, tenant, ref)));
      const statements = db.stats.statements - before;
      asks.forEach(([tenant, ref], i) => {
        const want = [...stored, foreign].find((n) => n.tenantIdentifier === tenant && n.orderReference === ref);
        expect(answers[i]).toEqual(want ? { transactionId: want.transactionId, amount: want.amount, currency: want.currency } : null);
      });
      expect(answers.filter((a) => a !== null)).toHaveLength(12);
      expect(statements).toBeGreaterThan(0);
      expect(statements).toBeLessThan(asks.length / 2); // grouped: the first runs alone, the rest wait and go together
      // inside a transaction: its own statement, as ever
      expect(await db.tx((tx) => findOrderPaymentSummary(tx, 'repo-look-other', 'DE--shared-ref'))).toEqual({ transactionId: foreign.transactionId, amount: foreign.amount, currency: foreign.currency });
    });

    t('updatePayment changes the given fields only and increments the version each time', async () => {
      const n = newPayment();
      await db.tx((tx) => insertPayment(tx, n));
      const u1 = await db.tx(async (tx) => {
        const locked = await lockPayment(tx, n.id);
        expect(locked.version).toBe(1);
        return updatePayment(tx, n.id, { status: 'authorized', authorizedAmount: 1999, pspDetails: { cardLast4: '4242' } });
      });
      expect(u1).toMatchObject({ status: 'authorized', version: 2, authorizedAmount: 1999, amount: 1999, pspDetails: { cardLast4: '4242' }, orderData: n.orderData });
      const u2 = await db.tx((tx) => updatePayment(tx, n.id, { transactionId: 'sbx_pay_new', orderReference: null, preOrderData: null }));
      expect(u2).toMatchObject({ version: 3, transactionId: 'sbx_pay_new', orderReference: null, preOrderData: null, status: 'authorized' });
      await expect(db.tx((tx) => updatePayment(tx, randomUUID(), { amount: 1 }))).rejects.toThrow();
      await expect(db.tx((tx) => lockPayment(tx, randomUUID()))).rejects.toThrow();
    });

    t('history: per-payment sequence 1, 2, 3, trigger and details; listed oldest first', async () => {
      const n = newPayment();
      await db.tx((tx) => insertPayment(tx, n));
      const other = newPayment();
      await db.tx((tx) => insertPayment(tx, other));
      await db.tx(async (tx) => {
        await lockPayment(tx, n.id);
        expect((await appendHistory(tx, n.id, 'new', 'sync', 'req-1')).seq).toBe(1);
        expect((await appendHistory(tx, other.id, 'new', 'sync', 'req-x')).seq).toBe(1);
        expect((await appendHistory(tx, n.id, 'new', 'webhook', 'wh-1', { retryableDecline: { code: 'card_declined' } })).seq).toBe(2);
        expect((await appendHistory(tx, n.id, 'authorized', 'redirect', null)).seq).toBe(3);
      });
      const h = await listHistory(db, n.id);
      expect(h.map((x) => [x.seq, x.status, x.trigger, x.triggerRef])).toEqual([
        [1, 'new', 'sync', 'req-1'],
        [2, 'new', 'webhook', 'wh-1'],
        [3, 'authorized', 'redirect', null],
      ]);
      expect(h[1]!.details).toEqual({ retryableDecline: { code: 'card_declined' } });
      expect(h[0]!.details).toBeNull();
      expect(h[0]!.createdAt).toBeInstanceOf(Date);
      await expect(db.tx((tx) => appendHistory(tx, n.id, 'new', 'bogus' as never, null))).rejects.toThrow();
    });

    t('psp objects: recorded once, attributed to their tenant', async () => {
      const id = `sbx_pay_${randomUUID().slice(0, 8)}`;
      await db.tx(async (tx) => {
        await recordPspObject(tx, 'sandbox', id, 'repo-t1', 'payment');
        await recordPspObject(tx, 'sandbox', id, 'repo-t2', 'payment'); // first one wins
      });
      expect(await tenantForPspObject(db, 'sandbox', id)).toBe('repo-t1');
      expect(await tenantForPspObject(db, 'other-connector', id)).toBeNull();
      expect(await tenantForPspObject(db, 'sandbox', 'sbx_pay_none')).toBeNull();
    });

    t('a rolled back transaction leaves nothing', async () => {
      const n = newPayment();
      await expect(
        db.tx(async (tx) => {
          await insertPayment(tx, n);
          await appendHistory(tx, n.id, 'new', 'sync', null);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await findPaymentById(db, n.id)).toBeNull();
      expect(await listHistory(db, n.id)).toEqual([]);
    });

    t('new payments sharing one statement (group commit) each get their own outcome', async () => {
      const tenant = `repo-gc-${randomUUID().slice(0, 8)}`;
      const ps = Array.from({ length: 12 }, () => newPayment({ tenantIdentifier: tenant }));
      // webhooks already wait for payments 2, 5 and 9 (one of them in a state that does not count); the PSP objects
      // of 3 and 7 are recorded already; 4 has the order reference of a stored payment
      for (const [i, state] of [[2, 'waiting_for_payment'], [5, 'retrying'], [9, 'processed']] as const) {
        await db.query(
          `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state) VALUES ($1, $2, 'sandbox', $3, 'payment.authorized', 'test', $4, '{}', $5)`,
          [randomUUID(), tenant, `evt_${i}_${randomUUID()}`, ps[i]!.transactionId, state],
        );
      }
      for (const i of [3, 7]) await recordPspObject(db, 'sandbox', ps[i]!.transactionId, tenant, 'payment');
      const stored = newPayment({ tenantIdentifier: tenant });
      await db.tx((tx) => insertPayment(tx, stored));
      ps[4] = { ...ps[4]!, orderReference: stored.orderReference };
      const first = { trigger: 'sync' as const, ref: 'req', pspObjectKind: 'payment', waitingStates: ['waiting_for_payment', 'retrying', 'received'] };
      // a first payment holds the tenant's lane, so the twelve wait and go together
      const results = await Promise.all([insertNewPayment(db, newPayment({ tenantIdentifier: tenant }), first), ...ps.map((p) => insertNewPayment(db, p, first))]);
      const out = results.slice(1);
      out.forEach((r, i) => {
        if (i === 4) return expect(r).toBeNull();
        expect(r, `payment ${i}`).not.toBeNull();
        expect([i, r!.payment.id, r!.webhooksWaiting, r!.pspObjectRecorded]).toEqual([i, ps[i]!.id, i === 2 || i === 5, !(i === 3 || i === 7)]);
      });
      const history = await db.query<{ id: string | number; payment_id: string }>('SELECT id, payment_id FROM payment_status_history WHERE payment_id = ANY($1::text[])', [ps.map((p) => p.id)]);
      expect(history.rows).toHaveLength(11);
      for (const h of history.rows) expect(out.find((r) => r?.payment.id === h.payment_id)!.history.id).toBe(Number(h.id));
      expect(await findPaymentById(db, ps[4]!.id)).toBeNull();
    });

    if (name === 'PostgreSQL') {
      t('lockPayment serialises writers: the second waits and sees the first write', async () => {
        const n = newPayment();
        await db.tx((tx) => insertPayment(tx, n));
        let releaseFirst!: () => void;
        const firstHolds = new Promise<void>((r) => (releaseFirst = r));
        let firstLocked!: () => void;
        const locked = new Promise<void>((r) => (firstLocked = r));
        const order: string[] = [];
        const first = db.tx(async (tx) => {
          await lockPayment(tx, n.id);
          firstLocked();
          await firstHolds;
          await updatePayment(tx, n.id, { status: 'authorized' });
          order.push('first');
        });
        await locked;
        const second = db.tx(async (tx) => {
          const p = await lockPayment(tx, n.id);
          order.push(`second saw ${p.status} v${p.version}`);
        });
        await new Promise((r) => setTimeout(r, 50));
        releaseFirst();
        await Promise.all([first, second]);
        expect(order).toEqual(['first', 'second saw authorized v2']);
      });

      t('concurrent inserts of the same order: exactly one succeeds', async () => {
        const orderReference = `DE--race-${randomUUID().slice(0, 8)}`;
        const results = await Promise.all(Array.from({ length: 10 }, () => db.tx((tx) => insertPayment(tx, newPayment({ orderReference })))));
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      });
    }
  });
}

suite('PGlite', async () => {
  const db = await openDb({ kind: 'pglite-memory' });
  return { db, cleanup: () => db.close() };
});

suite('PostgreSQL', async () => {
  if (!(await postgresAvailable())) return null;
  return openTempPostgresDb();
});

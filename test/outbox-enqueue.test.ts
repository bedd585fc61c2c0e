/**
 * All messages of a transaction go to the outbox in one statement (issue 12): in the given order (seq), with per-tenant
 * strictly increasing timestamps within the call and across calls, messages already stored skipped without a gap in
 * order, several tenants in one call each on their own clock. Runs on PGlite and, when reachable, PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueue, type OutgoingMessage } from '../src/messaging/outbox.js';
import { claimOutboxRows } from '../src/store/outbox.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const APP = 'app-enqueue-test';
const msg = (tenant: string, name: string, eventKey: string): OutgoingMessage => ({
  tenantIdentifier: tenant,
  channel: 'payment-events',
  name,
  eventKey,
  orderingKey: 'payment/p',
  payload: { eventKey, nothing: null },
});

const rows = (db: Db, tenant: string) =>
  db.query<{ id: string; message_name: string; message_timestamp: string; attributes: Record<string, string>; payload: Record<string, unknown> }>(
    'SELECT id, message_name, message_timestamp, attributes, payload FROM outbox WHERE tenant_identifier = $1 ORDER BY seq',
    [tenant],
  );

const pgOk = await postgresAvailable();

for (const kind of ['pglite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !pgOk)(`enqueue on ${kind}`, () => {
    let db: Db;
    let drop: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      if (kind === 'postgres') {
        const tmp = await createTempDatabase();
        drop = tmp.drop;
        db = await openDb({ kind: 'postgres', url: tmp.url });
      } else db = await openDb({ kind: 'pglite-memory' });
      await migrate(db);
    });
    afterAll(async () => {
      await db?.close();
      await drop?.();
    });

    it('writes the messages of one call in one statement, in order, with increasing timestamps', async () => {
      const before = db.stats.statements;
      const ids = await db.tx((tx) => enqueue(tx, APP, [msg('e1', 'PaymentUpdated', 'a'), msg('e1', 'PaymentAuthorized', 'b'), msg('e1', 'PaymentCaptured', 'c')]));
      expect(db.stats.statements - before).toBe(1);
      const r = (await rows(db, 'e1')).rows;
      expect(r.map((x) => x.id)).toEqual(ids);
      expect(r.map((x) => x.message_name)).toEqual(['PaymentUpdated', 'PaymentAuthorized', 'PaymentCaptured']);
      for (const x of r) {
        expect(x.attributes.timestamp).toBe(x.message_timestamp);
        expect(x.payload).toEqual({ eventKey: expect.any(String) });
      }
      for (let i = 1; i < r.length; i++) expect(r[i]!.message_timestamp > r[i - 1]!.message_timestamp).toBe(true);
    });

    it('skips messages already stored and keeps the order of the new ones after the old', async () => {
      const ids = await db.tx((tx) => enqueue(tx, APP, [msg('e2', 'PaymentCreated', 'x')]));
      const again = await db.tx((tx) => enqueue(tx, APP, [msg('e2', 'PaymentUpdated', 'y'), msg('e2', 'PaymentCreated', 'x'), msg('e2', 'PaymentAuthorized', 'z')]));
      expect(again[1]).toBe(ids[0]);
      const r = (await rows(db, 'e2')).rows;
      expect(r.map((x) => x.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
      for (let i = 1; i < r.length; i++) expect(r[i]!.message_timestamp > r[i - 1]!.message_timestamp).toBe(true);
      // nothing new: nothing written, the clock does not move
      const clock = async () => (await db.query<{ t: string }>(`SELECT last_ts::text AS t FROM message_clock WHERE tenant_identifier = 'e2'`)).rows[0]!.t;
      const c0 = await clock();
      await db.tx((tx) => enqueue(tx, APP, [msg('e2', 'PaymentUpdated', 'y')]));
      expect(await clock()).toBe(c0);
      expect((await rows(db, 'e2')).rows).toHaveLength(3);
    });

    it('messages of two tenants in one call each get their tenant clock', async () => {
      await db.tx((tx) => enqueue(tx, APP, [msg('e3', 'PaymentCreated', '1'), msg('e4', 'PaymentCreated', '1'), msg('e3', 'PaymentUpdated', '2')]));
      expect((await rows(db, 'e3')).rows.map((x) => x.message_name)).toEqual(['PaymentCreated', 'PaymentUpdated']);
      expect((await rows(db, 'e4')).rows.map((x) => x.message_name)).toEqual(['PaymentCreated']);
    });

    it('concurrent transactions of one tenant never share or reverse a timestamp', async () => {
      await Promise.all(Array.from({ length: 10 }, (_, i) => db.tx((tx) => enqueue(tx, APP, [msg('e5', 'PaymentCreated', `c${i}`), msg('e5', 'PaymentUpdated', `c${i}`)]))));
      const r = (await rows(db, 'e5')).rows;
      expect(r).toHaveLength(20);
      const ts = r.map((x) => x.message_timestamp);
      expect(new Set(ts).size).toBe(20);
      for (let i = 1; i < ts.length; i++) expect(ts[i]! > ts[i - 1]!).toBe(true);
    });

    it.skipIf(kind === 'pglite')("the relay's claim of freshly written rows is a HOT update: each row stays on its page, no index gets an entry (migration 011's fillfactor)", async () => {
      // pages of fresh rows only, as a backlog has them: the rows of the tests above share pages that are full
      await db.query('TRUNCATE outbox');
      const payload = { paymentReference: 'x'.repeat(40), details: 'y'.repeat(400) }; // ~880 B rows, as the app writes them
      await db.tx((tx) => enqueue(tx, APP, Array.from({ length: 200 }, (_, i) => ({ ...msg('e6', 'PaymentUpdated', `h${i}`), orderingKey: `payment/h${i}`, payload }))));
      const before = await hotUpdates(db);
      // on one connection, whose statistics are then flushed for every other session to see
      await db.session(async (s) => {
        expect(await claimOutboxRows(s, 500, 60_000)).toHaveLength(200);
        await s.query('SELECT pg_stat_force_next_flush()');
      });
      await expect.poll(async () => (await hotUpdates(db)) - before, { timeout: 10_000 }).toBe(200);
    });
  });
}

/** HOT updates of the outbox so far (as its statistics show them after a flush). */
async function hotUpdates(s: Pick<Db, 'query'>): Promise<number> {
  await s.query('SELECT pg_stat_clear_snapshot()');
  const r = await s.query<{ n: string | number }>("SELECT n_tup_hot_upd AS n FROM pg_stat_user_tables WHERE relname = 'outbox'");
  return Number(r.rows[0]?.n ?? 0);
}

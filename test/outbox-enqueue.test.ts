/**
 * All messages of a transaction go to the outbox in one statement (issue 12): in the given order (seq), with strictly
 * increasing timestamps within the call and across calls, messages already stored skipped without a gap in order,
 * several tenants in one call. The message clock (migrations/012): the previous value plus 1 µs when the clock is not
 * ahead of it, carried over from the per-tenant clocks it replaced, and never held until commit: a second writer of
 * the same tenant commits while the first is still open. Runs on PGlite and, when reachable, PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueue, type OutgoingMessage } from '../src/messaging/outbox.js';
import { claimOutboxRows } from '../src/store/outbox.js';
import { listMigrations, migrate, openDb, type Db } from '../src/store/db.js';
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
      const clock = async () => (await db.query<{ t: string }>(`SELECT pg_sequence_last_value('message_clock_us')::text AS t`)).rows[0]!.t;
      const c0 = await clock();
      await db.tx((tx) => enqueue(tx, APP, [msg('e2', 'PaymentUpdated', 'y')]));
      expect(await clock()).toBe(c0);
      expect((await rows(db, 'e2')).rows).toHaveLength(3);
    });

    it('messages of two tenants in one call each go to their tenant', async () => {
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

    it('a clock not ahead of the last timestamp given out gives that timestamp plus 1 µs', async () => {
      // the last timestamp an hour ahead (as after the machine's clock was set back)
      await db.query(`SELECT setval('message_clock_us', (extract(epoch FROM clock_timestamp() + interval '1 hour') * 1000000)::bigint)`);
      const last = (await db.query<{ us: string }>(`SELECT pg_sequence_last_value('message_clock_us')::text AS us`)).rows[0]!.us;
      await db.tx((tx) => enqueue(tx, APP, [msg('e8', 'PaymentCreated', '1'), msg('e8', 'PaymentUpdated', '1')]));
      const r = (await rows(db, 'e8')).rows;
      const expected = (add: number): string => {
        const us = BigInt(last) + BigInt(add);
        return `${new Date(Number(us / 1000n)).toISOString().slice(0, 19)}.${String(us % 1_000_000n).padStart(6, '0')}`;
      };
      expect(r.map((x) => x.message_timestamp)).toEqual([expected(1), expected(2)]);
    });

    it('the clock carries on from the per-tenant clocks it replaced (migration 012)', async () => {
      const tmp = kind === 'postgres' ? await createTempDatabase() : undefined;
      const old = tmp ? await openDb({ kind: 'postgres', url: tmp.url }) : await openDb({ kind: 'pglite-memory' });
      try {
        await old.session(async (s) => {
          await s.query('CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
          for (const m of listMigrations().filter((x) => x.version < '012')) {
            await s.exec(m.sql);
            await s.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
          }
        });
        // a tenant whose last message is far ahead of this machine's clock
        await old.query(`INSERT INTO message_clock (tenant_identifier, last_ts) VALUES ('e9', '2099-01-02 03:04:05.678901+00')`);
        expect(await migrate(old)).toContain('012_message_clock_unlocked');
        await old.tx((tx) => enqueue(tx, APP, [msg('e10', 'PaymentCreated', '1')]));
        expect((await rows(old, 'e10')).rows.map((x) => x.message_timestamp)).toEqual(['2099-01-02T03:04:05.678902']);
        expect((await old.query(`SELECT to_regclass('message_clock') AS t`)).rows[0]).toEqual({ t: null });
      } finally {
        await old.close();
        await tmp?.drop();
      }
    });

    it.skipIf(kind === 'pglite')('a second writer of the same tenant does not wait for the first one to commit, and the order of seq and timestamps is the order they were taken in', async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let written!: () => void;
      const wrote = new Promise<void>((r) => (written = r));
      const first = db.tx(async (tx) => {
        await enqueue(tx, APP, [msg('e7', 'PaymentCreated', 'first')]);
        written();
        await held;
      });
      await wrote;
      try {
        // with the clock's lock held until commit this waited for `first` (forever here): failing after 20 s says so
        const second = db.tx((tx) => enqueue(tx, APP, [{ ...msg('e7', 'PaymentCreated', 'second'), orderingKey: 'payment/q' }]));
        const outcome = await Promise.race([second.then(() => 'committed'), new Promise((r) => setTimeout(() => r('still waiting after 20 s'), 20_000))]);
        expect(outcome).toBe('committed');
        expect((await rows(db, 'e7')).rows.map((x) => x.payload.eventKey)).toEqual(['second']);
      } finally {
        release();
        await first;
      }
      const r = (await db.query<{ k: string; seq: string; message_timestamp: string }>(
        "SELECT payload->>'eventKey' AS k, seq::text, message_timestamp FROM outbox WHERE tenant_identifier = 'e7' ORDER BY seq",
      )).rows;
      expect(r.map((x) => x.k)).toEqual(['first', 'second']);
      expect(r[1]!.message_timestamp > r[0]!.message_timestamp).toBe(true);
    }, 30_000);

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

/**
 * Table statistics keep up with growth. The embedded database (PGlite has no autovacuum): after the worker's interval
 * the payments table has been analyzed, and a table that grew is analyzed within seconds. PostgreSQL (autovacuum starts
 * a minute late): a grown table is analyzed within seconds too, so a connection's cached plan of the relay's claim,
 * built while the outbox was empty, is replaced by one that uses the ordering-key index.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, migrate, type Db } from '../src/store/db.js';
import { analyzeGrownTables, createStatisticsWorker } from '../src/store/maintenance.js';
import { CLAIM_SQL } from '../src/store/outbox.js';
import { migratedTempDatabase, postgresAvailable } from './helpers/services.js';

describe('embedded maintenance', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({ kind: 'pglite-memory' });
    await migrate(db);
  });
  afterAll(() => db?.close());

  const analyzed = async (): Promise<number> =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_user_tables WHERE relname = 'payments' AND last_analyze IS NOT NULL`)).rows[0]!.n;

  it('runs ANALYZE on its interval', async () => {
    expect(await analyzed()).toBe(0);
    const [worker] = createStatisticsWorker(db, { warn: () => undefined }, 100);
    expect(worker).toBeDefined();
    worker!.start();
    const end = Date.now() + 10_000;
    while ((await analyzed()) === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await worker!.stop();
    expect(await analyzed()).toBe(1);
  });

  it('analyzes a table as soon as it grew: the inbox lookup by PSP object then uses its index', async () => {
    // a fresh database, never analyzed (as the server's after its migrations)
    const fresh = await openDb({ kind: 'pglite-memory' });
    await migrate(fresh);
    const db = fresh;
    // a burst of webhooks for 2,000 PSP objects (four events each)
    await db.query(
      `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload)
       SELECT 'in_' || i, 'burst', 'sandbox', 'evt_' || i, 'payment.authorized', 'test', 'obj_' || (i % 2000), '{}'::jsonb
       FROM generate_series(1, 8000) i`,
    );
    const plan = async (): Promise<string> =>
      (
        await db.query<{ 'QUERY PLAN': string }>(
          // the lookup of lockInboxRowWithOlder (src/store/webhook-inbox.ts)
          `EXPLAIN SELECT w.*, o.id AS older_id FROM webhook_inbox w
           LEFT JOIN LATERAL (
             SELECT x.id, x.state FROM webhook_inbox x
             WHERE x.tenant_identifier = w.tenant_identifier AND x.connector = w.connector AND x.psp_object_id = w.psp_object_id AND x.id <> w.id
               AND x.state = ANY('{received,waiting_for_payment,retrying}'::text[]) AND (x.received_at < w.received_at OR (x.received_at = w.received_at AND x.id < w.id))
             ORDER BY x.received_at, x.id LIMIT 1) o ON true
           WHERE w.id = 'in_7777'`,
        )
      ).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    expect(await analyzeGrownTables(db)).toContain('webhook_inbox');
    expect(await db.query(`SELECT 1 FROM pg_stat_user_tables WHERE relname = 'webhook_inbox' AND last_analyze IS NOT NULL`)).toMatchObject({ rowCount: 1 });
    expect(await plan()).toContain('webhook_inbox_object_idx');
    expect(await analyzeGrownTables(db)).toEqual([]); // analyzed: not grown since
    // only the columns that choose plans were sampled (indexed or of fixed width), never the payloads
    const sampled = (await db.query<{ attname: string }>(`SELECT attname FROM pg_stats WHERE tablename = 'webhook_inbox'`)).rows.map((r) => r.attname);
    expect(sampled).toEqual(expect.arrayContaining(['tenant_identifier', 'psp_object_id', 'received_at', 'next_attempt_at', 'attempts']));
    expect(sampled).not.toContain('payload');
    expect(sampled).not.toContain('reason');
    // analyzed again once it doubled, not at every tenth more
    const more = (from: number, n: number) =>
      db.query(
        `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload)
         SELECT 'in_' || i, 'burst', 'sandbox', 'evt_' || i, 'payment.authorized', 'test', 'obj_' || (i % 2000), '{}'::jsonb FROM generate_series($1::int, $2::int) i`,
        [from, from + n - 1],
      );
    await more(8001, 4000); // half as many again
    expect(await analyzeGrownTables(db)).toEqual([]);
    await more(12_001, 6000); // now more than twice the rows of the last ANALYZE
    expect(await analyzeGrownTables(db)).toEqual(['webhook_inbox']);
    await fresh.close();
  });

  it('creates WAL segments at their size instead of writing them full of zeros first', async () => {
    expect((await db.query<{ wal_init_zero: string }>('SHOW wal_init_zero')).rows[0]!.wal_init_zero).toBe('off');
  });

  it('the worker checks for grown tables on its own interval', async () => {
    await db.query(`INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload)
       SELECT 'in2_' || i, 'burst2', 'sandbox', 'evt2_' || i, 'payment.authorized', 'test', 'obj_' || i, '{}'::jsonb FROM generate_series(1, 8000) i`);
    const pages = async (): Promise<number> => (await db.query<{ relpages: number }>(`SELECT relpages FROM pg_class WHERE relname = 'webhook_inbox'`)).rows[0]!.relpages;
    const before = await pages();
    const [worker] = createStatisticsWorker(db, { warn: () => undefined }, 3_600_000, 50);
    worker!.start();
    const end = Date.now() + 10_000;
    while ((await pages()) === before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await worker!.stop();
    expect(await pages()).toBeGreaterThan(before);
  });
});

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('table statistics on PostgreSQL', () => {
  const database = migratedTempDatabase();

  it("a grown outbox is analyzed within seconds: the relay's claim, planned while it was empty, then uses the ordering-key index", async () => {
    const db = database();
    await db.session(async (s) => {
      // as the app's connections do: the claim prepared and its generic plan built while the outbox is empty
      await s.query('SET plan_cache_mode = force_generic_plan');
      await s.query(`PREPARE claim AS ${CLAIM_SQL}`);
      for (let i = 0; i < 3; i++) await s.query('EXECUTE claim(500, 60000)');
      // a backlog: 3,000 pending messages, three per ordering key
      await s.query(
        `INSERT INTO outbox (id, tenant_identifier, channel, message_name, ordering_key, attributes, payload, message_timestamp)
         SELECT 'm' || i, 'stats', 'payment-events', 'PaymentUpdated', 'payment/' || (i % 1000), '{}'::jsonb, jsonb_build_object('pad', repeat('x', 600)), '2026-01-01T00:00:00.000000'
         FROM generate_series(1, 3000) i`,
      );
      const plan = async (): Promise<string> =>
        (await s.query<{ 'QUERY PLAN': string }>('EXPLAIN EXECUTE claim(500, 60000)')).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(await plan()).toContain('Seq Scan on outbox e'); // the stale plan: the whole outbox for every candidate
      const [worker] = createStatisticsWorker(db, { warn: () => undefined }, 3_600_000, 50);
      expect(worker).toBeDefined();
      worker!.start();
      try {
        await expect
          .poll(async () => (await db.query(`SELECT 1 FROM pg_stat_user_tables WHERE relname = 'outbox' AND last_analyze IS NOT NULL`)).rowCount, { timeout: 15_000 })
          .toBe(1);
      } finally {
        await worker!.stop();
      }
      const after = await plan();
      expect(after).not.toContain('Seq Scan on outbox e');
      expect(after).toContain('outbox_key_idx');
      await s.query('DEALLOCATE claim');
      await s.query('RESET plan_cache_mode');
    });
  });

  it('the whole database is left to autovacuum: the worker analyzes grown tables only', async () => {
    const db = database();
    const [worker] = createStatisticsWorker(db, { warn: () => undefined }, 50, 3_600_000);
    worker!.start();
    await new Promise((r) => setTimeout(r, 500));
    await worker!.stop();
    expect((await db.query(`SELECT 1 FROM pg_stat_user_tables WHERE relname = 'payments' AND last_analyze IS NOT NULL`)).rowCount).toBe(0);
  });
});

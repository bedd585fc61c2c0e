/**
 * The embedded database gets table statistics regularly (PGlite has no autovacuum): after the worker's interval the
 * payments table has been analyzed; on PostgreSQL no such worker exists (autovacuum does it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, migrate, type Db } from '../src/store/db.js';
import { createEmbeddedMaintenanceWorker } from '../src/store/maintenance.js';

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
    const [worker] = createEmbeddedMaintenanceWorker(db, { warn: () => undefined }, 100);
    expect(worker).toBeDefined();
    worker!.start();
    const end = Date.now() + 10_000;
    while ((await analyzed()) === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await worker!.stop();
    expect(await analyzed()).toBe(1);
  });

  it('is not created for PostgreSQL', () => {
    expect(createEmbeddedMaintenanceWorker({ ...db, kind: 'postgres' } as Db, { warn: () => undefined })).toEqual([]);
  });
});

/**
 * A transaction's BEGIN travels with its first statement (issue 12: one exchange with the database less per
 * transaction). What must hold: the first statement runs inside the transaction (rolled back with it), a failing first
 * statement leaves nothing behind and the connection usable, a named statement that fails to parse is not taken for
 * prepared afterwards, and a transaction that runs no statement opens none. Exchanges are counted in `db.stats`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../src/store/db.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();

/** The exchange counts of `db.stats`, the same on both databases. */
async function expectExchanges(db: Db): Promise<void> {
  const before = { ...db.stats };
  await db.tx(async (tx) => {
    await tx.query('SELECT 1');
    await tx.query('SELECT 2');
  });
  expect(db.stats.statements - before.statements).toBe(2);
  expect(db.stats.exchanges - before.exchanges).toBe(3);
  const mid = { ...db.stats };
  expect(await db.tx(async () => 'nothing to do')).toBe('nothing to do');
  expect(db.stats.exchanges - mid.exchanges).toBe(0);
  const end = { ...db.stats };
  await db.query('SELECT 3');
  expect(db.stats.exchanges - end.exchanges).toBe(1);
}

describe.skipIf(!pgOk)('BEGIN with the first statement (PostgreSQL)', () => {
  let db: Db;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const tmp = await createTempDatabase();
    drop = tmp.drop;
    db = await openDb({ kind: 'postgres', url: tmp.url });
    await db.query('CREATE TABLE tb_t (id int PRIMARY KEY, v text NOT NULL)');
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  const rows = async (): Promise<unknown[]> => (await db.query('SELECT id, v FROM tb_t ORDER BY id')).rows;

  it('the first statement is part of the transaction: rolled back with it', async () => {
    await db.query('DELETE FROM tb_t');
    // twice: the second run of a text is a named (prepared) statement, the first an unnamed one
    for (const id of [1, 2]) {
      await expect(
        db.tx(async (tx) => {
          await tx.query('INSERT INTO tb_t (id, v) VALUES ($1, $2)', [id, 'first']);
          const open = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM tb_t WHERE v = 'first'`);
          expect(open.rows[0]!.n).toBe(1); // seen inside the transaction
          throw new Error('give up');
        }),
      ).rejects.toThrow('give up');
    }
    expect(await rows()).toEqual([]);
    // and committed with it
    await db.tx(async (tx) => {
      await tx.query('INSERT INTO tb_t (id, v) VALUES ($1, $2)', [3, 'kept']);
      await tx.query('UPDATE tb_t SET v = $2 WHERE id = $1', [3, 'kept twice']);
    });
    expect(await rows()).toEqual([{ id: 3, v: 'kept twice' }]);
  });

  it('every statement of a transaction, the first included, runs in one database transaction', async () => {
    const ids = await db.tx(async (tx) => {
      const a = await tx.query<{ x: string }>('SELECT txid_current()::text AS x');
      const b = await tx.query<{ x: string }>('SELECT txid_current()::text AS x');
      return [a.rows[0]!.x, b.rows[0]!.x];
    });
    expect(ids[0]).toBe(ids[1]); // one transaction: the same id for both statements
  });

  it('a failing first statement: its error (with SQLSTATE) reaches the caller, nothing stays open, the connection serves the next transaction', async () => {
    await db.query('DELETE FROM tb_t');
    await db.query(`INSERT INTO tb_t (id, v) VALUES (10, 'x')`);
    for (let i = 0; i < 3; i++) {
      const err = await db
        .tx(async (tx) => {
          await tx.query('INSERT INTO tb_t (id, v) VALUES ($1, $2)', [10, 'duplicate']);
          return 'not reached';
        })
        .catch((e: unknown) => e as { code?: string });
      expect(err).toMatchObject({ code: '23505' });
      // the next transaction on the pool (the same connection: the pool hands out the last released one) works
      expect(await db.tx(async (tx) => (await tx.query<{ one: number }>('SELECT 1 AS one')).rows)).toEqual([{ one: 1 }]);
    }
    const open = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
    expect(open.rows[0]!.n).toBe(0);
  });

  it('a named statement that failed to parse is parsed again on its next use (not taken for prepared)', async () => {
    await db.query('CREATE TABLE tb_gone (id int)');
    const sql = 'SELECT count(*)::int AS n FROM tb_gone WHERE id > $1';
    // first use: unnamed; the text is named from its second use on
    expect(await db.tx(async (tx) => (await tx.query(sql, [0])).rows)).toEqual([{ n: 0 }]);
    await db.query('DROP TABLE tb_gone');
    // second use: named, new to the connection, its Parse fails
    await expect(db.tx((tx) => tx.query(sql, [0]))).rejects.toMatchObject({ code: '42P01' });
    await db.query('CREATE TABLE tb_gone (id int)');
    await db.query('INSERT INTO tb_gone VALUES (5)');
    // third use: parsed again (taken for prepared, it would fail with "prepared statement ... does not exist")
    for (let i = 0; i < 3; i++) expect(await db.tx(async (tx) => (await tx.query(sql, [0])).rows)).toEqual([{ n: 1 }]);
  });

  it('exchanges: one per statement (BEGIN rides with the first) plus the COMMIT; a transaction without statements has none', () => expectExchanges(db));
});

describe('exchanges on the embedded database (PGlite): the same count', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({ kind: 'pglite-memory' });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('one per statement plus the COMMIT; none for a transaction without statements', () => expectExchanges(db));
});

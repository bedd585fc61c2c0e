/**
 * Named (prepared) statements on PostgreSQL (issue 12, `DATABASE_PREPARED_STATEMENTS`): a text run again is prepared
 * once per connection (visible in `pg_prepared_statements`), a one-off text is not, `off` prepares nothing, and a
 * prepared `SELECT *` whose table gained a column meanwhile (a migration by another instance) still answers: outside a
 * transaction at once, inside one after the transaction's own retry. The same setting on the embedded database
 * (PGlite): the last describe block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { MAX_PREPARED_STATEMENTS, openDb, type Db } from '../src/store/db.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();

/** The names prepared on the connection a transaction runs on. */
const preparedNames = (db: Db) =>
  db.tx(async (tx) => (await tx.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements ORDER BY name')).rows);

describe.skipIf(!pgOk)('prepared statements on PostgreSQL', () => {
  let url = '';
  let drop: (() => Promise<void>) | undefined;
  const open: Db[] = [];
  const connect = async (preparedStatements?: boolean): Promise<Db> => {
    const db = await openDb({ kind: 'postgres', url, preparedStatements });
    open.push(db);
    return db;
  };
  beforeAll(async () => {
    const tmp = await createTempDatabase();
    url = tmp.url;
    drop = tmp.drop;
  });
  afterAll(async () => {
    for (const db of open) await db.close();
    await drop?.();
  });

  it('DATABASE_PREPARED_STATEMENTS: on by default, off turns it off, anything else is a configuration error', () => {
    const base = { DATABASE_URL: 'postgres://x@127.0.0.1:5432/x', ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
    expect(loadConfig(base).database).toMatchObject({ kind: 'postgres', preparedStatements: true });
    expect(loadConfig({ ...base, DATABASE_PREPARED_STATEMENTS: 'off' }).database).toMatchObject({ preparedStatements: false });
    expect(() => loadConfig({ ...base, DATABASE_PREPARED_STATEMENTS: 'yes' })).toThrow(/DATABASE_PREPARED_STATEMENTS.*on, off/);
  });

  it('a text used again is prepared once per connection; a one-off text is not', async () => {
    const db = await connect();
    // one connection in the pool for a deterministic view: every statement of a transaction runs on the same one
    await db.tx(async (tx) => {
      await tx.query('SELECT $1::int AS once', [1]);
      for (let i = 0; i < 3; i++) await tx.query('SELECT $1::int AS again', [i]);
      const names = (await tx.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements')).rows;
      expect(names.filter((n) => n.statement.includes('AS again')).map((n) => n.name)).toEqual([expect.stringMatching(/^oacp_\d+$/)]);
      expect(names.some((n) => n.statement.includes('AS once'))).toBe(false);
    });
  });

  it('off: nothing is prepared', async () => {
    const db = await connect(false);
    for (let i = 0; i < 3; i++) await db.tx((tx) => tx.query('SELECT $1::int AS never', [i]));
    expect((await preparedNames(db)).some((n) => n.statement.includes('AS never'))).toBe(false);
  });

  it('a prepared SELECT * whose table gained a column answers with the new column', async () => {
    const db = await connect();
    const other = await connect(false);
    await other.query('CREATE TABLE prep_t (id int PRIMARY KEY, a text)');
    await other.query("INSERT INTO prep_t VALUES (1, 'x')");
    const sql = 'SELECT * FROM prep_t WHERE id = $1';
    // prepared on every pooled connection the reads reach
    for (let i = 0; i < 12; i++) expect((await db.query(sql, [1])).rows).toEqual([{ id: 1, a: 'x' }]);
    await other.query("ALTER TABLE prep_t ADD COLUMN b text NOT NULL DEFAULT 'new'");
    // outside a transaction: answered at once
    for (let i = 0; i < 12; i++) expect((await db.query(sql, [1])).rows).toEqual([{ id: 1, a: 'x', b: 'new' }]);
    // inside a transaction: no longer named, so a transaction succeeds
    expect(await db.tx(async (tx) => (await tx.query(sql, [1])).rows)).toEqual([{ id: 1, a: 'x', b: 'new' }]);
  });

  it('a refused plan inside a transaction: the transaction runs once more and succeeds (the caller sees no error)', async () => {
    const db = await connect();
    const other = await connect(false);
    await other.query('CREATE TABLE prep_u (id int PRIMARY KEY)');
    await other.query('INSERT INTO prep_u VALUES (1)');
    const sql = 'SELECT * FROM prep_u WHERE id = $1';
    let runs = 0;
    const inTx = () =>
      db.tx(async (tx) => {
        runs++;
        await tx.query('INSERT INTO prep_log VALUES (default)');
        return (await tx.query(sql, [1])).rows;
      });
    await other.query('CREATE TABLE prep_log (n serial PRIMARY KEY)');
    for (let i = 0; i < 12; i++) await inTx(); // prepared on the pooled connections
    await other.query('ALTER TABLE prep_u ADD COLUMN c int NOT NULL DEFAULT 5');
    runs = 0;
    for (let i = 0; i < 12; i++) expect(await inTx()).toEqual([{ id: 1, c: 5 }]);
    expect(runs).toBe(13); // one refused and rolled back, run once more
    // the refused run left nothing behind: 12 + 12 rows, not 25
    expect((await other.query<{ n: number }>('SELECT count(*)::int AS n FROM prep_log')).rows[0]!.n).toBe(24);
  });

  it(`at most ${MAX_PREPARED_STATEMENTS} texts are prepared per Db (generated texts cannot grow it without bound)`, async () => {
    const db = await connect();
    await db.tx(async (tx) => {
      for (let i = 0; i < MAX_PREPARED_STATEMENTS + 50; i++) {
        await tx.query(`SELECT ${i} AS n`);
        await tx.query(`SELECT ${i} AS n`);
      }
      const n = (await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'oacp_%'")).rows[0]!.n;
      expect(n).toBe(MAX_PREPARED_STATEMENTS);
    });
  });
});

/**
 * The embedded database (PGlite) under the same setting: PGlite's own `query` parses and plans every run (an unnamed
 * Parse); a repeated text is now named (Parse once, then Bind/Execute/Sync in one call). Results, errors, transactions
 * and the single connection's locking must be what PGlite's `query` gives.
 */
describe('prepared statements on the embedded database (PGlite)', () => {
  const open: Db[] = [];
  const lite = async (preparedStatements?: boolean): Promise<Db> => {
    const db = await openDb({ kind: 'pglite-memory', preparedStatements });
    open.push(db);
    return db;
  };
  const names = async (db: Db) => (await db.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements')).rows;
  afterAll(async () => {
    for (const db of open) await db.close();
  });

  it('DATABASE_PREPARED_STATEMENTS applies to the embedded database too', () => {
    expect(loadConfig({}).database).toMatchObject({ kind: 'pglite', preparedStatements: true });
    expect(loadConfig({ DATABASE_URL: 'memory://', DATABASE_PREPARED_STATEMENTS: 'off' }).database).toEqual({ kind: 'pglite-memory', preparedStatements: false, thread: true });
  });

  it('a text used again is prepared once; a one-off text is not; off prepares nothing', async () => {
    const db = await lite();
    await db.query('SELECT $1::int AS once', [1]);
    for (let i = 0; i < 3; i++) expect((await db.query('SELECT $1::int AS again', [i])).rows).toEqual([{ again: i }]);
    await db.tx(async (tx) => {
      for (let i = 0; i < 3; i++) expect((await tx.query('SELECT $1::int AS in_tx', [i])).rows).toEqual([{ in_tx: i }]);
    });
    const prepared = await names(db);
    expect(prepared.filter((n) => n.statement.includes('AS again')).map((n) => n.name)).toEqual([expect.stringMatching(/^oacp_\d+$/)]);
    expect(prepared.filter((n) => n.statement.includes('AS in_tx'))).toHaveLength(1);
    expect(prepared.some((n) => n.statement.includes('AS once'))).toBe(false);

    const off = await lite(false);
    for (let i = 0; i < 3; i++) await off.query('SELECT $1::int AS never', [i]);
    expect((await names(off)).some((n) => n.statement.includes('AS never'))).toBe(false);
  });

  it('a named run answers exactly what the unnamed first run answered (bigint, jsonb, timestamptz, arrays, booleans, null)', async () => {
    const db = await lite();
    const sql = 'SELECT $1::bigint AS big, $2::jsonb AS j, $3::timestamptz AS t, $4::text[] AS arr, $5::boolean AS b, $6::text AS n, $7::int[] AS ints';
    const params = [9_007_199_254_740_991, JSON.stringify({ a: [1, 'x"y'], b: null }), new Date('2026-12-03T10:11:12.345Z'), ['a', 'b"c', 'd,e', ''], true, null, [1, 2]];
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push((await db.query(sql, params)).rows);
    expect(runs[0]).toEqual([{ big: 9_007_199_254_740_991, j: { a: [1, 'x"y'], b: null }, t: new Date('2026-12-03T10:11:12.345Z'), arr: ['a', 'b"c', 'd,e', ''], b: true, n: null, ints: [1, 2] }]);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    // row counts of writes, named or not
    await db.query('CREATE TABLE lite_rows (id int PRIMARY KEY)');
    for (let i = 0; i < 3; i++) expect((await db.query('INSERT INTO lite_rows VALUES ($1), ($2)', [2 * i, 2 * i + 1])).rowCount).toBe(2);
    expect((await db.query('DELETE FROM lite_rows WHERE id < $1', [4])).rowCount).toBe(4);
    expect((await db.query('DELETE FROM lite_rows WHERE id < $1', [4])).rowCount).toBe(0);
  });

  it('an error of a named statement carries its SQLSTATE, leaves the connection usable and rolls its transaction back', async () => {
    const db = await lite();
    await db.query('CREATE TABLE lite_u (id int PRIMARY KEY)');
    const insert = 'INSERT INTO lite_u VALUES ($1)';
    await db.query(insert, [1]);
    await db.query(insert, [2]); // named from here on
    await expect(db.query(insert, [1])).rejects.toMatchObject({ code: '23505' });
    await db.query(insert, [3]);
    await expect(
      db.tx(async (tx) => {
        await tx.query(insert, [4]);
        await tx.query(insert, [1]);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect((await db.query<{ id: number }>('SELECT id FROM lite_u ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2, 3]);
    // a statement that does not parse is not recorded as prepared: it fails the same way every time
    for (let i = 0; i < 3; i++) await expect(db.query('SELEC $1::int', [1])).rejects.toMatchObject({ code: '42601' });
    expect((await db.query('SELECT $1::int AS ok', [7])).rows).toEqual([{ ok: 7 }]);
  });

  it('a statement outside a transaction waits for an open transaction (one connection), and sees its commit', async () => {
    const db = await lite();
    await db.query('CREATE TABLE lite_w (id int PRIMARY KEY)');
    const count = 'SELECT count(*)::int AS n FROM lite_w';
    await db.query(count);
    await db.query(count); // named from here on
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const didInsert = new Promise<void>((r) => (inserted = r));
    const tx = db.tx(async (t) => {
      await t.query('INSERT INTO lite_w VALUES ($1)', [1]);
      inserted();
      await gate;
    });
    await didInsert;
    let answered: number | undefined;
    const outside = db.query<{ n: number }>(count).then((r) => (answered = r.rows[0]!.n));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBeUndefined(); // not run inside the open transaction
    release();
    await tx;
    await outside;
    expect(answered).toBe(1);
  });

  it('a prepared SELECT * whose table gained a column answers with the new column, in and outside a transaction', async () => {
    const db = await lite();
    await db.query('CREATE TABLE lite_p (id int PRIMARY KEY, a text)');
    await db.query("INSERT INTO lite_p VALUES (1, 'x')");
    const sql = 'SELECT * FROM lite_p WHERE id = $1';
    const inTx = () => db.tx(async (tx) => (await tx.query(sql, [1])).rows);
    for (let i = 0; i < 3; i++) expect(await inTx()).toEqual([{ id: 1, a: 'x' }]);
    await db.query("ALTER TABLE lite_p ADD COLUMN b text NOT NULL DEFAULT 'new'");
    expect(await inTx()).toEqual([{ id: 1, a: 'x', b: 'new' }]);
    expect((await db.query(sql, [1])).rows).toEqual([{ id: 1, a: 'x', b: 'new' }]);
  });
});

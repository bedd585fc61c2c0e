/**
 * Named (prepared) statements on PostgreSQL (issue 12, `DATABASE_PREPARED_STATEMENTS`): a text run again is prepared
 * once per connection (visible in `pg_prepared_statements`), a one-off text is not, `off` prepares nothing, and a
 * prepared `SELECT *` whose table gained a column meanwhile (a migration by another instance) still answers: outside a
 * transaction at once, inside one after the transaction's own retry.
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

/**
 * The embedded database in a worker thread of its own (DATABASE_EMBEDDED_THREAD, default on) must answer exactly what
 * it answers in the server's thread: the same rows and types, the same errors (SQLSTATE and fields), the same
 * transaction semantics on its one connection, notifications, and durability in a data directory. Beyond that: a
 * dead thread is an unavailable database (a 503, not a hang), and an idle thread never keeps a process alive.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { isDatabaseUnavailable, openDb, type Db } from '../src/store/db.js';
import { projectRoot } from '../src/paths.js';

describe('DATABASE_EMBEDDED_THREAD', () => {
  it('is on by default for both embedded kinds, off on request, and a bad value is a configuration error', () => {
    expect(loadConfig({}).database).toMatchObject({ kind: 'pglite', thread: true });
    expect(loadConfig({ DATABASE_URL: 'memory://', DATABASE_EMBEDDED_THREAD: 'off' }).database).toMatchObject({ kind: 'pglite-memory', thread: false });
    expect(() => loadConfig({ DATABASE_EMBEDDED_THREAD: 'yes' })).toThrow(/DATABASE_EMBEDDED_THREAD/);
  });
});

for (const thread of [true, false]) {
  describe(`the embedded database ${thread ? 'in its own thread' : 'in the server thread'}`, () => {
    // one database for the cases of this mode (each uses tables and channels of its own): opening one takes seconds
    let shared: Promise<Db> | undefined;
    const lite = (): Promise<Db> => (shared ??= openDb({ kind: 'pglite-memory', thread }));
    afterAll(async () => {
      await (await shared)?.close().catch(() => undefined);
    });

    it('rows keep their types: bigint as number, jsonb, timestamptz as Date, arrays, booleans, null, bytea', async () => {
      const db = await lite();
      const sql = 'SELECT $1::bigint AS big, $2::jsonb AS j, $3::timestamptz AS t, $4::text[] AS arr, $5::boolean AS b, $6::text AS n, $7::bytea AS bin';
      const params = [9_007_199_254_740_991, JSON.stringify({ a: [1, 'x"y'] }), new Date('2026-12-03T10:11:12.345Z'), ['a', 'b,c'], false, null, Buffer.from([0, 1, 255])];
      for (let i = 0; i < 3; i++) {
        const [row] = (await db.query<Record<string, unknown>>(sql, params)).rows;
        expect(row).toMatchObject({ big: 9_007_199_254_740_991, j: { a: [1, 'x"y'] }, arr: ['a', 'b,c'], b: false, n: null });
        expect(row!.t).toBeInstanceOf(Date);
        expect((row!.t as Date).toISOString()).toBe('2026-12-03T10:11:12.345Z');
        expect([...(row!.bin as Uint8Array)]).toEqual([0, 1, 255]);
      }
    });

    it('an error carries its SQLSTATE and fields, rolls its transaction back, and the next statement works', async () => {
      const db = await lite();
      await db.query('CREATE TABLE t_err (id int PRIMARY KEY)');
      await db.query('INSERT INTO t_err VALUES (1)');
      const err = await db
        .tx(async (tx) => {
          await tx.query('INSERT INTO t_err VALUES ($1)', [2]);
          await tx.query('INSERT INTO t_err VALUES ($1)', [1]);
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: '23505', constraint: 't_err_pkey', table: 't_err', message: expect.stringContaining('duplicate key') });
      expect(isDatabaseUnavailable(err)).toBe(false);
      expect((await db.query<{ id: number }>('SELECT id FROM t_err ORDER BY id')).rows).toEqual([{ id: 1 }]);
      await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
    });

    it('a statement outside a transaction waits for the open transaction and sees its commit; a rollback leaves nothing', async () => {
      const db = await lite();
      await db.query('CREATE TABLE t_wait (id int PRIMARY KEY)');
      let inserted!: () => void;
      const didInsert = new Promise<void>((r) => (inserted = r));
      const tx = db.tx(async (t) => {
        await t.query('INSERT INTO t_wait VALUES (1)');
        inserted();
        await new Promise((r) => setTimeout(r, 150));
        await t.query('INSERT INTO t_wait VALUES (2)');
      });
      await didInsert;
      const seen = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t_wait');
      await tx;
      expect(seen.rows).toEqual([{ n: 2 }]);
      await expect(
        db.tx(async (t) => {
          await t.query('INSERT INTO t_wait VALUES (3)');
          throw new Error('app decided to roll back');
        }),
      ).rejects.toThrow('app decided to roll back');
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t_wait')).rows).toEqual([{ n: 2 }]);
      // transactions run one after the other, none lost
      await Promise.all([10, 11, 12, 13].map((id) => db.tx(async (t) => void (await t.query('INSERT INTO t_wait VALUES ($1)', [id])))));
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t_wait')).rows).toEqual([{ n: 6 }]);
    });

    it('a transaction whose first statement fails is over: later statements of it fail, nothing stays open; one without statements just returns', async () => {
      const db = await lite();
      await db.query('CREATE TABLE t_first (id int PRIMARY KEY)');
      await db.query('INSERT INTO t_first VALUES (1)');
      let later: unknown;
      const err = await db
        .tx(async (t) => {
          await t.query('INSERT INTO t_first VALUES (1)').catch(async (e: unknown) => {
            later = await t.query('INSERT INTO t_first VALUES (2)').catch((e2: unknown) => e2);
            throw e;
          });
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: '23505' });
      expect(later).toBeInstanceOf(Error);
      expect((await db.query<{ id: number }>('SELECT id FROM t_first ORDER BY id')).rows).toEqual([{ id: 1 }]);
      expect(await db.tx(async () => 'nothing to run')).toBe('nothing to run');
      // two statements sent at once open one transaction
      await db.tx(async (t) => void (await Promise.all([t.query('INSERT INTO t_first VALUES (3)'), t.query('INSERT INTO t_first VALUES (4)')])));
      expect((await db.query<{ id: number }>('SELECT id FROM t_first ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 3 }, { id: 4 }]);
    });

    it('notifications arrive; after unlisten they stop', async () => {
      const db = await lite();
      const got: string[] = [];
      const live: boolean[] = [];
      const unlisten = await db.listen('oacp_thread_test', (p) => got.push(p), (l) => live.push(l));
      await db.query("SELECT pg_notify('oacp_thread_test', 'one')");
      await expect.poll(() => got).toEqual(['one']);
      await unlisten();
      await db.query("SELECT pg_notify('oacp_thread_test', 'two')");
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual(['one']);
      expect(live).toEqual([true, false]);
    });

    it.runIf(thread)('a parameter that cannot be sent to the thread is a rejected statement, not a crash', async () => {
      const db = await lite();
      await expect(db.query('SELECT $1::text AS x', [Symbol('not data')])).rejects.toThrow();
      expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });

    it('after close every statement fails as an unavailable database', async () => {
      const db = await openDb({ kind: 'pglite-memory', thread });
      await db.close();
      const err = await db.query('SELECT 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      if (thread) expect(isDatabaseUnavailable(err)).toBe(true);
    });
  });
}

describe('the embedded database thread and its process', () => {
  it('keeps what a data directory holds across a close and a reopen', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'oap-lite-thread-'));
    try {
      const db = await openDb({ kind: 'pglite', dataDir });
      await db.query('CREATE TABLE t_keep (v text)');
      await db.tx(async (t) => void (await t.query('INSERT INTO t_keep VALUES ($1)', ['kept'])));
      await db.close();
      const again = await openDb({ kind: 'pglite', dataDir });
      try {
        expect((await again.query('SELECT v FROM t_keep')).rows).toEqual([{ v: 'kept' }]);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps a process alive while a statement waits, lets it exit when idle without close, whatever its Node options', () => {
    const db = pathToFileURL(join(projectRoot, 'dist', 'src', 'store', 'db.js')).href;
    const script = `
      const { openDb } = await import(${JSON.stringify(db)});
      const d = await openDb({ kind: 'pglite-memory' });
      const { rows } = await d.query('SELECT 41 + 1 AS answer');
      console.log(JSON.stringify(rows));`;
    // with Node options the worker must not inherit (V8 flags as main.ts sets them, a heap limit, a -e script's type)
    const r = spawnSync(process.execPath, ['--no-wasm-tier-up', '--max-old-space-size=300', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 25_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('[{"answer":42}]');
    expect(r.status).toBe(0);
  });
});

/**
 * One database port over two drivers: PostgreSQL through `pg` (production) and PGlite (embedded default).
 * Both return the same JS types: int8/bigint columns come back as JS numbers (money fits in 2^53),
 * timestamptz as Date, jsonb as parsed values. Ids are text UUIDs.
 *
 * Rule: inside `db.tx(fn)` use only the `tx` handle; calling `db.query` from inside a PGlite
 * transaction would wait for the transaction itself (PGlite has one connection).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { DatabaseConfig } from '../config.js';
import { migrationsDir } from '../paths.js';
import { INT8_OID, int8ToNumber, openLiteEngine, type LiteEngineApi, type LiteLocation, type LiteResult } from './pglite.js';
import { openLiteThread } from './pglite-thread.js';

export type Row = Record<string, unknown>;

/**
 * A write of one repository carried by a statement of another (a common table expression): `cte(n)` is its SQL
 * (`name AS (...)`, a name unique in the statement), whose parameters, `params`, are numbered from `$n`.
 */
export interface CompanionWrite {
  cte(firstParam: number): string;
  params: unknown[];
}

/** An update of the row `id` of `table` as a companion write; `sets(n)` names its parameters from `$n` on. */
export function updateByIdWrite(name: string, table: string, id: string, sets: (firstParam: number) => string, params: readonly unknown[]): CompanionWrite {
  return { cte: (n) => `${name} AS (UPDATE ${table} SET ${sets(n + 1)} WHERE id = $${n})`, params: [id, ...params] };
}

/** Several companion writes carried by one statement (their CTE names must differ). */
export function companionWrites(...ws: CompanionWrite[]): CompanionWrite {
  return {
    cte: (n) => {
      let next = n;
      return ws
        .map((w) => {
          const sql = w.cte(next);
          next += w.params.length;
          return sql;
        })
        .join(',\n');
    },
    params: ws.flatMap((w) => w.params),
  };
}

/**
 * An array parameter the planner cannot count: `(SELECT $n::text[])`. PostgreSQL plans a named statement with its
 * parameters' values for the first five runs (custom plans), then keeps one generic plan when that is estimated no
 * dearer. A bare array parameter spoils this: a custom plan counts the array's elements (`unnest`, `= ANY`), the
 * generic plan assumes ten, so the generic plan always looked dearer and every run of the statement was planned
 * again (a payment's state change with its messages: planned 3,577 times in 3,577 runs on the embedded database,
 * README "Benchmark"). Behind a scalar sub-select both estimate alike and the statement is planned once per connection.
 */
export function unplannedArray(param: string): string {
  return `(SELECT ${param})`;
}

/** A companion write on its own, when there is no statement to carry it. */
export async function runCompanionWrite(q: Queryable, w: CompanionWrite): Promise<void> {
  await q.query(`WITH ${w.cte(1)} SELECT 1`, w.params);
}

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface Queryable {
  query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

export interface Tx extends Queryable {
  /** Runs after a successful COMMIT (not on rollback). An error thrown by a callback is logged with its cause, never rethrown. */
  afterCommit(cb: () => void): void;
}

export interface Session extends Queryable {
  /** Runs a script of several statements (no parameters). */
  exec(sql: string): Promise<void>;
}

/**
 * Statement and transaction counters of one Db (the benchmark prints them per hot path). `trace`, when set to an
 * array, receives each statement's SQL text (diagnostics only; never set in production).
 */
export interface DbStats {
  statements: number;
  transactions: number;
  /**
   * Exchanges with the database: one per statement (a transaction's BEGIN travels with its first statement) and one
   * per COMMIT or ROLLBACK. Each is a wait for the database's answer (on PostgreSQL a network round trip).
   */
  exchanges: number;
  trace?: string[];
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  readonly description: string;
  readonly stats: DbStats;
  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs fn on one dedicated session (needed for session-level advisory locks). */
  session<T>(fn: (s: Session) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` (on PostgreSQL through a dedicated connection, reconnected by itself). `onLive(true)` once
   * listening; `onLive(false)` as soon as notifications may have been missed (connection lost). Returns an unsubscribe.
   */
  listen(channel: string, onNotify: (payload: string) => void, onLive: (live: boolean) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}


function count(stats: DbStats, sql: string): void {
  stats.statements++;
  stats.exchanges++;
  stats.trace?.push(sql);
}

/** Where after-commit callback errors go (the runtime sets the app's logger); stderr JSON by default. */
export type AfterCommitErrorSink = (err: unknown) => void;
let afterCommitErrorSink: AfterCommitErrorSink = (err) => {
  const e = err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
  process.stderr.write(`${JSON.stringify({ level: 50, msg: 'after-commit callback failed (the transaction is committed)', err: e })}\n`);
};
export function setAfterCommitErrorSink(sink: AfterCommitErrorSink): void {
  afterCommitErrorSink = sink;
}

function runAfterCommit(cbs: Array<() => void>): void {
  for (const cb of cbs) {
    try {
      cb();
    } catch (err) {
      // the transaction is committed: the error cannot undo it, but it is not swallowed silently
      try {
        afterCommitErrorSink(err);
      } catch {
        /* a failing logger must not break the caller */
      }
    }
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006',
]);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable|Cannot use a pool after calling end|connection timeout|terminating connection/i;

/** True when an error means "the database cannot be reached right now" (retry later), not a bad statement. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable)) return true; // AggregateError of a dual-stack connect
  return e.cause !== undefined && e.cause !== err && isDatabaseUnavailable(e.cause);
}

export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/** PostgreSQL time limits: a stalled connect or a black-holed connection fails instead of hanging a request or a worker. */
export const PG_CONNECT_TIMEOUT_MS = 5_000;
export const PG_QUERY_TIMEOUT_MS = 60_000;
export const PG_STATEMENT_TIMEOUT_MS = 55_000;

/**
 * A checked-out pg client has no 'error' listener of the pool: a connection drop while it is in use would be an
 * unhandled 'error' event (the process dies). Listen while checked out; the query in progress fails on its own.
 */
async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; release: (destroy?: boolean) => void }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  let released = false;
  return {
    client,
    release: (destroy = false) => {
      if (released) return;
      released = true;
      client.off('error', onError);
      client.release(destroy || broken !== undefined ? (broken ?? true) : undefined);
    },
  };
}

/** A SQL text is prepared from its second use on (one-off statements such as console queries stay unnamed). */
export const PREPARE_FROM_USE = 2;
/** At most this many distinct texts are prepared per Db (each connection keeps a plan per name). */
export const MAX_PREPARED_STATEMENTS = 300;
const MAX_TRACKED_TEXTS = 5_000;

/**
 * Named statements on PostgreSQL: a statement run again and again is parsed and planned once per connection and then
 * only bound and executed. On the initialize path this took PostgreSQL's CPU per payment from 4.5 to 2.6 ms (README
 * "Benchmark"). pg sends the Parse with the name the first time a connection meets it.
 *
 * A migration run by another instance can change the columns of a prepared `SELECT *`/`RETURNING *`; PostgreSQL then
 * refuses the old plan ("cached plan must not change result type", SQLSTATE 0A000). That text is never named again;
 * the statement (outside a transaction) or the whole rolled-back transaction is run once more.
 */
class StatementNames {
  private readonly names = new Map<string, string>();
  private readonly uses = new Map<string, number>();
  private readonly unnamed = new Set<string>();
  private next = 0;
  constructor(private readonly enabled: boolean) {}

  config(sql: string, params: unknown[] | undefined): pg.QueryConfig {
    const name = this.nameOf(sql);
    return name === undefined ? { text: sql, values: params } : { name, text: sql, values: params };
  }

  /** The name `sql` runs under (undefined: unnamed, parsed and planned on every run). */
  nameOf(sql: string): string | undefined {
    if (!this.enabled) return undefined;
    const known = this.names.get(sql);
    if (known !== undefined || this.names.size >= MAX_PREPARED_STATEMENTS || this.unnamed.has(sql)) return known;
    const n = (this.uses.get(sql) ?? 0) + 1;
    if (n < PREPARE_FROM_USE) {
      if (this.uses.size < MAX_TRACKED_TEXTS) this.uses.set(sql, n);
      return undefined;
    }
    this.uses.delete(sql);
    const name = `oacp_${++this.next}`;
    this.names.set(sql, name);
    return name;
  }

  /** True (and the text is never named again) when err is PostgreSQL refusing a prepared plan whose result changed. */
  refused(sql: string, err: unknown): boolean {
    const e = err as { code?: unknown; message?: unknown } | null;
    if (!this.names.has(sql) || e?.code !== '0A000' || typeof e.message !== 'string' || !/cached plan must not change result type/i.test(e.message)) return false;
    this.names.delete(sql);
    if (this.unnamed.size < MAX_PREPARED_STATEMENTS) this.unnamed.add(sql);
    return true;
  }
}

/** The parts of pg's connection and Query that `QueryAfterBegin` uses (pg 8's own methods; not in @types/pg). */
interface PgWire {
  parse(m: { text: string; name?: string; types?: unknown[] }): void;
  bind(m: { portal?: string; statement?: string; values?: unknown[] }): void;
  execute(m: { portal?: string; rows?: number }): void;
  submittedNamedStatements: Record<string, string | undefined>;
}
interface PgQueryInternals {
  readonly name?: string;
  readonly text: string;
  readonly types?: unknown[];
  hasBeenParsed(connection: PgWire): boolean;
  prepare(connection: PgWire): void;
  handleCommandComplete(msg: unknown, connection: PgWire): void;
}
const PgQuery = pg.Query as unknown as new (config: pg.QueryConfig) => PgQueryInternals;

/**
 * The first statement of a transaction with its BEGIN in the same exchange: BEGIN's Parse, Bind and Execute are written
 * ahead of the statement's own messages, before the one Sync (extended query protocol), so opening a transaction costs
 * no round trip of its own. The database runs them in order and stops at the first error until the Sync: the statement
 * never runs outside the transaction. BEGIN answers with a CommandComplete of its own, which is not the statement's.
 *
 * pg records a statement name as parsed on the connection at the first ParseComplete of the exchange: a named statement
 * new to the connection is therefore parsed first (a Parse does not depend on the transaction), so that ParseComplete
 * is its own and a statement that fails to parse is never taken for prepared.
 */
class QueryAfterBegin extends PgQuery {
  private beginAnswered = false;

  override prepare(connection: PgWire): void {
    if (this.name && !this.hasBeenParsed(connection)) {
      connection.parse({ text: this.text, name: this.name, types: this.types });
      connection.submittedNamedStatements[this.name] = this.text;
    }
    connection.parse({ text: 'BEGIN', name: '' });
    connection.bind({ portal: '', statement: '' });
    connection.execute({ portal: '', rows: 0 });
    super.prepare(connection);
  }

  override handleCommandComplete(msg: unknown, connection: PgWire): void {
    if (!this.beginAnswered) {
      this.beginAnswered = true;
      return;
    }
    super.handleCommandComplete(msg, connection);
  }
}

/** Runs `config` on `client` as the first statement of a transaction (BEGIN sent with it). */
function queryAfterBegin(client: pg.PoolClient, config: pg.QueryConfig): Promise<pg.QueryResult> {
  return new Promise((resolve, reject) => {
    const q = new QueryAfterBegin({ ...config, queryMode: 'extended' } as pg.QueryConfig) as unknown as pg.Submittable;
    client.query(q as never, ((err: Error | undefined, res: pg.QueryResult) => (err ? reject(err) : resolve(res))) as never);
  });
}

class PgDb implements Db {
  readonly kind = 'postgres' as const;
  readonly description: string;
  readonly stats: DbStats = { statements: 0, transactions: 0, exchanges: 0 };
  private readonly listeners = new Set<() => Promise<void>>();
  private readonly statements: StatementNames;
  constructor(private readonly pool: pg.Pool, private readonly url: string, prepared = true) {
    this.statements = new StatementNames(prepared);
    const u = new URL(url);
    this.description = `PostgreSQL ${u.hostname}:${u.port || '5432'}${u.pathname}`;
  }

  async query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
    count(this.stats, sql);
    let r: pg.QueryResult;
    try {
      r = await this.pool.query(this.statements.config(sql, params));
    } catch (err) {
      if (!this.statements.refused(sql, err)) throw err;
      r = await this.pool.query(sql, params as unknown[]);
    }
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }

  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.runTx(fn, false);
  }

  /**
   * One transaction. When PostgreSQL refused a prepared plan in it (a table changed under a prepared `SELECT *`), the
   * rolled-back transaction runs once more, the refused text now unprepared: the caller never sees that error. BEGIN
   * travels with the first statement (`QueryAfterBegin`), as on the embedded database; a transaction that runs no
   * statement opens none.
   */
  private async runTx<T>(fn: (tx: Tx) => Promise<T>, retried: boolean): Promise<T> {
    const { client, release } = await checkout(this.pool);
    const cbs: Array<() => void> = [];
    let refusedPlan = false;
    this.stats.transactions++;
    let begun = false; // BEGIN goes with the first statement; a transaction that runs none opens none
    const handle: Tx = {
      query: async <R = Row>(sql: string, params?: unknown[]) => {
        count(this.stats, sql);
        try {
          const config = this.statements.config(sql, params);
          const first = !begun;
          begun = true;
          const r = first ? await queryAfterBegin(client, config) : await client.query(config);
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        } catch (err) {
          if (this.statements.refused(sql, err)) refusedPlan = true;
          throw err;
        }
      },
      afterCommit: (cb) => cbs.push(cb),
    };
    try {
      const result = await fn(handle);
      if (begun) {
        this.stats.exchanges++;
        await client.query('COMMIT');
      }
      release();
      runAfterCommit(cbs);
      return result;
    } catch (err) {
      try {
        if (begun) {
          this.stats.exchanges++;
          await client.query('ROLLBACK');
        }
        release();
      } catch {
        release(true);
      }
      if (refusedPlan && !retried) return this.runTx(fn, true);
      throw err;
    }
  }

  async session<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const { client, release } = await checkout(this.pool);
    let failed = false;
    try {
      return await fn({
        query: async <R = Row>(sql: string, params?: unknown[]) => {
          const r = await client.query(sql, params as unknown[]);
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        },
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
    } catch (err) {
      failed = isDatabaseUnavailable(err);
      throw err;
    } finally {
      // a session may hold session-level state (advisory locks): a broken one is destroyed, not reused
      release(failed);
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void, onLive: (live: boolean) => void): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    let delay = 500;
    const lost = (c: pg.Client): void => {
      if (client !== c) return;
      client = undefined;
      onLive(false);
      c.end().catch(() => undefined);
      if (!stopped) retry = setTimeout(connect, delay).unref() as NodeJS.Timeout;
      delay = Math.min(delay * 2, 5_000);
    };
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, keepAlive: true });
      client = c;
      c.on('error', () => lost(c));
      c.on('end', () => lost(c));
      c.on('notification', (n) => {
        if (n.channel === channel) onNotify(n.payload ?? '');
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        if (stopped || client !== c) return;
        delay = 500;
        onLive(true);
      } catch {
        lost(c);
      }
    };
    await connect();
    const unsubscribe = async (): Promise<void> => {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      this.listeners.delete(unsubscribe);
      onLive(false);
      await c?.end().catch(() => undefined);
    };
    this.listeners.add(unsubscribe);
    return unsubscribe;
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners].map((u) => u()));
    await this.pool.end();
  }
}

/** The embedded database: the engine (this thread or its own, `pglite.ts`) behind the same naming and retries as PgDb. */
class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  readonly stats: DbStats = { statements: 0, transactions: 0, exchanges: 0 };
  private readonly statements: StatementNames;
  constructor(
    private readonly engine: LiteEngineApi,
    prepared = true,
  ) {
    this.statements = new StatementNames(prepared);
  }

  get description(): string {
    return this.engine.description;
  }

  /** One statement on its own (autocommit): waits for an open transaction, as PGlite's `query` does. */
  async query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
    count(this.stats, sql);
    const name = this.statements.nameOf(sql);
    let r: LiteResult;
    try {
      r = await this.engine.run(sql, params ?? [], name);
    } catch (err) {
      if (!this.statements.refused(sql, err)) throw err;
      r = await this.engine.run(sql, params ?? [], undefined);
    }
    return { rows: r.rows as T[], rowCount: Math.max(r.affectedRows, r.rows.length) };
  }

  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.runTx(fn, false);
  }

  /**
   * One transaction; run once more (the text now unnamed) when the database refused a prepared plan in it, as PgDb
   * does. BEGIN travels with the first statement (one exchange with the database's thread less per transaction, during
   * which the transaction lock would be held idle); a transaction that runs no statement opens none.
   */
  private async runTx<T>(fn: (tx: Tx) => Promise<T>, retried: boolean): Promise<T> {
    const cbs: Array<() => void> = [];
    let refusedPlan = false;
    this.stats.transactions++;
    let opened: Promise<number> | undefined; // the transaction's handle, once its first statement was sent
    const run = async (sql: string, params: readonly unknown[], name: string | undefined): Promise<LiteResult> => {
      if (opened) return this.engine.runIn(await opened, sql, params, name);
      const first = this.engine.beginWith(sql, params, name);
      // a failed first statement ends the transaction (rolled back): every later statement of it fails the same way
      opened = first.then((f) => f.tx);
      opened.catch(() => undefined);
      return (await first).result;
    };
    let result: T;
    try {
      result = await fn({
        query: async <R = Row>(sql: string, params?: unknown[]) => {
          count(this.stats, sql);
          const name = this.statements.nameOf(sql);
          try {
            const r = await run(sql, params ?? [], name);
            return { rows: r.rows as R[], rowCount: Math.max(r.affectedRows, r.rows.length) };
          } catch (err) {
            if (this.statements.refused(sql, err)) refusedPlan = true;
            throw err;
          }
        },
        afterCommit: (cb) => cbs.push(cb),
      });
      if (opened) {
        this.stats.exchanges++;
        await this.engine.end(await opened, true);
      }
    } catch (err) {
      // rolls back (nothing to do when the COMMIT or the first statement failed: the transaction is over); the first
      // error is the one reported
      const tx = await opened?.catch(() => undefined);
      if (tx !== undefined) {
        this.stats.exchanges++;
        await this.engine.end(tx, false).catch(() => undefined);
      }
      if (refusedPlan && !retried) return this.runTx(fn, true);
      throw err;
    }
    runAfterCommit(cbs);
    return result;
  }

  async session<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    return fn({
      query: (sql, params) => this.query(sql, params),
      exec: (sql) => this.engine.exec(sql),
    });
  }

  async listen(channel: string, onNotify: (payload: string) => void, onLive: (live: boolean) => void): Promise<() => Promise<void>> {
    // One process owns a PGlite database: its notifications cannot be missed.
    const unlisten = await this.engine.listen(channel, onNotify);
    onLive(true);
    return async () => {
      onLive(false);
      await unlisten().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

export async function openDb(cfg: DatabaseConfig): Promise<Db> {
  if (cfg.kind === 'postgres') {
    const pool = new pg.Pool({
      connectionString: cfg.url,
      max: 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
      query_timeout: PG_QUERY_TIMEOUT_MS,
      statement_timeout: PG_STATEMENT_TIMEOUT_MS,
      keepAlive: true,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? int8ToNumber : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    pool.on('error', () => {
      /* an idle client lost its connection: the pool drops it and the next query opens a new one */
    });
    const db = new PgDb(pool, cfg.url, cfg.preparedStatements !== false);
    await db.query('SELECT 1');
    return db;
  }
  const where: LiteLocation = cfg.kind === 'pglite-memory' ? { kind: 'pglite-memory' } : { kind: 'pglite', dataDir: cfg.dataDir };
  const engine = cfg.thread === false ? await openLiteEngine(where) : await openLiteThread(where);
  return new PgliteDb(engine, cfg.preparedStatements !== false);
}

const MIGRATION_LOCK = 727_001_2;

/**
 * The app's migrations plus those of the enabled connectors (`extraDirs`, e.g. `migrations/sandbox/`), in one order by
 * file name. A version is the file name without `.sql`, so versions must be unique across folders.
 */
export function listMigrations(extraDirs: readonly string[] = []): Array<{ version: string; sql: string }> {
  const files: Array<{ name: string; dir: string }> = [];
  for (const dir of [migrationsDir, ...extraDirs]) {
    for (const f of readdirSync(dir)) if (/^\d{3}_[a-z0-9_]+\.sql$/.test(f)) files.push({ name: f, dir });
  }
  return files
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => ({ version: f.name.replace(/\.sql$/, ''), sql: readFileSync(join(f.dir, f.name), 'utf8') }));
}

/** Applies pending migrations in order; safe when several processes start at once (advisory lock). */
export async function migrate(db: Db, extraDirs: readonly string[] = []): Promise<string[]> {
  const applied: string[] = [];
  await db.session(async (s) => {
    await s.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await s.query('CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const done = new Set((await s.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const m of listMigrations(extraDirs)) {
        if (done.has(m.version)) continue;
        await s.query('BEGIN');
        try {
          await s.exec(m.sql);
          await s.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
          await s.query('COMMIT');
        } catch (err) {
          await s.query('ROLLBACK');
          throw new Error(`migration ${m.version} failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  });
  return applied;
}

/** Whether the database answers at all (readiness probe): throws when it does not. */
export async function pingDatabase(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}

/**
 * How many migrations are not applied. Only a missing `schema_migrations` table (nothing migrated yet) counts every
 * migration as pending; any other error (database unreachable, permissions) is thrown for the caller to report.
 */
export async function pendingMigrations(db: Queryable, extraDirs: readonly string[] = []): Promise<number> {
  let versions: Array<{ version: string }>;
  try {
    versions = (await db.query<{ version: string }>('SELECT version FROM schema_migrations')).rows;
  } catch (err) {
    if ((err as { code?: unknown }).code === '42P01') return listMigrations(extraDirs).length; // undefined_table
    throw err;
  }
  const done = new Set(versions.map((r) => r.version));
  return listMigrations(extraDirs).filter((m) => !done.has(m.version)).length;
}

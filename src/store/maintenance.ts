/**
 * Table statistics that keep up with growth. PGlite runs PostgreSQL in single-user mode: no autovacuum daemon, so the
 * planner keeps the statistics of the empty tables it started with and, as payments grow, picks plans for tiny tables
 * (measured: CPU per initialize-payment from ~14 ms to 57-74 ms after ~20,000 payments; an ANALYZE brought it back;
 * the webhook inbox's "older event of this object?" lookup 9 ms instead of 0.3 ms at 11,000 rows: a burst of webhooks
 * was processed at ~65 events/s until the next ANALYZE). The worker therefore analyzes a table as soon as it grew (its
 * size against twice the page count of its last ANALYZE, plus a minimum), checked every few seconds, and the whole
 * embedded database every 5 minutes. (PGlite does not keep PostgreSQL's modification counters,
 * `pg_stat_user_tables.n_mod_since_analyze`: the size is what is there.)
 *
 * On PostgreSQL autovacuum analyzes, but only from its first round a minute after start and then at 10 % more rows;
 * meanwhile each connection keeps the generic plan of a prepared statement that it built while the table was tiny, until
 * an ANALYZE of the table invalidates it (measured on a new installation: the relay's claim checked "an earlier
 * undelivered message on this ordering key?" by a sequential scan of the whole outbox for every candidate row, 5.3 ms
 * per claim instead of 0.55 ms). There only the growth check runs; autovacuum does the rest.
 */
import type { Worker } from '../runtime.js';
import type { Db } from './db.js';

export const EMBEDDED_ANALYZE_EVERY_MS = 5 * 60_000;
export const GROWTH_CHECK_MS = 3_000;
/** Advisory lock (two-key form) of one grown-table ANALYZE round, so instances sharing a database take turns. */
const STATISTICS_LOCK = '7270012, 3';

export async function analyzeTables(db: Pick<Db, 'query'>): Promise<void> {
  await db.query('ANALYZE');
}

/**
 * ANALYZE of every table of the app's schema that grew past twice the page count of its last ANALYZE plus 8 pages
 * (64 kB: small tables are planned well enough either way); returns their names (none when another instance is
 * analyzing). Twice, not autovacuum's 10 %: the planner scales a table's row count by its current size itself, so what
 * an ANALYZE adds between doublings is column statistics of the same shape, while each one holds the embedded
 * database's one connection (tens of ms on a table of thousands of pages: during a burst of webhooks, ANALYZEs every
 * few seconds were the longest waits of their answers). Only the columns that choose plans are sampled: those an
 * index holds, and those of fixed width (amounts, counts, timestamps); payloads, message bodies and error texts are
 * never searched by value. The row and page counts are updated either way; the full ANALYZE every few minutes
 * (embedded) or autovacuum (PostgreSQL) still covers every column. With several instances on one PostgreSQL database,
 * one of them analyzes at a time; the others skip the round.
 */
export async function analyzeGrownTables(db: Pick<Db, 'query' | 'tx'>): Promise<string[]> {
  const grown = await db.query<{ name: string; columns: string | null }>(
    `SELECT quote_ident(c.relname) AS name,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND (t.typlen > 0 OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY (i.indkey)))) AS columns
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r'
       AND pg_relation_size(c.oid) / current_setting('block_size')::int > c.relpages * 2 + 8`,
  );
  if (grown.rows.length === 0) return [];
  // a small sample (statistics target 20 instead of 100): enough to choose plans, and the ANALYZE holds the embedded
  // database's one connection for a fifth of the time during a burst; the full ANALYZE refines it later
  const done = await db.tx(async (tx) => {
    if (!(await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(${STATISTICS_LOCK}) AS ok`)).rows[0]!.ok) return false;
    await tx.query('SET LOCAL default_statistics_target = 20');
    await tx.query(`ANALYZE ${grown.rows.map((r) => (r.columns ? `${r.name} (${r.columns})` : r.name)).join(', ')}`);
    return true;
  });
  return done ? grown.rows.map((r) => r.name) : [];
}

/**
 * A worker that analyzes grown tables every `checkEveryMs` and, on the embedded database, the whole database every
 * `everyMs`. Errors are logged; one run at a time.
 */
export function createStatisticsWorker(
  db: Db,
  log: { warn(obj: unknown, msg: string): void },
  everyMs = EMBEDDED_ANALYZE_EVERY_MS,
  checkEveryMs = GROWTH_CHECK_MS,
): Worker[] {
  const timers: NodeJS.Timeout[] = [];
  let running: Promise<void> | undefined;
  const run = (what: () => Promise<unknown>) => (): void => {
    if (running) return;
    running = what()
      .then(() => undefined)
      .catch((err: unknown) => log.warn({ err }, 'table statistics: ANALYZE failed; tried again later'))
      .finally(() => {
        running = undefined;
      });
  };
  return [
    {
      name: 'table-statistics',
      start() {
        if (timers.length > 0) return;
        if (db.kind === 'pglite') timers.push(setInterval(run(() => analyzeTables(db)), everyMs));
        timers.push(setInterval(run(() => analyzeGrownTables(db)), checkEveryMs));
        for (const t of timers) t.unref();
      },
      async stop() {
        for (const t of timers.splice(0)) clearInterval(t);
        await running;
      },
    },
  ];
}

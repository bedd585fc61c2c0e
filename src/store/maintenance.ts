/**
 * Table statistics for the embedded database. PGlite runs PostgreSQL in single-user mode: no autovacuum daemon, so the
 * planner keeps the statistics of the empty tables it started with and, as payments grow, picks plans for tiny tables
 * (measured: CPU per initialize-payment from ~14 ms to 57-74 ms after ~20,000 payments; an ANALYZE brought it back).
 * The embedded maintenance worker runs ANALYZE regularly; PostgreSQL's own autovacuum does this in production.
 */
import type { Worker } from '../runtime.js';
import type { Db } from './db.js';

export const EMBEDDED_ANALYZE_EVERY_MS = 5 * 60_000;

export async function analyzeTables(db: Pick<Db, 'query'>): Promise<void> {
  await db.query('ANALYZE');
}

/** A worker that runs ANALYZE every `everyMs` on the embedded database (nothing on PostgreSQL). Errors are logged. */
export function createEmbeddedMaintenanceWorker(db: Db, log: { warn(obj: unknown, msg: string): void }, everyMs = EMBEDDED_ANALYZE_EVERY_MS): Worker[] {
  if (db.kind !== 'pglite') return [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = (): void => {
    running = analyzeTables(db)
      .catch((err: unknown) => log.warn({ err }, 'embedded database: ANALYZE failed; tried again later'))
      .finally(() => {
        running = undefined;
      });
  };
  return [
    {
      name: 'embedded-analyze',
      start() {
        if (timer) return;
        timer = setInterval(tick, everyMs);
        timer.unref();
      },
      async stop() {
        clearInterval(timer);
        timer = undefined;
        await running;
      },
    },
  ];
}

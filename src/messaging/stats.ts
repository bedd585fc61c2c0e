/**
 * Outbox figures for /metrics (messages.md 7): pending and dead rows, and the age of the oldest pending row.
 */
import type { Queryable } from '../store/db.js';

export interface OutboxStats {
  pending: number;
  dead: number;
  /** Seconds since the oldest pending row was written; 0 when nothing is pending. */
  oldestPendingAgeSeconds: number;
}

export async function outboxStats(db: Queryable): Promise<OutboxStats> {
  const r = await db.query<{ pending: number; dead: number; age: number | string | null }>(
    `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
            count(*) FILTER (WHERE state = 'dead')::int AS dead,
            EXTRACT(EPOCH FROM (now() - min(created_at) FILTER (WHERE state = 'pending')))::float8 AS age
     FROM outbox WHERE state <> 'delivered'`,
  );
  const row = r.rows[0];
  const age = row?.age === null || row?.age === undefined ? 0 : Math.max(0, Number(row.age));
  return { pending: Number(row?.pending ?? 0), dead: Number(row?.dead ?? 0), oldestPendingAgeSeconds: age };
}

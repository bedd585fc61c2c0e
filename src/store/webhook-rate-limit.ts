/**
 * Shared counters of rejected webhooks (`webhook_rate_limit`, migrations/006_webhook_rate_limit.sql): one row per source
 * address and one-minute window, incremented atomically, so every app instance on the database sees one count.
 */
import type { Queryable } from './db.js';

/** Counts one rejection of `source` in window `windowMinute`; returns the window's count including this one. */
export async function countWebhookRejection(q: Queryable, source: string, windowMinute: number): Promise<number> {
  const r = await q.query<{ rejections: number }>(
    `INSERT INTO webhook_rate_limit (source, window_minute, rejections) VALUES ($1, $2, 1)
     ON CONFLICT (source, window_minute) DO UPDATE SET rejections = webhook_rate_limit.rejections + 1
     RETURNING rejections`,
    [source, windowMinute],
  );
  return Number(r.rows[0]!.rejections);
}

/** Deletes the counters of windows before `windowMinute`. */
export async function deleteWebhookRejectionsBefore(q: Queryable, windowMinute: number): Promise<number> {
  return (await q.query('DELETE FROM webhook_rate_limit WHERE window_minute < $1', [windowMinute])).rowCount;
}

/** The repository as the webhook use case's port (`RejectionCounter` in src/app/receive-webhook.ts). */
export function webhookRejectionCounter(q: Queryable): { count(source: string, windowMinute: number): Promise<number>; prune(beforeMinute: number): Promise<void> } {
  return {
    count: (source, windowMinute) => countWebhookRejection(q, source.slice(0, 200), windowMinute),
    prune: async (beforeMinute) => {
      await deleteWebhookRejectionsBefore(q, beforeMinute);
    },
  };
}

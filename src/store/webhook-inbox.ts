/**
 * Webhook inbox rows (`webhook_inbox`, migrations/003_payments.sql): one verified PSP event per row, de-duplicated per
 * (tenant, connector, event id).
 */
import type { Queryable } from './db.js';

export interface NewInboxEvent {
  id: string;
  tenantIdentifier: string;
  connector: string;
  eventId: string;
  eventType: string;
  mode: 'test' | 'live';
  pspObjectId: string | null;
  payload: unknown;
  /** `received` (to process) or `ignored` (recorded only, with `reason`). */
  state: 'received' | 'ignored';
  reason: string | null;
  nextAttemptAt: Date;
}

/** Stores the event; false when the tenant already has this connector's event id (a duplicate delivery). */
export async function insertInboxEvent(q: Queryable, e: NewInboxEvent): Promise<boolean> {
  const r = await q.query<{ id: string }>(
    `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, reason, next_attempt_at, received_at, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, clock_timestamp(), CASE WHEN $9 = 'ignored' THEN clock_timestamp() END)
     ON CONFLICT (tenant_identifier, connector, event_id) DO NOTHING
     RETURNING id`,
    [e.id, e.tenantIdentifier, e.connector, e.eventId, e.eventType, e.mode, e.pspObjectId, JSON.stringify(e.payload), e.state, e.reason, e.nextAttemptAt],
  );
  return r.rows.length > 0;
}

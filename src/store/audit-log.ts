/**
 * Audit log of operator actions (migrations/008_console.sql): who, when, what, why. Written in the same transaction as
 * the action it records; read by the payment page (timeline) and the CLI.
 */
import type { Queryable } from './db.js';

export const AUDIT_ACTIONS = ['webhook.replay', 'webhook.discard', 'outbox.requeue', 'outbox.discard', 'command.retry'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export type AuditTargetKind = 'webhook' | 'outbox' | 'command';

export interface NewAuditEntry {
  actor: string;
  action: AuditAction;
  targetKind: AuditTargetKind;
  targetId: string;
  tenantIdentifier: string | null;
  paymentId: string | null;
  fromState: string;
  reason: string;
}

export interface AuditEntry extends NewAuditEntry {
  id: number;
  at: Date;
}

export async function insertAuditEntry(q: Queryable, e: NewAuditEntry): Promise<void> {
  await q.query(
    `INSERT INTO console_audit_log (actor, action, target_kind, target_id, tenant_identifier, payment_id, from_state, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [e.actor, e.action, e.targetKind, e.targetId, e.tenantIdentifier, e.paymentId, e.fromState, e.reason],
  );
}

function mapEntry(r: Record<string, unknown>): AuditEntry {
  return {
    id: Number(r.id),
    at: new Date(r.at as string),
    actor: String(r.actor),
    action: r.action as AuditAction,
    targetKind: r.target_kind as AuditTargetKind,
    targetId: String(r.target_id),
    tenantIdentifier: (r.tenant_identifier as string | null) ?? null,
    paymentId: (r.payment_id as string | null) ?? null,
    fromState: String(r.from_state),
    reason: String(r.reason),
  };
}

export async function auditOfPayment(q: Queryable, paymentId: string): Promise<AuditEntry[]> {
  const r = await q.query('SELECT * FROM console_audit_log WHERE payment_id = $1 ORDER BY at, id', [paymentId]);
  return r.rows.map(mapEntry);
}

export async function auditOfTarget(q: Queryable, kind: AuditTargetKind, id: string): Promise<AuditEntry[]> {
  const r = await q.query('SELECT * FROM console_audit_log WHERE target_kind = $1 AND target_id = $2 ORDER BY at, id', [kind, id]);
  return r.rows.map(mapEntry);
}

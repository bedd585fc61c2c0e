/**
 * Operator actions of the console and the CLI (issue 11): replay / discard a webhook, re-queue / discard an outbox row,
 * retry a command. Each one runs in ONE transaction: the row is locked, its state checked against the record machines
 * of states.md 5, the change written and the audit entry (who, when, what, why) stored with it. A row that is no
 * longer in a state the action applies to answers `already-handled` and nothing changes.
 *
 * The actions reuse the existing paths: a replayed webhook is processed by `processInboxRow` like a freshly stored
 * event (no PSP call: webhook processing only applies outcomes), a re-queued outbox row is `republish`ed with its id,
 * payload and timestamp (messages.md 4.3), a retried command becomes due for the command worker.
 */
import { commandInboxTransition, outboxTransition, webhookInboxTransition } from '../../domain/processing-status.js';
import { commandInboxSignal } from '../../messaging/command-inbox.js';
import { republish } from '../../messaging/outbox.js';
import { insertAuditEntry, type AuditAction } from '../../store/audit-log.js';
import {
  discardOutbox,
  discardWebhook,
  lockCommand,
  lockOutbox,
  lockWebhook,
  paymentIdForOrder,
  paymentIdForPspObject,
  requeueWebhook,
  retryCommandNow,
} from '../../store/console-actions.js';
import type { AppDeps } from '../context.js';
import { processInboxRow } from '../webhook-processing.js';

export type ActionName = 'webhook.replay' | 'webhook.discard' | 'outbox.requeue' | 'outbox.discard' | 'command.retry';

export interface Actor {
  /** e.g. `local:alice`, `oidc:<sub>`, `loopback`, `cli:<user>` */
  id: string;
}

export type ActionResult =
  | { kind: 'done'; paymentId: string | null; state: string }
  | { kind: 'not-found' }
  | { kind: 'already-handled'; state: string }
  | { kind: 'not-allowed'; state: string; message: string }
  | { kind: 'bad-reason' };

export const MAX_REASON = 1000;

/** A reason is required: 1 to 1000 characters after trimming. */
export function cleanReason(reason: unknown): string | null {
  if (typeof reason !== 'string') return null;
  const r = reason.trim();
  return r.length === 0 || r.length > MAX_REASON ? null : r;
}

const PAYMENT_KEY = /^[^/]+\/payment\/(.+)$/;

async function audit(tx: Parameters<typeof insertAuditEntry>[0], actor: Actor, action: AuditAction, target: { kind: 'webhook' | 'outbox' | 'command'; id: string; tenant: string | null; paymentId: string | null; from: string }, reason: string): Promise<void> {
  await insertAuditEntry(tx, {
    actor: actor.id,
    action,
    targetKind: target.kind,
    targetId: target.id,
    tenantIdentifier: target.tenant,
    paymentId: target.paymentId,
    fromState: target.from,
    reason,
  });
}

export async function replayWebhook(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown): Promise<ActionResult> {
  const reason = cleanReason(reasonIn);
  if (reason === null) return { kind: 'bad-reason' };
  const r = await deps.db.tx(async (tx): Promise<ActionResult> => {
    const w = await lockWebhook(tx, id);
    if (!w) return { kind: 'not-found' };
    if ((w.state !== 'dead' && w.state !== 'expired') || !webhookInboxTransition(w.state, 'received').ok) return { kind: 'already-handled', state: w.state };
    await requeueWebhook(tx, id, w.state, `replayed by ${actor.id} (was ${w.state}, first received ${w.receivedAt.toISOString()})`);
    const paymentId = w.pspObjectId ? await paymentIdForPspObject(tx, w.tenantIdentifier, w.pspObjectId) : null;
    await audit(tx, actor, 'webhook.replay', { kind: 'webhook', id, tenant: w.tenantIdentifier, paymentId, from: w.state }, reason);
    return { kind: 'done', paymentId, state: 'received' };
  });
  if (r.kind !== 'done') return r;
  const state = await processInboxRow(deps, id);
  return { ...r, state: state ?? r.state };
}

export async function discardHeldWebhook(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown): Promise<ActionResult> {
  const reason = cleanReason(reasonIn);
  if (reason === null) return { kind: 'bad-reason' };
  return deps.db.tx(async (tx): Promise<ActionResult> => {
    const w = await lockWebhook(tx, id);
    if (!w) return { kind: 'not-found' };
    if (w.state !== 'waiting_for_order') {
      return ['dead', 'expired', 'waiting_for_payment', 'retrying', 'received'].includes(w.state)
        ? { kind: 'not-allowed', state: w.state, message: `A ${w.state} webhook cannot be discarded (states.md 5: only a held event waiting for its order can).` }
        : { kind: 'already-handled', state: w.state };
    }
    await discardWebhook(tx, id, `discarded by ${actor.id}`);
    const paymentId = w.pspObjectId ? await paymentIdForPspObject(tx, w.tenantIdentifier, w.pspObjectId) : null;
    await audit(tx, actor, 'webhook.discard', { kind: 'webhook', id, tenant: w.tenantIdentifier, paymentId, from: w.state }, reason);
    return { kind: 'done', paymentId, state: 'discarded' };
  });
}

export async function requeueOutboxMessage(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown): Promise<ActionResult> {
  return outboxAction(deps, actor, id, reasonIn, 'outbox.requeue');
}

export async function discardOutboxMessage(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown): Promise<ActionResult> {
  return outboxAction(deps, actor, id, reasonIn, 'outbox.discard');
}

async function outboxAction(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown, action: 'outbox.requeue' | 'outbox.discard'): Promise<ActionResult> {
  const reason = cleanReason(reasonIn);
  if (reason === null) return { kind: 'bad-reason' };
  return deps.db.tx(async (tx): Promise<ActionResult> => {
    const o = await lockOutbox(tx, id);
    if (!o) return { kind: 'not-found' };
    // Only dead rows (messages.md 7: "until an operator re-queues or discards them"); a discarded row stays discarded.
    if (o.state !== 'dead' || o.discarded) return { kind: 'already-handled', state: o.discarded ? 'discarded' : o.state };
    if (action === 'outbox.requeue') {
      if (!outboxTransition(o.state, 'pending').ok) return { kind: 'already-handled', state: o.state };
      await republish(tx, id);
    } else {
      await discardOutbox(tx, id);
    }
    const paymentId = PAYMENT_KEY.exec(o.orderingKey)?.[1] ?? null;
    await audit(tx, actor, action, { kind: 'outbox', id, tenant: o.tenantIdentifier, paymentId, from: o.state }, reason);
    return { kind: 'done', paymentId, state: action === 'outbox.requeue' ? 'pending' : 'discarded' };
  });
}

/**
 * Retry of a command: a `received` / `retrying` row becomes due now. A `dead` row is refused: states.md 5 has no way
 * out of `dead` for commands, and its failure message was already sent to the shop (messages.md 5); the shop re-sends
 * the command instead.
 */
export async function retryCommand(deps: AppDeps, actor: Actor, id: string, reasonIn: unknown): Promise<ActionResult> {
  const reason = cleanReason(reasonIn);
  if (reason === null) return { kind: 'bad-reason' };
  return deps.db.tx(async (tx): Promise<ActionResult> => {
    const c = await lockCommand(tx, id);
    if (!c) return { kind: 'not-found' };
    if (c.state === 'dead' && !commandInboxTransition('dead', 'received').ok) {
      return {
        kind: 'not-allowed',
        state: c.state,
        message: 'A dead command cannot be retried: its failure message was already sent to the shop (states.md 5, messages.md 5). Ask the shop to send the command again.',
      };
    }
    if (c.state !== 'received' && c.state !== 'retrying') return { kind: 'already-handled', state: c.state };
    await retryCommandNow(tx, id);
    const paymentId = c.tenantIdentifier && c.orderReference ? await paymentIdForOrder(tx, c.tenantIdentifier, c.orderReference) : null;
    await audit(tx, actor, 'command.retry', { kind: 'command', id, tenant: c.tenantIdentifier, paymentId, from: c.state }, reason);
    tx.afterCommit(() => commandInboxSignal.emit('received'));
    return { kind: 'done', paymentId, state: c.state };
  });
}

export const ACTIONS: Record<ActionName, (deps: AppDeps, actor: Actor, id: string, reason: unknown) => Promise<ActionResult>> = {
  'webhook.replay': replayWebhook,
  'webhook.discard': discardHeldWebhook,
  'outbox.requeue': requeueOutboxMessage,
  'outbox.discard': discardOutboxMessage,
  'command.retry': retryCommand,
};

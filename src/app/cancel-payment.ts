/**
 * CancelPayment (flows.md 9) with cancel records (states.md 2): void the authorization, release the uncaptured
 * remainder of a partially captured payment, or cancel an `authorization_failed` payment without a PSP call.
 * Same three steps as captures (record `pending` committed → PSP cancel with key = record id → apply).
 */
import { randomUUID } from 'node:crypto';
import type { CancelOutcome, PspResult, WebhookOutcome } from '../connectors/types.js';
import { itemKey, uncoveredItemIds } from '../domain/capture.js';
import { checkCancel } from '../domain/cancel.js';
import { transition, uncapturedAmount, withRemainderReleased, withVoid } from '../domain/payment-status.js';
import type { CompanionWrite, Tx } from '../store/db.js';
import { getOperation, insertOperation, listOperations, operationInsertWrite, updateOperation, backoffMs, type OperationRow } from '../store/operations.js';
import { findPaymentById, findPaymentByTransaction, lockPayment, type LockedPayment, type PaymentRow } from '../store/payments.js';
import {
  amountChanges,
  amountsOf,
  finishInbox,
  finishRerun,
  RECORD_GIVE_UP_MS,
  RECORD_LEASE_MS,
  republishAll,
  republishLatest,
  statusMessagesOf,
  pspContextOf,
  writePaymentChange,
  type OperationAnswer,
  type OperationWebhookResult,
  type Source,
} from './capture-payment.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { eventKeys } from './payment-messages.js';

export interface CancelCommandInput {
  inboxId: string;
  messageId: string;
  orderItemIds: number[];
}

export type CancelStart = { kind: 'done'; state: 'processed' | 'rejected'; reason: string | null } | { kind: 'call'; paymentId: string; recordId: string };

export function cancelAnswer(r: PspResult<CancelOutcome>): OperationAnswer {
  // An asynchronous PSP (capability cancelResult `async`) answers later by webhook; the record stays pending.
  if (r.ok) return r.value.status === 'canceled' ? { kind: 'succeeded' } : { kind: 'unknown', reason: 'the PSP processes the cancel asynchronously' };
  const f = r.failure;
  if (f.kind === 'declined' || f.kind === 'conflict') return { kind: 'failed', reason: `${f.code}: ${f.message}` };
  return { kind: 'unknown', reason: f.kind === 'timeout' ? 'PSP timeout' : f.message };
}

/** A cancel record settled at once (no PSP call), for the statement that writes the payment change and its messages. */
function succeededCancelWrite(id: string, payment: PaymentRow, commandId: string, itemKey: string, orderItemIds: number[], amount: number, resultMessageIds: string[]): CompanionWrite {
  return operationInsertWrite(
    { id, paymentId: payment.id, tenantIdentifier: payment.tenantIdentifier, kind: 'cancel', itemKey, orderItemIds, amount, status: 'succeeded', commandId, resultMessageIds },
    new Date(),
  ).write;
}

/** Step 1 of flows.md 9 in `tx`, on the payment the caller locked in `tx`. */
export async function startCancel(deps: AppDeps, tx: Tx, payment: PaymentRow, cmd: CancelCommandInput): Promise<CancelStart> {
  const source: Source = { trigger: 'command', ref: cmd.inboxId };
  const records = await listOperations(tx, payment.id);
  const items = [...new Set(cmd.orderItemIds)];
  const s2 = await cancelAfterReleasingCapture(deps, tx, payment, records, cmd, items, source);
  if (s2) return s2;
  const decision = checkCancel(payment, records);
  switch (decision.kind) {
    case 'republish': {
      const rec = decision.record ? records.find((r) => r.id === decision.record!.id) : undefined;
      if (rec?.commandId === cmd.inboxId) return finishRerun(tx, cmd.inboxId, `cancel ${rec.id} was settled meanwhile`);
      let done = rec ? (await republishAll(tx, rec.resultMessageIds)) > 0 : false;
      if (!done) done = await republishLatest(deps, tx, payment, 'PaymentCanceled');
      if (!done) {
        // Canceled without any stored PaymentCanceled (e.g. a cancelled pre-order payment): answer the command now.
        await writePaymentChange(deps, tx, payment, null, {
          updated: false,
          statusMessages: [{ name: 'PaymentCanceled', eventKey: eventKeys.command(cmd.messageId), orderItemIds: items, amount: 0 }],
          source,
        });
      }
      await finishInbox(tx, cmd.inboxId, 'processed', 'already canceled; PaymentCanceled re-published');
      return { kind: 'done', state: 'processed', reason: 'republished' };
    }
    case 'noop': {
      const rec = records.find((r) => r.id === decision.record.id)!;
      if (rec.commandId === cmd.inboxId) return { kind: 'call', paymentId: payment.id, recordId: rec.id };
      await finishInbox(tx, cmd.inboxId, 'processed', `cancel ${rec.id} is pending`);
      return { kind: 'done', state: 'processed', reason: 'pending' };
    }
    case 'reject': {
      await writePaymentChange(deps, tx, payment, null, {
        updated: false,
        statusMessages: [{ name: 'PaymentCancellationFailed', eventKey: eventKeys.command(cmd.messageId), orderItemIds: items, amount: 0 }],
        source,
      });
      await finishInbox(tx, cmd.inboxId, 'rejected', `${decision.code}: ${decision.reason}`);
      return { kind: 'done', state: 'rejected', reason: decision.reason };
    }
    case 'cancel_without_psp': {
      const check = transition(payment.status, 'canceled', 'cancel_succeeded');
      if (!check.ok) throw new Error(check.error.message);
      const id = randomUUID();
      const status = statusMessagesOf(check.messages, (name) => ({ name, eventKey: eventKeys.cancel(id, 'succeeded'), orderItemIds: items, amount: decision.amount }));
      await writePaymentChange(deps, tx, payment, { ...amountChanges(withVoid(amountsOf(payment))), status: 'canceled' }, {
        updated: true,
        statusMessages: status,
        source,
        alongside: (ids) => succeededCancelWrite(id, payment, cmd.inboxId, '', items, decision.amount, ids),
      });
      await finishInbox(tx, cmd.inboxId, 'processed', null);
      return { kind: 'done', state: 'processed', reason: null };
    }
    case 'release_remainder':
    case 'void': {
      const id = randomUUID();
      await insertOperation(tx, {
        id,
        paymentId: payment.id,
        tenantIdentifier: payment.tenantIdentifier,
        kind: 'cancel',
        itemKey: '',
        orderItemIds: items,
        amount: decision.amount,
        status: 'pending',
        commandId: cmd.inboxId,
        nextAttemptAt: new Date(Date.now() + RECORD_LEASE_MS),
      });
      return { kind: 'call', paymentId: payment.id, recordId: id };
    }
  }
}

/**
 * S2 (flows.md 9 step 7): a `captured` payment whose remainder a final partial capture released (no cancel released
 * it). A cancel for items no capture covers is answered PaymentCanceled with amount 0 and no PSP call (a repeat for
 * the same items re-publishes it); items a capture covers stay PaymentCancellationFailed. null: not this case.
 */
async function cancelAfterReleasingCapture(deps: AppDeps, tx: Tx, payment: PaymentRow, records: OperationRow[], cmd: CancelCommandInput, items: number[], source: Source): Promise<CancelStart | null> {
  const cancels = records.filter((r) => r.kind === 'cancel' && r.status === 'succeeded');
  if (payment.status !== 'captured' || payment.releasedAmount <= 0 || cancels.some((r) => r.amount > 0)) return null;
  const captured = records.filter((r) => r.kind === 'capture' && r.status === 'succeeded');
  if (items.length === 0 || uncoveredItemIds(items, captured).length !== items.length) {
    await writePaymentChange(deps, tx, payment, null, {
      updated: false,
      statusMessages: [{ name: 'PaymentCancellationFailed', eventKey: eventKeys.command(cmd.messageId), orderItemIds: items, amount: 0 }],
      source,
    });
    await finishInbox(tx, cmd.inboxId, 'rejected', 'ILLEGAL_TRANSITION: captured items cannot be canceled');
    return { kind: 'done', state: 'rejected', reason: 'captured items cannot be canceled' };
  }
  const key = itemKey(items);
  const same = cancels.find((r) => r.itemKey === key);
  if (same) {
    await republishAll(tx, same.resultMessageIds);
    await finishInbox(tx, cmd.inboxId, 'processed', 'identical cancel already answered; PaymentCanceled re-published');
    return { kind: 'done', state: 'processed', reason: 'republished' };
  }
  const id = randomUUID();
  await writePaymentChange(deps, tx, payment, null, {
    updated: false,
    statusMessages: [{ name: 'PaymentCanceled', eventKey: eventKeys.cancel(id, 'succeeded'), orderItemIds: items, amount: 0 }],
    source,
    alongside: (ids) => succeededCancelWrite(id, payment, cmd.inboxId, key, items, 0, ids),
  });
  await finishInbox(tx, cmd.inboxId, 'processed', 'remainder already released by a final capture; PaymentCanceled with amount 0');
  return { kind: 'done', state: 'processed', reason: null };
}

/** PSP cancel for a pending cancel record (key = record id), then the outcome. Shared with reconciliation. */
export async function runCancel(deps: AppDeps, recordId: string, source: Source, inboxId?: string): Promise<OperationAnswer['kind'] | 'settled'> {
  const record = await getOperation(deps.db, recordId);
  if (!record || record.status !== 'pending') {
    if (inboxId) await deps.db.tx((tx) => finishInbox(tx, inboxId, 'processed', 'cancel already settled'));
    return 'settled';
  }
  const payment = await findPaymentById(deps.db, record.paymentId);
  if (!payment) throw new Error(`payment ${record.paymentId} of cancel ${record.id} does not exist`);
  const psp = await pspContextOf(deps, payment);
  const answer: OperationAnswer = psp
    ? cancelAnswer(
        await psp.connector.cancel(psp.settings, payment.transactionId, { idempotencyKey: record.id, reason: 'requested_by_customer', signal: AbortSignal.timeout(PSP_CALL_TIMEOUT_MS) }),
      )
    : { kind: 'unknown', reason: 'tenant configuration not found' };
  await deps.db.tx(async (tx) => {
    const finish = inboxId ? { id: inboxId, state: 'processed' as const, reason: answer.kind === 'unknown' ? `cancel ${record.id} pending: ${answer.reason}` : null } : null;
    const locked = await lockPayment(tx, record.paymentId, finish);
    const rec = await getOperation(tx, record.id, { forUpdate: true });
    if (rec && rec.status === 'pending') await settleCancel(deps, tx, locked, rec, answer, source);
  });
  return answer.kind;
}

/** Applies an answer to a pending cancel record (payment and record locked). */
export async function settleCancel(deps: AppDeps, tx: Tx, payment: PaymentRow, rec: OperationRow, answer: OperationAnswer, source: Source): Promise<void> {
  if (rec.status !== 'pending') return;
  if (answer.kind === 'unknown' || answer.kind === 'pending') {
    const reason = answer.kind === 'unknown' ? answer.reason : 'cancel pending at the PSP';
    if (Date.now() - rec.createdAt.getTime() < RECORD_GIVE_UP_MS) {
      const attempts = rec.attempts + 1;
      await updateOperation(tx, rec.id, { attempts, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)), failureReason: reason });
      return;
    }
    answer = { kind: 'failed', reason: `no definite answer within 24 hours (${reason})` };
  }
  const from = payment.status;
  const release = from === 'partially_captured';
  const key = (s: string): string => eventKeys.cancel(rec.id, s);

  if (answer.kind === 'succeeded') {
    if (from === 'canceled' || (from === 'captured' && payment.releasedAmount > 0)) {
      // Already applied (e.g. the PSP's webhook came first through the payment outcome path).
      await updateOperation(tx, rec.id, { status: 'succeeded' });
      return;
    }
    const to = release ? 'captured' : 'canceled';
    const check = transition(from, to, release ? 'remainder_released' : 'cancel_succeeded');
    if (!check.ok) {
      deps.log.error({ paymentId: payment.id, cancelId: rec.id, from, to }, 'cancel succeeded at the PSP but the payment status does not allow it');
      await updateOperation(tx, rec.id, { status: 'succeeded', failureReason: check.error.message });
      return;
    }
    const before = amountsOf(payment);
    const amount = uncapturedAmount(before);
    const amounts = release ? withRemainderReleased(before) : withVoid(before);
    const status = statusMessagesOf(check.messages, (name) => ({ name, eventKey: key('succeeded'), orderItemIds: rec.orderItemIds, amount }));
    const w = await writePaymentChange(deps, tx, payment, { ...amountChanges(amounts), status: to }, { updated: true, statusMessages: status, source });
    await updateOperation(tx, rec.id, { status: 'succeeded', resultMessageIds: w.statusMessageIds });
    return;
  }

  // failed
  const to = release ? 'partially_captured' : 'cancellation_failed';
  const check = transition(from, to, release ? 'remainder_release_failed' : 'cancel_failed');
  const changed = check.ok && check.changed;
  const w = await writePaymentChange(deps, tx, payment, changed ? { status: to } : null, {
    updated: changed,
    statusMessages: [{ name: 'PaymentCancellationFailed', eventKey: key('failed'), orderItemIds: rec.orderItemIds, amount: 0 }],
    source,
  });
  await updateOperation(tx, rec.id, { status: 'failed', failureReason: answer.reason, resultMessageIds: w.statusMessageIds });
}

/**
 * `payment.canceled` (or a remainder release reported as `captured`) while a cancel record is pending: the record is
 * settled with the command's items. null = no pending cancel record: the caller applies it as a payment outcome.
 */
export async function applyCancelWebhook(
  deps: AppDeps,
  tx: Tx,
  tenant: string,
  outcome: Extract<WebhookOutcome, { kind: 'payment' }>,
  source: Source,
  locked: LockedPayment | null = null,
): Promise<OperationWebhookResult | null> {
  if (outcome.state !== 'canceled' && outcome.state !== 'captured') return null;
  const found = locked?.payment ?? (await findPaymentByTransaction(tx, tenant, outcome.transactionId));
  if (!found || !found.orderReference) return null;
  const payment = locked?.payment ?? (await lockPayment(tx, found.id));
  const rec = (await listOperations(tx, payment.id)).find((r) => r.kind === 'cancel' && r.status === 'pending');
  if (!rec) return null;
  if (outcome.state === 'captured' && payment.status !== 'partially_captured') return null;
  await settleCancel(deps, tx, payment, rec, { kind: 'succeeded' }, source);
  return { kind: 'applied' };
}

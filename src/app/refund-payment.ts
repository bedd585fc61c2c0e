/**
 * RefundPayment (flows.md 10) and refund status changes (states.md 3) from the PSP's answer, webhooks
 * (`refund.succeeded` / `refund.failed`) and reconciliation. The payment's status never changes with a refund;
 * refunds move `refundedAmount` / `pendingRefundAmount` only.
 */
import { randomUUID } from 'node:crypto';
import type { PspResult, RefundOutcome, WebhookOutcome } from '../connectors/types.js';
import { uncoveredItemIds } from '../domain/capture.js';
import { refundableAmount } from '../domain/payment-status.js';
import { checkRefund, refundCreation, refundTransition, withRefundStatus, type RefundStatus } from '../domain/refund.js';
import { companionWrites, type CompanionWrite, type Tx } from '../store/db.js';
import {
  backoffMs,
  findRefundByPspId,
  getRefund,
  insertRefund,
  listOperations,
  listRefunds,
  refundInsertWrite,
  refundLock,
  refundUpdateWrite,
  storeRefundPspId,
  updateRefund,
  type RefundRow,
} from '../store/operations.js';
import { findPaymentById, findPaymentByTransaction, lockPayment, lockPaymentWithHistory, lockPaymentWithHistoryAndRecord, recordPspObject, type HistoryRow, type LockedPayment, type PaymentRow } from '../store/payments.js';
import {
  amountsOf,
  finishInbox,
  finishRerun,
  RECORD_GIVE_UP_MS,
  RECORD_LEASE_MS,
  republishAll,
  pspContextOf,
  writePaymentChange,
  type OperationWebhookResult,
  type Source,
  type StatusMsg,
  type CallSnapshot,
} from './capture-payment.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { eventKeys, orderItemIdsOf } from './payment-messages.js';
import { ACTIVE_STATES, processWaitingWebhooksFor } from './webhook-processing.js';
import { rememberOwner } from './psp-owners.js';

export interface RefundCommandInput {
  inboxId: string;
  messageId: string;
  orderItemIds: number[];
  /** As sent (usually negative); the absolute value is refunded. */
  amount: number;
  currency: string;
}

export type RefundStart = { kind: 'done'; state: 'processed' | 'rejected'; reason: string | null } | { kind: 'call'; paymentId: string; refundId: string; snapshot?: CallSnapshot<RefundRow> };

export type RefundAnswer = { kind: 'answered'; pspRefundId: string; status: RefundStatus } | { kind: 'failed'; reason: string } | { kind: 'unknown'; reason: string };

export function refundAnswer(r: PspResult<RefundOutcome>): RefundAnswer {
  if (r.ok) return { kind: 'answered', pspRefundId: r.value.pspRefundId, status: r.value.status };
  const f = r.failure;
  if (f.kind === 'declined' || f.kind === 'conflict') return { kind: 'failed', reason: `${f.code}: ${f.message}` };
  return { kind: 'unknown', reason: f.kind === 'timeout' ? 'PSP timeout' : f.message };
}

/** Step 1 of flows.md 10 in `tx`, on the payment the caller locked in `tx`. */
export async function startRefund(deps: AppDeps, tx: Tx, payment: PaymentRow, cmd: RefundCommandInput): Promise<RefundStart> {
  const source: Source = { trigger: 'command', ref: cmd.inboxId };
  const refunds = await listRefunds(tx, payment.id);
  const decision = checkRefund(payment, refunds, { orderItemIds: cmd.orderItemIds, amount: cmd.amount, currency: cmd.currency });
  switch (decision.kind) {
    case 'republish': {
      const rec = refunds.find((r) => r.id === decision.record.id)!;
      if (rec.commandId === cmd.inboxId) return finishRerun(tx, cmd.inboxId, `refund ${rec.id} was settled meanwhile`);
      await republishAll(tx, rec.resultMessageIds);
      await finishInbox(tx, cmd.inboxId, 'processed', `identical refund ${rec.id} already succeeded; PaymentRefunded re-published`);
      return { kind: 'done', state: 'processed', reason: 'republished' };
    }
    case 'noop': {
      const rec = refunds.find((r) => r.id === decision.record.id)!;
      if (rec.commandId === cmd.inboxId && rec.status === 'pending' && !rec.pspRefundId) return { kind: 'call', paymentId: payment.id, refundId: rec.id };
      await finishInbox(tx, cmd.inboxId, 'processed', `identical refund ${rec.id} is ${rec.status}`);
      return { kind: 'done', state: 'processed', reason: 'pending' };
    }
    case 'reject': {
      if (decision.messageItemIds.length > 0) {
        await writePaymentChange(deps, tx, payment, null, {
          updated: false,
          statusMessages: [{ name: 'PaymentRefundFailed', eventKey: eventKeys.command(cmd.messageId), orderItemIds: decision.messageItemIds, amount: decision.amount }],
          source,
        });
      }
      await finishInbox(tx, cmd.inboxId, 'rejected', `${decision.code}: ${decision.reason}`);
      return { kind: 'done', state: 'rejected', reason: decision.reason };
    }
    case 'proceed': {
      const id = randomUUID();
      const created = refundCreation('pending');
      if (!created.ok) throw new Error(created.error.message);
      const amounts = withRefundStatus(amountsOf(payment), null, 'pending', decision.amount);
      // the record goes in with the payment's pending refund amount, in one statement
      const insert = refundInsertWrite(
        {
          id,
          paymentId: payment.id,
          tenantIdentifier: payment.tenantIdentifier,
          itemKey: decision.itemKey,
          orderItemIds: decision.orderItemIds,
          amount: decision.amount,
          currency: payment.currency,
          status: 'pending',
          commandId: cmd.inboxId,
          nextAttemptAt: new Date(Date.now() + RECORD_LEASE_MS),
        },
        new Date(),
      );
      const changed = await writePaymentChange(deps, tx, payment, { refundedAmount: amounts.refundedAmount, pendingRefundAmount: amounts.pendingRefundAmount }, {
        updated: created.messages.some((m) => m.name === 'PaymentUpdated'),
        statusMessages: [],
        source,
        alongside: () => insert.write,
      });
      return { kind: 'call', paymentId: payment.id, refundId: id, snapshot: { record: insert.row, payment: changed.payment } };
    }
  }
}

/** PSP refund for a pending refund record without PSP id (key = refund id), then the answer. Shared with reconciliation. */
export async function runRefund(deps: AppDeps, refundId: string, source: Source, inboxId?: string, snapshot?: CallSnapshot<RefundRow>): Promise<RefundAnswer['kind'] | 'settled'> {
  const refund = snapshot?.record ?? (await getRefund(deps.db, refundId));
  if (!refund || refund.status !== 'pending' || refund.pspRefundId) {
    if (inboxId) await deps.db.tx((tx) => finishInbox(tx, inboxId, 'processed', 'refund already answered'));
    return 'settled';
  }
  const payment = snapshot?.payment ?? (await findPaymentById(deps.db, refund.paymentId));
  if (!payment) throw new Error(`payment ${refund.paymentId} of refund ${refund.id} does not exist`);
  const psp = await pspContextOf(deps, payment);
  const answer: RefundAnswer = psp
    ? refundAnswer(
        await psp.connector.refund(psp.settings, payment.transactionId, refund.amount, {
          idempotencyKey: refund.id,
          refundId: refund.id,
          ...(payment.orderReference ? { orderReference: payment.orderReference } : {}),
          signal: AbortSignal.timeout(PSP_CALL_TIMEOUT_MS),
        }),
      )
    : { kind: 'unknown', reason: 'tenant configuration not found' };
  let stored: StoredPspId | null = null;
  await deps.db.tx(async (tx) => {
    const finish = inboxId ? { id: inboxId, state: 'processed' as const, reason: answer.kind === 'unknown' ? `refund ${refund.id} pending: ${answer.reason}` : null } : null;
    const locked = await lockPaymentWithHistoryAndRecord(tx, refund.paymentId, finish, refundLock, refund.id);
    if (locked.record) stored = await settleRefundAnswer(deps, tx, locked.payment, locked.record, answer, source, locked.history);
  });
  // Webhooks for this refund that arrived before its PSP id was stored wait for it (flows.md 12 step 8); one stored
  // after the check (before the commit) is retried by the webhook worker.
  const s = stored as StoredPspId | null;
  if (s?.webhooksWaiting) await processWaitingWebhooksFor(deps, payment.tenantIdentifier, s.pspRefundId);
  return answer.kind;
}

/** Delays between status checks at the PSP of a refund that has a PSP id but is still pending/processing (then 30 min). */
export const REFUND_STATUS_CHECK_MS = [30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000];
export const refundStatusCheckDelayMs = (checks: number): number => REFUND_STATUS_CHECK_MS[Math.min(Math.max(0, checks), REFUND_STATUS_CHECK_MS.length - 1)]!;

/**
 * Asks the PSP for the state of a refund that has a PSP id but is still pending/processing here (flows.md 14 step 3:
 * its webhook may have been lost, e.g. sent while this app was down). The connector is the payment's own (registry).
 * Returns what happened; a connector without `getRefund` leaves the refund to its webhook.
 */
export async function checkRefundStatus(deps: AppDeps, refundId: string, source: Source): Promise<'applied' | 'unchanged' | 'unsupported' | 'gone'> {
  const refund = await getRefund(deps.db, refundId);
  if (!refund || !refund.pspRefundId || (refund.status !== 'pending' && refund.status !== 'processing')) return 'gone';
  const payment = await findPaymentById(deps.db, refund.paymentId);
  if (!payment) return 'gone';
  const psp = await pspContextOf(deps, payment);
  if (!psp) return 'gone';
  if (!psp.connector.getRefund) return 'unsupported';
  const r = await psp.connector.getRefund(psp.settings, payment.transactionId, { pspRefundId: refund.pspRefundId, refundId: refund.id }, AbortSignal.timeout(PSP_CALL_TIMEOUT_MS));
  if (!r.ok) throw new Error(`refund status check failed: ${r.failure.kind === 'timeout' ? 'timeout' : r.failure.message}`);
  if (!r.value || r.value.status === refund.status) return 'unchanged';
  const to = r.value.status;
  let applied = false;
  await deps.db.tx(async (tx) => {
    const locked = await lockPayment(tx, refund.paymentId);
    const rec = await getRefund(tx, refund.id, { forUpdate: true });
    if (rec) applied = (await applyRefundStatus(deps, tx, locked, rec, to, source, null)).kind === 'applied';
  });
  return applied ? 'applied' : 'unchanged';
}

interface StoredPspId {
  pspRefundId: string;
  /** Webhooks of this PSP refund id wait in the inbox (re-drive them after the commit). */
  webhooksWaiting: boolean;
}

/** Applies the PSP's answer to the refund call. Returns the PSP refund id newly stored, if any. */
async function settleRefundAnswer(
  deps: AppDeps,
  tx: Tx,
  payment: PaymentRow,
  rec: RefundRow,
  answer: RefundAnswer,
  source: Source,
  history?: HistoryRow[],
): Promise<StoredPspId | null> {
  if (answer.kind === 'unknown') {
    if (rec.pspRefundId || rec.status !== 'pending') return null;
    if (Date.now() - rec.createdAt.getTime() < RECORD_GIVE_UP_MS) {
      const attempts = rec.attempts + 1;
      await updateRefund(tx, rec.id, { attempts, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)), failureReason: answer.reason });
      return null;
    }
    await applyRefundStatus(deps, tx, payment, rec, 'failed', source, `no PSP refund id within 24 hours (${answer.reason})`, history);
    return null;
  }
  if (answer.kind === 'failed') {
    await applyRefundStatus(deps, tx, payment, rec, 'failed', source, answer.reason, history);
    return null;
  }
  let stored: StoredPspId | null = null;
  if (!rec.pspRefundId) {
    // Not settled yet: reconciliation asks the PSP from REFUND_STATUS_CHECK_MS[0] on, in case its webhook never comes.
    const r = await storeRefundPspId(
      tx,
      rec.id,
      { pspRefundId: answer.pspRefundId, attempts: 0, nextAttemptAt: new Date(Date.now() + REFUND_STATUS_CHECK_MS[0]!) },
      { connector: payment.connector, tenantIdentifier: payment.tenantIdentifier },
      ACTIVE_STATES,
    );
    // The refund's webhooks are then attributed without a query (an owner stays true even if this transaction fails).
    if (r.pspObjectRecorded) rememberOwner(deps, payment.connector, answer.pspRefundId, payment.tenantIdentifier);
    rec = { ...rec, pspRefundId: answer.pspRefundId };
    stored = { pspRefundId: answer.pspRefundId, webhooksWaiting: r.webhooksWaiting };
  }
  await applyRefundStatus(deps, tx, payment, rec, answer.status, source, null, history);
  return stored;
}

/**
 * The one path for refund status changes (payment row locked by the caller): refundTransition, amounts, the row
 * (status_seq + 1) and the messages of states.md 3 with event key `refund/<id>/<status>/<seq>`.
 */
export async function applyRefundStatus(
  deps: AppDeps,
  tx: Tx,
  payment: PaymentRow,
  rec: RefundRow,
  to: RefundStatus,
  source: Source,
  reason: string | null,
  /** The payment's history, read with its lock: the change, its messages and the record go in one statement. */
  history?: HistoryRow[],
  /** Another write to carry in that statement (a webhook inbox row's `processed`); the result then says `written`. */
  also?: CompanionWrite | null,
): Promise<{ kind: 'applied' | 'noop' | 'ignored'; reason?: string; written?: boolean }> {
  const check = refundTransition(rec.status, to);
  if (!check.ok) return { kind: 'ignored', reason: check.error.message };
  if (!check.changed) return { kind: 'noop' };
  const amounts = withRefundStatus(amountsOf(payment), rec.status, to, rec.amount);
  const seq = rec.statusSeq + 1;
  const status: StatusMsg[] = check.messages
    .filter((m) => m.name !== 'PaymentUpdated')
    .map((m) => ({ name: m.name, eventKey: eventKeys.refund(rec.id, to, seq), orderItemIds: rec.orderItemIds, amount: rec.amount }));
  await writePaymentChange(deps, tx, payment, { refundedAmount: amounts.refundedAmount, pendingRefundAmount: amounts.pendingRefundAmount }, {
    updated: check.messages.some((m) => m.name === 'PaymentUpdated'),
    statusMessages: status,
    source,
    ...(history ? { history } : {}),
    alongside: (ids) => {
      const record = refundUpdateWrite(rec.id, { status: to, statusSeq: seq, failureReason: reason, ...(to === 'succeeded' || ids.length > 0 ? { resultMessageIds: ids } : {}) });
      return also ? companionWrites(record, also) : record;
    },
  });
  return also ? { kind: 'applied', written: true } : { kind: 'applied' };
}

/**
 * `refund.succeeded` / `refund.failed`: moves the refund record found by PSP refund id. A refund the app did not
 * create (PSP dashboard) is recorded in the reported status (flows.md 10 step 12); while one of the payment's own
 * refunds still waits for its PSP id, an unknown refund id waits too (it may be that one).
 */
export async function applyRefundWebhook(
  deps: AppDeps,
  tx: Tx,
  tenant: string,
  outcome: Extract<WebhookOutcome, { kind: 'refund' }>,
  source: Source,
  locked: LockedPayment | null = null,
  processed: CompanionWrite | null = null,
): Promise<OperationWebhookResult> {
  const known = await findRefundByPspId(tx, tenant, outcome.pspRefundId);
  if (known) {
    const { payment, history } = locked?.payment.id === known.paymentId ? locked : await lockPaymentWithHistory(tx, known.paymentId);
    const rec = (await getRefund(tx, known.id, { forUpdate: true }))!;
    return applyRefundStatus(deps, tx, payment, rec, outcome.status, source, outcome.reason ?? null, history, processed);
  }
  const found = locked?.payment ?? (await findPaymentByTransaction(tx, tenant, outcome.transactionId));
  if (!found) return { kind: 'waiting_for_payment', reason: `payment ${outcome.transactionId} is not stored yet` };
  const payment = locked?.payment ?? (await lockPayment(tx, found.id));
  const refunds = await listRefunds(tx, payment.id);
  if (refunds.some((r) => r.status === 'pending' && !r.pspRefundId)) {
    return { kind: 'waiting_for_payment', reason: `refund ${outcome.pspRefundId} may be a pending refund of this payment` };
  }
  if (!payment.orderReference) return { kind: 'waiting_for_order', reason: 'payment is not linked to an order yet' };
  // Dashboard refund.
  const created = refundCreation(outcome.status);
  if (!created.ok) return { kind: 'ignored', reason: created.error.message };
  const amount = Math.abs(Math.trunc(outcome.amount));
  if (!(amount > 0)) return { kind: 'ignored', reason: 'refund without an amount' };
  const before = amountsOf(payment);
  if (outcome.status !== 'failed' && outcome.status !== 'canceled' && amount > refundableAmount(before)) {
    return { kind: 'ignored', reason: `refund ${amount} exceeds the refundable amount ${refundableAmount(before)}` };
  }
  const id = randomUUID();
  const after = withRefundStatus(before, null, outcome.status, amount);
  let status: StatusMsg[] = [];
  if (outcome.status === 'succeeded' && refundableAmount(after) === 0) {
    const captured = (await listOperations(tx, payment.id)).filter((r) => r.kind === 'capture' && r.status === 'succeeded');
    const capturedItems = captured.some((r) => r.orderItemIds.length === 0) || captured.length === 0 ? orderItemIdsOf(payment.orderData) : captured.flatMap((r) => r.orderItemIds);
    const items = uncoveredItemIds(capturedItems, refunds.filter((r) => r.status === 'succeeded' || r.status === 'pending' || r.status === 'processing'));
    status = [{ name: 'PaymentRefunded', eventKey: eventKeys.refund(id, outcome.status, 1), orderItemIds: items, amount }];
  }
  const w = await writePaymentChange(deps, tx, payment, { refundedAmount: after.refundedAmount, pendingRefundAmount: after.pendingRefundAmount }, {
    updated: true,
    statusMessages: status,
    source,
  });
  await insertRefund(tx, {
    id,
    paymentId: payment.id,
    tenantIdentifier: tenant,
    itemKey: '',
    orderItemIds: [],
    amount,
    currency: payment.currency,
    status: outcome.status,
    pspRefundId: outcome.pspRefundId,
    commandId: null,
  });
  if (w.statusMessageIds.length > 0) await updateRefund(tx, id, { resultMessageIds: w.statusMessageIds });
  await recordPspObject(tx, payment.connector, outcome.pspRefundId, tenant, 'refund');
  return { kind: 'applied' };
}

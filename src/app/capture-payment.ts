/**
 * CapturePayment (flows.md 8) and the capture results that arrive later (webhook `payment.captured` /
 * `payment.capture_failed`, reconciliation, flows.md 12 and 14).
 *
 * Three steps (flows.md 0 rule 3): (1) under the payment row lock, `checkCapture` decides; `proceed` stores a capture
 * record `pending` (+ pendingCaptureAmount) and commits; (2) the PSP is called with idempotency key = record id
 * (15 s budget), outside any transaction; (3) a second transaction re-locks the payment and the record and applies the
 * answer (`settleCapture`). A missing answer leaves the record `pending` for the reconciliation job, which repeats the
 * call with the same key (so the PSP never captures twice) and fails the record after 24 h.
 *
 * Also the shared write helper of the command use cases (`writePaymentChange`).
 */
import { randomUUID } from 'node:crypto';
import type { CaptureOutcome, Connector, PspResult, TenantSettings, WebhookOutcome } from '../connectors/types.js';
import { checkCapture, uncoveredItemIds } from '../domain/capture.js';
import {
  nextStatusAfterCapture,
  nextStatusAfterCaptureFailed,
  nextStatusAfterCapturePending,
  transition,
  withPendingCapture,
  withSettledCapture,
  type PaymentAmounts,
  type TransitionMessage,
} from '../domain/payment-status.js';
import { enqueue, messageId, outboxRowsOf, outboxWritten, republish, type OutgoingMessage } from '../messaging/outbox.js';
import { runCompanionWrite, type CompanionWrite, type Tx } from '../store/db.js';
import { finishCommand, type FinishedCommandState } from '../store/payment-commands.js';
import { backoffMs, getOperation, listOperations, operationInsertWrite, operationLock, operationUpdateWrite, updateOperation, type OperationRow } from '../store/operations.js';
import { findLatestPaymentMessageId, findPaymentById, findPaymentByTransaction, lockPaymentWithHistory, lockPaymentWithHistoryAndRecord, updatePayment, updatePaymentRecording, type HistoryEntry, type HistoryRow, type HistoryTrigger, type LockedPayment, type PaymentChanges, type PaymentRow } from '../store/payments.js';
import { decryptedSettings } from '../store/tenants.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { eventKeys, orderItemIdsOf, paymentStatusMessage, paymentUpdateCarriesChange, paymentUpdatedMessage } from './payment-messages.js';

/** A freshly stored pending record is left to its creator's own PSP call for this long before reconciliation may take it. */
export const RECORD_LEASE_MS = 20_000;
/** Pending records without a definite answer become `failed` after this (flows.md 14 step 1). */
export const RECORD_GIVE_UP_MS = 24 * 60 * 60_000;

export interface Source {
  trigger: HistoryTrigger;
  /** Command inbox id, webhook inbox id or record id: history trigger_ref and the messages' correlationId. */
  ref: string;
}

/**
 * The record and payment as the transaction that created the record committed them: the PSP call right after uses
 * them instead of reading both again (the outcome's transaction locks and re-checks the record anyway).
 */
export interface CallSnapshot<R> {
  record: R;
  payment: PaymentRow;
}

export interface StatusMsg {
  name: string;
  eventKey: string;
  orderItemIds: number[];
  amount: number;
}

export const amountsOf = (p: PaymentRow): PaymentAmounts => ({
  amount: p.amount,
  authorizedAmount: p.authorizedAmount,
  capturedAmount: p.capturedAmount,
  pendingCaptureAmount: p.pendingCaptureAmount,
  releasedAmount: p.releasedAmount,
  refundedAmount: p.refundedAmount,
  pendingRefundAmount: p.pendingRefundAmount,
});

export const amountChanges = (a: PaymentAmounts): PaymentChanges => ({
  authorizedAmount: a.authorizedAmount,
  capturedAmount: a.capturedAmount,
  pendingCaptureAmount: a.pendingCaptureAmount,
  releasedAmount: a.releasedAmount,
  refundedAmount: a.refundedAmount,
  pendingRefundAmount: a.pendingRefundAmount,
});

/**
 * The payment row, its new history entry (when `entry`) and its history afterwards as a write of `changes` at `at`
 * stores them, given the history read with the payment's lock: what the messages announcing the write are built from
 * before the one statement that writes them all.
 */
export function plannedChange(
  before: PaymentRow,
  changes: PaymentChanges,
  history: HistoryRow[],
  entry: HistoryEntry | null,
  at: Date,
): { payment: PaymentRow; entry: HistoryRow | null; history: HistoryRow[] } {
  const created: HistoryRow | null = entry
    ? { id: 0, paymentId: before.id, seq: (history.at(-1)?.seq ?? 0) + 1, status: entry.status, trigger: entry.trigger, triggerRef: entry.ref, details: entry.details ?? null, createdAt: at }
    : null;
  return { payment: { ...before, ...changes, version: before.version + 1, updatedAt: at }, entry: created, history: created ? [...history, created] : history };
}

/**
 * Writes a change of the (locked) payment: the row (version + 1), a history row when the status changes, then
 * `PaymentUpdated` (when `updated` and the write changed something it carries) and the status messages (only for a payment linked to an order), in this order,
 * in `tx`. Returns the row after the write and the outbox ids of the status messages.
 *
 * `history`: the payment's history read with its lock (`lockPaymentWithHistory`): the row, its history entry and the
 * messages are then built first and written in one statement, with `alongside` (given the status messages' ids: the
 * operation record they settle). Without it, or without changes, `alongside` is written by a statement of its own.
 */
export async function writePaymentChange(
  deps: AppDeps,
  tx: Tx,
  before: PaymentRow,
  changes: PaymentChanges | null,
  opts: { updated: boolean; statusMessages: StatusMsg[]; source: Source; history?: HistoryRow[]; alongside?: (statusMessageIds: string[]) => CompanionWrite },
): Promise<{ payment: PaymentRow; statusMessageIds: string[] }> {
  const entryOf = (c: PaymentChanges): HistoryEntry | null =>
    c.status !== undefined && c.status !== before.status ? { status: c.status, trigger: opts.source.trigger, ref: opts.source.ref } : null;
  const messagesOf = (payment: PaymentRow, history: HistoryRow[]): { out: OutgoingMessage[]; statusCount: number } => {
    const out: OutgoingMessage[] = [];
    if (opts.updated && changes && paymentUpdateCarriesChange(before, payment)) out.push(paymentUpdatedMessage(payment, history, opts.source.ref));
    const status = payment.orderReference
      ? opts.statusMessages.map((m) =>
          paymentStatusMessage(m.name, payment, { eventKey: m.eventKey, orderItemIds: m.orderItemIds, amount: m.amount, correlationId: opts.source.ref }),
        )
      : [];
    out.push(...status);
    return { out, statusCount: status.length };
  };

  if (changes && opts.history) {
    const at = new Date();
    const entryInput = entryOf(changes);
    const { payment, entry, history } = plannedChange(before, changes, opts.history, entryInput, at);
    const { out, statusCount } = messagesOf(payment, history);
    const rows = outboxRowsOf(deps.config.appIdentifier, out);
    const statusMessageIds = rows.slice(rows.length - statusCount).map((r) => r.id);
    await updatePaymentRecording(tx, before.id, changes, entryInput, false, { at, seq: entry?.seq ?? 0, outbox: rows }, opts.alongside?.(statusMessageIds));
    if (rows.length > 0) tx.afterCommit(outboxWritten);
    return { payment, statusMessageIds };
  }

  // Message ids follow from the message name and event key (not from the row): the record's write can go first.
  const orderReference = changes && changes.orderReference !== undefined ? changes.orderReference : before.orderReference;
  const statusIds = orderReference ? opts.statusMessages.map((m) => messageId(deps.config.appIdentifier, before.tenantIdentifier, m.name, m.eventKey)) : [];
  const alongside = opts.alongside?.(statusIds);
  let payment = before;
  let history: HistoryRow[] = [];
  // the history is read in the same statement whenever a PaymentUpdated may follow (it carries the history)
  if (changes) ({ payment, history } = await updatePaymentRecording(tx, before.id, changes, entryOf(changes), opts.updated, undefined, alongside));
  else if (alongside) await runCompanionWrite(tx, alongside);
  const { out } = messagesOf(payment, history);
  if (out.length > 0) await enqueue(tx, deps.config.appIdentifier, out);
  return { payment, statusMessageIds: statusIds };
}

/** Re-publishes stored outbox rows (messages.md 4.3). Returns how many existed. */
export async function republishAll(tx: Tx, ids: readonly string[]): Promise<number> {
  let n = 0;
  for (const id of ids) if (await republish(tx, id)) n++;
  return n;
}

/** Re-publishes the newest stored message `name` of the payment (e.g. the PaymentCaptured of an automatic capture). */
export async function republishLatest(deps: AppDeps, tx: Tx, payment: PaymentRow, name: string): Promise<boolean> {
  const id = await findLatestPaymentMessageId(tx, payment.tenantIdentifier, payment.id, name);
  return id ? republish(tx, id) : false;
}

/** The tenant's decrypted settings for a PSP call (null: tenant gone). */
/** The payment's connector and its tenant's decrypted settings, for a PSP call (null: tenant gone). */
export interface PspContext {
  connector: Connector;
  settings: TenantSettings;
}

export async function pspContextOf(deps: AppDeps, payment: Pick<PaymentRow, 'tenantIdentifier' | 'connector'>): Promise<PspContext | null> {
  const row = await deps.tenants.get(payment.tenantIdentifier);
  return row ? { connector: deps.connectors.require(payment.connector), settings: decryptedSettings(deps.secrets, row) } : null;
}

/** Finishes a command run again after a crash whose operation was settled meanwhile (no re-publication). */
export async function finishRerun(tx: Tx, inboxId: string, reason: string): Promise<{ kind: 'done'; state: 'processed'; reason: string }> {
  await finishInbox(tx, inboxId, 'processed', `${reason}; nothing re-published (the same command, not a repeat)`);
  return { kind: 'done', state: 'processed', reason: 'settled' };
}

/** Marks a command inbox row finished within `tx` (only from received/retrying). */
export async function finishInbox(tx: Tx, inboxId: string, state: FinishedCommandState, reason: string | null): Promise<void> {
  await finishCommand(tx, inboxId, state, reason);
}

/** A PSP answer reduced to what a record needs. `unknown` = no definite answer (timeout, network, 5xx). */
export type OperationAnswer =
  /** `released`: the PSP released the uncaptured rest with this capture (a single-capture payment, flows.md 8 step 12). */
  | { kind: 'succeeded'; pspReference?: string; released?: boolean }
  | { kind: 'pending'; pspReference?: string }
  | { kind: 'failed'; reason: string }
  | { kind: 'unknown'; reason: string };

export function captureAnswer(r: PspResult<CaptureOutcome>): OperationAnswer {
  if (r.ok) {
    if (r.value.status !== 'succeeded') return { kind: 'pending', pspReference: r.value.pspReference };
    return { kind: 'succeeded', pspReference: r.value.pspReference, ...(r.value.finalCapture === true ? { released: true } : {}) };
  }
  const f = r.failure;
  if (f.kind === 'declined' || f.kind === 'conflict') return { kind: 'failed', reason: `${f.code}: ${f.message}` };
  return { kind: 'unknown', reason: f.kind === 'timeout' ? 'PSP timeout' : f.message };
}

// ---------------------------------------------------------------------------------------------
// Step 1: decide under the lock
// ---------------------------------------------------------------------------------------------

export interface CaptureCommandInput {
  inboxId: string;
  /** Incoming message id (event key of a rejection's failure message). */
  messageId: string;
  orderItemIds: number[];
  amount: number;
  currency: string;
}

export type CaptureStart =
  | { kind: 'done'; state: 'processed' | 'rejected'; reason: string | null }
  /** A pending record this command must (still) take to the PSP. */
  | { kind: 'call'; paymentId: string; recordId: string; snapshot?: CallSnapshot<OperationRow> };

/** Step 1 of flows.md 8, in `tx`, on the payment the caller locked in `tx` (finishes the inbox row itself when nothing else is to be done). */
export async function startCapture(deps: AppDeps, tx: Tx, payment: PaymentRow, cmd: CaptureCommandInput): Promise<CaptureStart> {
  const source: Source = { trigger: 'command', ref: cmd.inboxId };
  const records = await listOperations(tx, payment.id);

  // Automatic capture already took everything: answer with the stored PaymentCaptured, charge nothing.
  if (payment.status === 'captured' && payment.captureMode === 'automatic' && !records.some((r) => r.kind === 'capture')) {
    if (await republishLatest(deps, tx, payment, 'PaymentCaptured')) {
      await finishInbox(tx, cmd.inboxId, 'processed', 'payment was captured automatically; PaymentCaptured re-published');
      return { kind: 'done', state: 'processed', reason: 'republished' };
    }
  }

  const decision = checkCapture(payment, records, { orderItemIds: cmd.orderItemIds, amount: cmd.amount, currency: cmd.currency });
  switch (decision.kind) {
    case 'republish': {
      const rec = records.find((r) => r.id === decision.record.id)!;
      // The same command run again (its process died after the PSP call) whose record a webhook settled meanwhile:
      // its messages were written then; only a repeated command is answered by re-publication (messages.md 4.3).
      if (rec.commandId === cmd.inboxId) return finishRerun(tx, cmd.inboxId, `capture ${rec.id} was settled meanwhile`);
      await republishAll(tx, rec.resultMessageIds);
      await finishInbox(tx, cmd.inboxId, 'processed', `identical capture ${rec.id} already succeeded; PaymentCaptured re-published`);
      return { kind: 'done', state: 'processed', reason: 'republished' };
    }
    case 'noop': {
      const rec = records.find((r) => r.id === decision.record.id)!;
      if (rec.commandId === cmd.inboxId) return { kind: 'call', paymentId: payment.id, recordId: rec.id }; // our own record (crash before its outcome)
      await finishInbox(tx, cmd.inboxId, 'processed', `identical capture ${rec.id} is pending`);
      return { kind: 'done', state: 'processed', reason: 'pending' };
    }
    case 'reject': {
      await writePaymentChange(deps, tx, payment, null, {
        updated: false,
        statusMessages: [{ name: 'PaymentCaptureFailed', eventKey: eventKeys.command(cmd.messageId), orderItemIds: cmd.orderItemIds, amount: Math.abs(cmd.amount) || 0 }],
        source,
      });
      // A single-capture payment whose first (final) capture released the rest: nothing is left to capture (flows.md 8 step 12).
      const released = payment.status === 'captured' && payment.releasedAmount > 0;
      const reason = released ? 'remainder_released: the uncaptured remainder was released by an earlier final capture' : `${decision.code}: ${decision.reason}`;
      await finishInbox(tx, cmd.inboxId, 'rejected', reason);
      return { kind: 'done', state: 'rejected', reason: released ? 'remainder_released' : decision.reason };
    }
    case 'proceed': {
      const id = randomUUID();
      // the record and the payment's pending amount in one statement
      const insert = operationInsertWrite(
        {
          id,
          paymentId: payment.id,
          tenantIdentifier: payment.tenantIdentifier,
          kind: 'capture',
          itemKey: decision.itemKey,
          orderItemIds: [...new Set(cmd.orderItemIds)],
          amount: cmd.amount,
          status: 'pending',
          commandId: cmd.inboxId,
          nextAttemptAt: new Date(Date.now() + RECORD_LEASE_MS),
        },
        new Date(),
      );
      const after = await updatePayment(tx, payment.id, { pendingCaptureAmount: withPendingCapture(amountsOf(payment), cmd.amount).pendingCaptureAmount }, insert.write);
      return { kind: 'call', paymentId: payment.id, recordId: id, snapshot: { record: insert.row, payment: after } };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Steps 2 and 3: PSP call, then apply
// ---------------------------------------------------------------------------------------------

/**
 * Calls the PSP for a pending capture record (idempotency key = record id) and applies the answer. Used by the
 * command processor and the reconciliation job. `inboxId`: the command row to finish in the outcome's transaction.
 * Throws only on database errors.
 */
export async function runCapture(deps: AppDeps, recordId: string, source: Source, inboxId?: string, snapshot?: CallSnapshot<OperationRow>): Promise<OperationAnswer['kind'] | 'settled'> {
  const record = snapshot?.record ?? (await getOperation(deps.db, recordId));
  if (!record || record.status !== 'pending') {
    if (inboxId) await deps.db.tx((tx) => finishInbox(tx, inboxId, 'processed', 'capture already settled'));
    return 'settled';
  }
  const payment = snapshot?.payment ?? (await findPaymentById(deps.db, record.paymentId));
  if (!payment) throw new Error(`payment ${record.paymentId} of capture ${record.id} does not exist`);
  const psp = await pspContextOf(deps, payment);
  let answer: OperationAnswer;
  if (!psp) answer = { kind: 'unknown', reason: 'tenant configuration not found' };
  else {
    const final = record.amount >= payment.authorizedAmount - payment.capturedAmount;
    const r = await psp.connector.capture(psp.settings, payment.transactionId, record.amount, {
      idempotencyKey: record.id,
      captureId: record.id,
      final,
      signal: AbortSignal.timeout(PSP_CALL_TIMEOUT_MS),
    });
    // Test-only crash point (test/crash-restart.test.ts): die after the PSP captured, before the outcome is committed.
    if (process.env.OAP_TEST_CRASH_AFTER_PSP_CAPTURE === '1') process.kill(process.pid, 'SIGKILL');
    answer = captureAnswer(r);
  }
  await deps.db.tx(async (tx) => {
    const finish = inboxId ? { id: inboxId, state: 'processed' as const, reason: answer.kind === 'unknown' ? `capture ${record.id} pending: ${answer.reason}` : null } : null;
    const locked = await lockPaymentWithHistoryAndRecord(tx, record.paymentId, finish, operationLock, record.id);
    const rec = locked.record;
    if (rec && rec.status === 'pending') await settleCapture(deps, tx, locked.payment, rec, answer, source, locked.history);
  });
  return answer.kind;
}

/**
 * Applies an answer to a pending capture record (payment and record locked by the caller). `unknown` keeps it
 * pending with backoff, or fails it after 24 h (flows.md 8 step 8, 14).
 */
export async function settleCapture(
  deps: AppDeps,
  tx: Tx,
  payment: PaymentRow,
  rec: OperationRow,
  answer: OperationAnswer,
  source: Source,
  /** The payment's history, read with its lock: the payment change and the record's settlement then go in one statement. */
  history?: HistoryRow[],
): Promise<void> {
  if (rec.status !== 'pending') return;
  if (answer.kind === 'unknown') {
    if (Date.now() - rec.createdAt.getTime() < RECORD_GIVE_UP_MS) {
      const attempts = rec.attempts + 1;
      await updateOperation(tx, rec.id, { attempts, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)), failureReason: answer.reason });
      return;
    }
    answer = { kind: 'failed', reason: `no definite answer within 24 hours (${answer.reason})` };
  }
  const before = amountsOf(payment);
  const from = payment.status;
  const captureKey = (status: string): string => eventKeys.capture(rec.id, status);

  if (answer.kind === 'pending') {
    const to = nextStatusAfterCapturePending(before, from);
    const check = transition(from, to, 'capture_pending');
    if (check.ok && check.messages.length > 0) {
      await writePaymentChange(deps, tx, payment, { status: to }, { updated: true, statusMessages: [], source });
    }
    await updateOperation(tx, rec.id, { pspReference: answer.pspReference ?? null, attempts: rec.attempts + 1, nextAttemptAt: new Date(Date.now() + 60 * 60_000) });
    return;
  }

  if (answer.kind === 'succeeded') {
    let to = nextStatusAfterCapture(before, rec.amount);
    let amounts = withSettledCapture(before, rec.amount, true, true);
    // The PSP released the rest with this capture (single-final): the payment is `captured` and the shop learns the
    // released amount with `PaymentCanceled {orderItemIds: [], amount}` (flows.md 8 step 12, S3).
    const released = answer.released === true && to === 'partially_captured' && amounts.pendingCaptureAmount === 0 ? amounts.authorizedAmount - amounts.capturedAmount : 0;
    if (released > 0) {
      to = 'captured';
      amounts = { ...amounts, releasedAmount: released };
    }
    const check = transition(from, to, 'capture_succeeded');
    if (!check.ok) {
      deps.log.error({ paymentId: payment.id, captureId: rec.id, from, to }, 'capture succeeded at the PSP but the payment status does not allow it; amounts recorded');
      await writePaymentChange(deps, tx, payment, amountChanges(amounts), { updated: true, statusMessages: [], source });
      await updateOperation(tx, rec.id, { status: 'succeeded', pspReference: answer.pspReference ?? null });
      return;
    }
    const status = statusMessagesOf(check.messages, (name) => ({ name, eventKey: captureKey('succeeded'), orderItemIds: rec.orderItemIds, amount: rec.amount }));
    if (released > 0) status.push({ name: 'PaymentCanceled', eventKey: captureKey('released'), orderItemIds: [], amount: released });
    await writePaymentChange(deps, tx, payment, { ...amountChanges(amounts), status: to }, {
      updated: true,
      statusMessages: status,
      source,
      ...(history ? { history } : {}),
      alongside: (ids) => operationUpdateWrite(rec.id, { status: 'succeeded', pspReference: answer.pspReference ?? null, resultMessageIds: ids }),
    });
    return;
  }

  // failed
  const to = nextStatusAfterCaptureFailed(before, from);
  const amounts = withSettledCapture(before, rec.amount, false, true);
  const check = transition(from, to, 'capture_failed');
  const changed = check.ok && check.changed;
  await writePaymentChange(deps, tx, payment, { ...amountChanges(amounts), ...(changed ? { status: to } : {}) }, {
    updated: changed,
    statusMessages: [{ name: 'PaymentCaptureFailed', eventKey: captureKey('failed'), orderItemIds: rec.orderItemIds, amount: rec.amount }],
    source,
    ...(history ? { history } : {}),
    alongside: (ids) => operationUpdateWrite(rec.id, { status: 'failed', failureReason: answer.reason, resultMessageIds: ids }),
  });
}

/** The status messages (not PaymentUpdated) of a transition row, with the caller's items/amount/key. */
export function statusMessagesOf(messages: readonly TransitionMessage[], build: (name: string) => StatusMsg): StatusMsg[] {
  return messages.filter((m) => m.name !== 'PaymentUpdated').map((m) => build(m.name));
}

// ---------------------------------------------------------------------------------------------
// Webhooks: payment.captured / payment.capture_failed (manual capture)
// ---------------------------------------------------------------------------------------------

export type OperationWebhookResult = { kind: 'applied' | 'noop' | 'ignored' | 'waiting_for_payment' | 'waiting_for_order'; reason?: string; /** the inbox row's write went with the change */ written?: boolean };

/**
 * A capture result reported by webhook. `amountCaptured` is the PSP's cumulative total: pending records it covers
 * (oldest first) become `succeeded` with their own messages (same event keys as the direct answer, so whichever comes
 * first writes them); an excess without a record is a PSP-side capture (flows.md 8 step 11). A failure fails the
 * oldest pending record; without one it is a no-op (the direct answer already failed it).
 */
export async function applyCaptureWebhook(
  deps: AppDeps,
  tx: Tx,
  tenant: string,
  outcome: Extract<WebhookOutcome, { kind: 'capture' }>,
  source: Source,
  locked: LockedPayment | null = null,
): Promise<OperationWebhookResult> {
  const found = locked?.payment ?? (await findPaymentByTransaction(tx, tenant, outcome.transactionId));
  if (!found) return { kind: 'waiting_for_payment', reason: `payment ${outcome.transactionId} is not stored yet` };
  if (!found.orderReference) return { kind: 'waiting_for_order', reason: 'payment is not linked to an order yet' };
  let { payment, history } = locked ?? (await lockPaymentWithHistory(tx, found.id));
  const pendingCaptures = async () => (await listOperations(tx, payment.id)).filter((r) => r.kind === 'capture' && r.status === 'pending');

  if (!outcome.succeeded) {
    const rec = (await pendingCaptures())[0];
    if (!rec) return { kind: 'noop' };
    await settleCapture(deps, tx, payment, rec, { kind: 'failed', reason: outcome.reason ?? 'capture_failed' }, source, history);
    return { kind: 'applied' };
  }

  if (!Number.isSafeInteger(outcome.amountCaptured)) return { kind: 'ignored', reason: 'capture event without a captured amount' };
  let remaining = outcome.amountCaptured - payment.capturedAmount;
  // Already counted (the capture's own answer settled it first, the usual order): nothing to read.
  if (remaining <= 0) return { kind: 'noop' };
  const pending = await pendingCaptures();
  let applied = false;
  let unsettled = 0;
  for (const rec of pending) {
    if (rec.amount > remaining) {
      unsettled++;
      continue;
    }
    await settleCapture(deps, tx, payment, rec, { kind: 'succeeded', ...(outcome.final === true ? { released: true } : {}) }, source, history);
    ({ payment, history } = await lockPaymentWithHistory(tx, payment.id));
    remaining -= rec.amount;
    applied = true;
  }
  if (remaining <= 0) return { kind: applied ? 'applied' : 'noop' };
  if (unsettled > 0) {
    // The total covers only part of a pending record: its own answer (or reconciliation) settles it, no guessing.
    return { kind: applied ? 'applied' : 'noop', reason: 'capture total covers part of a pending capture' };
  }

  // PSP-side capture without a record.
  const before = amountsOf(payment);
  const extra = Math.min(remaining, Math.max(0, before.authorizedAmount - before.capturedAmount - before.pendingCaptureAmount - before.releasedAmount));
  if (extra <= 0) return { kind: applied ? 'applied' : 'ignored', reason: 'reported capture exceeds the authorized amount' };
  const full = before.capturedAmount + extra + before.releasedAmount >= before.authorizedAmount && before.pendingCaptureAmount === 0;
  // A final PSP-side partial capture (single-capture payment) released the rest: `captured` plus PaymentCanceled (S3).
  const released = !full && outcome.final === true && before.pendingCaptureAmount === 0 ? before.authorizedAmount - before.capturedAmount - extra - before.releasedAmount : 0;
  const to = full || released > 0 ? 'captured' : 'partially_captured';
  const check = transition(payment.status, to, 'capture_succeeded');
  if (!check.ok) return { kind: applied ? 'applied' : 'ignored', reason: check.error.message };
  const id = randomUUID();
  const records = await listOperations(tx, payment.id);
  const items = to === 'captured' ? uncoveredItemIds(orderItemIdsOf(payment.orderData), records.filter((r) => r.kind === 'capture' && r.status === 'succeeded')) : [];
  const status = to === 'captured' ? statusMessagesOf(check.messages, (name) => ({ name, eventKey: eventKeys.capture(id, 'succeeded'), orderItemIds: items, amount: extra })) : [];
  if (released > 0) status.push({ name: 'PaymentCanceled', eventKey: eventKeys.capture(id, 'released'), orderItemIds: [], amount: released });
  const changes = { capturedAmount: before.capturedAmount + extra, status: to, ...(released > 0 ? { releasedAmount: before.releasedAmount + released } : {}) };
  await writePaymentChange(deps, tx, payment, changes, {
    updated: true,
    statusMessages: status,
    source,
    history,
    alongside: (ids) =>
      operationInsertWrite(
        { id, paymentId: payment.id, tenantIdentifier: payment.tenantIdentifier, kind: 'capture', itemKey: '', orderItemIds: [], amount: extra, status: 'succeeded', commandId: null, resultMessageIds: ids },
        new Date(),
      ).write,
  });
  return { kind: 'applied' };
}

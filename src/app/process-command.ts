/**
 * Processing one stored `payment-commands` row (messages.md 4 and 8): decode, resolve tenant and payment, then the
 * capture / cancel / refund use case. Inbox row outcomes: `processed` | `ignored` | `rejected`; a transient failure
 * (database conflict, PSP unreachable before any record exists, ...) → `retrying` with backoff 1 s, 5 s, 30 s, 2 min,
 * 10 min, then every 30 min; after 24 h of failures → `dead` and the command's failure message
 * (event key `command/<incoming message id>`).
 *
 * Exactly once in effect: the inbox de-duplicates by transport message id; different commands for the same thing meet
 * the natural keys under the payment row lock; the PSP idempotency key is the operation record's id, so repeating a
 * PSP call after a crash (this row again, or the reconciliation job) never acts twice.
 */
import type { WebhookOutcome } from '../connectors/types.js';
import { commandInboxTransition } from '../domain/processing-status.js';
import type { CompanionWrite, Tx } from '../store/db.js';
import { backoffMs } from '../store/operations.js';
import { loadCommand, recordCommandFailure, type FinishedCommandState, type InboxCommandRow } from '../store/payment-commands.js';
import { lockPaymentByOrder, type LockedPayment } from '../store/payments.js';
import { applyCancelWebhook, runCancel, startCancel } from './cancel-payment.js';
import { applyCaptureWebhook, finishInbox, runCapture, startCapture, writePaymentChange, type OperationWebhookResult, type Source } from './capture-payment.js';
import type { AppDeps } from './context.js';
import { eventKeys } from './payment-messages.js';
import { applyRefundWebhook, runRefund, startRefund } from './refund-payment.js';

export type CommandKind = 'capture' | 'cancel' | 'refund';

/** messages.md 4.2 and 4.4 (deprecated aliases). */
export const COMMAND_NAMES: Readonly<Record<string, CommandKind>> = Object.freeze({
  CapturePayment: 'capture',
  PaymentConfirmationRequested: 'capture',
  CancelPayment: 'cancel',
  PaymentCancelReservationRequested: 'cancel',
  RefundPayment: 'refund',
  PaymentRefundRequested: 'refund',
});

const FAILURE_MESSAGE: Record<CommandKind, string> = {
  capture: 'PaymentCaptureFailed',
  cancel: 'PaymentCancellationFailed',
  refund: 'PaymentRefundFailed',
};

export const DEAD_AFTER_MS = 24 * 60 * 60_000;

export type { InboxCommandRow } from '../store/payment-commands.js';

export interface DecodedCommand {
  kind: CommandKind;
  orderReference: string;
  orderItemIds: number[];
  amount: number;
  currency: string;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** Whatever item ids and amount can be read from a payload (for failure messages of bad payloads). */
function lenientItems(kind: CommandKind, p: Record<string, unknown>): number[] {
  if (kind === 'refund' && Array.isArray(p.orderItems)) {
    return p.orderItems.map((i) => (i && typeof i === 'object' ? (i as Record<string, unknown>).orderItemId : undefined)).filter(isInt);
  }
  return Array.isArray(p.orderItemIds) ? p.orderItemIds.filter(isInt) : [];
}

/** messages.md 4.2. `error` = a required field missing or of the wrong type. */
export function decodePayload(kind: CommandKind, p: Record<string, unknown>): { ok: true; cmd: DecodedCommand } | { ok: false; error: string; items: number[]; amount: number } {
  const bad = (error: string) => ({ ok: false as const, error, items: lenientItems(kind, p), amount: isInt(p.amount) ? Math.abs(p.amount) : 0 });
  if (typeof p.orderReference !== 'string' || p.orderReference === '') return bad('orderReference must be a non-empty string');
  if (typeof p.currencyIsoCode !== 'string' || p.currencyIsoCode === '') return bad('currencyIsoCode must be a non-empty string');
  let items: number[];
  if (kind === 'refund' && p.orderItems !== undefined && p.orderItems !== null) {
    if (!Array.isArray(p.orderItems)) return bad('orderItems must be an array');
    items = [];
    for (const i of p.orderItems) {
      const id = i && typeof i === 'object' ? (i as Record<string, unknown>).orderItemId : undefined;
      if (!isInt(id)) return bad('orderItems[].orderItemId must be an integer');
      items.push(id);
    }
  } else {
    if (!Array.isArray(p.orderItemIds) || !p.orderItemIds.every(isInt)) return bad(kind === 'refund' ? 'orderItems or orderItemIds is required' : 'orderItemIds must be an array of integers');
    items = p.orderItemIds as number[];
  }
  let amount = 0;
  if (kind === 'capture') {
    if (!isInt(p.amount) || p.amount <= 0) return bad('amount must be an integer > 0');
    amount = p.amount;
  } else if (kind === 'refund') {
    if (!isInt(p.amount) || p.amount === 0) return bad('amount must be a non-zero integer');
    amount = Math.abs(p.amount);
  } else if (p.amount !== undefined && p.amount !== null && !isInt(p.amount)) {
    amount = 0; // CancelPayment: ignored
  }
  return { ok: true, cmd: { kind, orderReference: p.orderReference, orderItemIds: items, amount, currency: p.currencyIsoCode } };
}

async function finishAlone(deps: AppDeps, id: string, state: FinishedCommandState, reason: string | null): Promise<void> {
  await deps.db.tx((tx) => finishInbox(tx, id, state, reason));
}

export type ProcessResult = 'processed' | 'ignored' | 'rejected' | 'retrying' | 'dead' | 'skipped';

/**
 * Processes one inbox row (claimed by the caller, given as the claim returned it or by id). Never throws: failures move
 * the row to `retrying` / `dead`.
 */
export async function processCommand(deps: AppDeps, claimed: string | InboxCommandRow): Promise<ProcessResult> {
  const inboxId = typeof claimed === 'string' ? claimed : claimed.id;
  let row: InboxCommandRow | null = null;
  try {
    row = typeof claimed === 'string' ? await loadCommand(deps.db, claimed) : claimed;
    if (!row || (row.state !== 'received' && row.state !== 'retrying')) return 'skipped';
    return await handle(deps, row);
  } catch (err) {
    deps.log.warn({ err, commandInboxId: inboxId }, 'command processing failed; will retry');
    try {
      return row ? await markRetrying(deps, row, (err as Error)?.message ?? String(err)) : 'skipped';
    } catch (err2) {
      deps.log.error({ err: err2, commandInboxId: inboxId }, 'could not record the command processing failure');
      return 'skipped';
    }
  }
}

async function handle(deps: AppDeps, row: InboxCommandRow): Promise<ProcessResult> {
  const log = deps.log.child({ commandInboxId: row.id, messageName: row.message_name, tenantIdentifier: row.tenant_identifier });
  const kind = row.message_name ? COMMAND_NAMES[row.message_name] : undefined;
  if (!kind) {
    await finishAlone(deps, row.id, 'ignored', `unknown message name "${row.message_name ?? ''}"`);
    return 'ignored';
  }
  const tenant = row.tenant_identifier ? await deps.tenants.get(row.tenant_identifier) : null;
  if (!tenant || tenant.status === 'DISCONNECTED') {
    log.info(`command ignored: tenant ${tenant ? 'disconnected' : 'unknown'}`);
    await finishAlone(deps, row.id, 'ignored', tenant ? 'tenant is disconnected' : 'tenant is unknown');
    return 'ignored';
  }
  const payload = row.payload !== null && typeof row.payload === 'object' && !Array.isArray(row.payload) ? (row.payload as Record<string, unknown>) : null;
  const orderReference = payload && typeof payload.orderReference === 'string' ? payload.orderReference : null;
  if (!payload || orderReference === null) {
    await finishAlone(deps, row.id, 'ignored', payload ? 'payload has no orderReference' : 'payload is not a JSON object');
    return 'ignored';
  }
  const decoded = decodePayload(kind, payload);
  const source: Source = { trigger: 'command', ref: row.id };
  // Step 1 under the payment's lock, taken by order reference (one statement: no separate read before the lock).
  const started = await deps.db.tx(async (tx) => {
    const payment = await lockPaymentByOrder(tx, tenant.tenant_identifier, orderReference);
    if (!payment) {
      await finishInbox(tx, row.id, 'ignored', `no payment for order "${orderReference}"`);
      return { kind: 'ignored' } as const;
    }
    if (!decoded.ok) {
      await writePaymentChange(deps, tx, payment, null, {
        updated: false,
        statusMessages: [{ name: FAILURE_MESSAGE[kind], eventKey: eventKeys.command(row.transport_message_id), orderItemIds: decoded.items, amount: decoded.amount }],
        source,
      });
      await finishInbox(tx, row.id, 'rejected', `invalid payload: ${decoded.error}`);
      return { kind: 'rejected' } as const;
    }
    const cmd = decoded.cmd;
    const base = { inboxId: row.id, messageId: row.transport_message_id, orderItemIds: cmd.orderItemIds };
    switch (kind) {
      case 'capture':
        return { kind, start: await startCapture(deps, tx, payment, { ...base, amount: cmd.amount, currency: cmd.currency }) } as const;
      case 'cancel':
        return { kind, start: await startCancel(deps, tx, payment, base) } as const;
      case 'refund':
        return { kind, start: await startRefund(deps, tx, payment, { ...base, amount: cmd.amount, currency: cmd.currency }) } as const;
    }
  });
  switch (started.kind) {
    case 'ignored':
    case 'rejected':
      return started.kind;
    case 'capture': {
      const s = started.start;
      if (s.kind === 'done') return s.state;
      await runCapture(deps, s.recordId, source, row.id, s.snapshot);
      return 'processed';
    }
    case 'cancel': {
      const s = started.start;
      if (s.kind === 'done') return s.state;
      await runCancel(deps, s.recordId, source, row.id);
      return 'processed';
    }
    case 'refund': {
      const s = started.start;
      if (s.kind === 'done') return s.state;
      await runRefund(deps, s.refundId, source, row.id, s.snapshot);
      return 'processed';
    }
  }
}

/** `retrying` with backoff; after 24 h since arrival `dead` with the command's failure message. */
async function markRetrying(deps: AppDeps, row: InboxCommandRow, reason: string): Promise<ProcessResult> {
  const attempts = row.attempts + 1;
  // dead only from retrying (states.md 5): a first failure always retries.
  const dead = Date.now() - row.created_at.getTime() >= DEAD_AFTER_MS && commandInboxTransition(row.state, 'dead').ok;
  const to = dead ? 'dead' : 'retrying';
  if (!commandInboxTransition(row.state, to).ok) return 'skipped';
  return deps.db.tx(async (tx) => {
    if (!(await recordCommandFailure(tx, row.id, { state: to, attempts, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)), lastError: reason.slice(0, 1000) }))) {
      return 'skipped' as const;
    }
    if (dead) {
      await sendDeadFailure(deps, tx, row);
      tx.afterCommit(() => deps.log.error({ commandInboxId: row.id, reason }, 'command is dead after 24 hours of failures'));
    }
    return to;
  });
}

async function sendDeadFailure(deps: AppDeps, tx: Tx, row: InboxCommandRow): Promise<void> {
  const kind = row.message_name ? COMMAND_NAMES[row.message_name] : undefined;
  if (!kind || !row.tenant_identifier || !row.payload || typeof row.payload !== 'object') return;
  const p = row.payload as Record<string, unknown>;
  if (typeof p.orderReference !== 'string') return;
  const payment = await lockPaymentByOrder(tx, row.tenant_identifier, p.orderReference);
  if (!payment) return;
  const d = decodePayload(kind, p);
  const items = d.ok ? d.cmd.orderItemIds : d.items;
  const amount = d.ok ? d.cmd.amount : d.amount;
  await writePaymentChange(deps, tx, payment, null, {
    updated: false,
    statusMessages: [{ name: FAILURE_MESSAGE[kind], eventKey: eventKeys.command(row.transport_message_id), orderItemIds: items, amount }],
    source: { trigger: 'command', ref: row.id },
  });
}

/**
 * Webhook outcomes about operation records (called from webhook processing, in its transaction):
 * capture results, refund status changes, and a cancel reported while a cancel record is pending.
 * null = not an operation outcome: the caller applies it as a payment outcome.
 * `locked`: the payment the outcome names (its `transactionId`), already locked with its history in this transaction
 * (the webhook's context snapshot), so it is not looked up and locked again; null: look it up. `processed`: the inbox
 * row's own write, carried by the statement of an applied refund status change (the result says `written`).
 */
export async function applyOperationWebhook(
  deps: AppDeps,
  tx: Tx,
  tenant: string,
  outcome: WebhookOutcome,
  webhookInboxId: string,
  locked: LockedPayment | null = null,
  processed: CompanionWrite | null = null,
): Promise<OperationWebhookResult | null> {
  const source: Source = { trigger: 'webhook', ref: webhookInboxId };
  switch (outcome.kind) {
    case 'capture':
      return applyCaptureWebhook(deps, tx, tenant, outcome, source, locked);
    case 'refund':
      return applyRefundWebhook(deps, tx, tenant, outcome, source, locked, processed);
    case 'payment':
      return applyCancelWebhook(deps, tx, tenant, outcome, source, locked);
    default:
      return null;
  }
}

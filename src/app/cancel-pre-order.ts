/**
 * Cancel a pre-order payment (sync-api.md 4.6, flows.md 7), and the shared "cancel an unlinked payment" step used by
 * the abandoned pre-order expiry job (`pre-order-expiry.ts`).
 *
 * Open point, decided: a pre-order cancel gets NO cancel record (unlike `CancelPayment`, flows.md 0 rule 3). There is
 * no order and no OMS waiting for a result, the operation has one possible effect (void the unpaid payment), and a
 * retry is made safe by the PSP idempotency key derived from the payment id (`cancel-pre-order:<payment id>`): a
 * repeated or crashed-and-retried cancel sends the same key, so the PSP never acts twice. If the process dies after
 * the PSP call, the payment stays `new`; the next cancel (or the expiry job) repeats the call with the same key and
 * finishes it, and a `payment.canceled` webhook is held (no order) and discarded then.
 */
import type { Connector, PspFailure } from '../connectors/types.js';
import { AppError, illegalTransition, paymentNotFound } from '../domain/errors.js';
import { messagesFor, transition } from '../domain/payment-status.js';
import { enqueue } from '../messaging/outbox.js';
import { findPaymentByTransaction, lockPayment, updatePaymentRecording, type HistoryTrigger, type PaymentRow } from '../store/payments.js';
import { decryptedSettings } from '../store/tenants.js';
import { derivedIdempotencyKey, pspCall, requireObjectBody, transactionIdOf, transportError, type TenantLike } from './confirm-pre-order.js';
import type { AppDeps } from './context.js';
import { paymentUpdatedMessage } from './payment-messages.js';
import { discardHeldWebhooks } from './webhook-processing.js';

export const linkedToOrder = (ref: string): AppError => new AppError('ILLEGAL_TRANSITION', `The payment is linked to order "${ref}"; cancel it through the order.`);
export const alreadyCaptured = (): AppError => new AppError('ILLEGAL_TRANSITION', 'The payment is already captured at the payment provider.');

export const preOrderCancelKey = (paymentId: string): string => derivedIdempotencyKey(`cancel-pre-order:${paymentId}`);

export type CancelResult = { kind: 'canceled' | 'already_canceled' };

/**
 * Cancels an unlinked `new` payment at the PSP, then (one transaction) sets `canceled` through the status machine,
 * discards its held webhooks and writes `PaymentUpdated` (no `PaymentCanceled`: it is order-only). Throws AppError for
 * the 409 / 422 / 502 / 504 cases of 4.6, leaving the status unchanged.
 */
export async function cancelUnlinkedPayment(
  deps: AppDeps,
  tenant: Pick<TenantLike, 'config' | 'secrets'>,
  payment: PaymentRow,
  source: { trigger: HistoryTrigger; ref: string; reason?: string },
): Promise<CancelResult> {
  if (payment.orderReference) throw linkedToOrder(payment.orderReference);
  if (payment.status === 'canceled') return { kind: 'already_canceled' };
  const gate = transition(payment.status, 'canceled', 'cancel_succeeded');
  if (!gate.ok) throw illegalTransition(payment.status, 'canceled');

  const settings = decryptedSettings(deps.secrets, tenant);
  const connector = deps.connectors.require(payment.connector);
  const r = await pspCall((signal) => connector.cancel(settings, payment.transactionId, { idempotencyKey: preOrderCancelKey(payment.id), reason: 'abandoned', signal }));
  if (!r.ok) await explainRefusal(connector, settings, payment, r.failure);
  // An asynchronous cancel (capability cancelResult `async`) is settled by the PSP's webhook; nothing changes yet.
  else if (r.value.status === 'pending') return { kind: 'canceled' };

  return deps.db.tx(async (tx) => {
    const locked = await lockPayment(tx, payment.id);
    if (locked.status === 'canceled') return { kind: 'already_canceled' as const };
    if (locked.orderReference) throw linkedToOrder(locked.orderReference);
    const check = transition(locked.status, 'canceled', 'cancel_succeeded');
    if (!check.ok) throw illegalTransition(locked.status, 'canceled');
    const entry = { status: 'canceled', trigger: source.trigger, ref: source.ref, details: source.reason ? { reason: source.reason } : null };
    const { payment: after, history } = await updatePaymentRecording(tx, locked.id, { status: 'canceled', pendingCaptureAmount: 0 }, entry, true);
    await discardHeldWebhooks(tx, locked.tenantIdentifier, locked.transactionId);
    // `PaymentCanceled` is order-only (states.md 1.2 `*`): for an unlinked payment only `PaymentUpdated` remains.
    const out = messagesFor(check.messages, false).map((m) => {
      if (m.name !== 'PaymentUpdated') throw new Error(`unexpected message ${m.name} for an unlinked payment`);
      return paymentUpdatedMessage(after, history, source.ref);
    });
    await enqueue(tx, deps.config.appIdentifier, out);
    return { kind: 'canceled' as const };
  });
}

/** Maps a refused / failed PSP cancel onto 4.6's answers. Returns normally only if the PSP says it is canceled anyway. */
async function explainRefusal(connector: Connector, settings: Record<string, unknown>, payment: PaymentRow, f: PspFailure): Promise<void> {
  if (f.kind === 'timeout' || f.kind === 'error') throw transportError(f);
  // A refusal: ask the PSP what the payment is, to tell "already captured" (409) from other reasons (422).
  const s = await pspCall((signal) => connector.getPayment(settings, payment.transactionId, signal));
  if (s.ok) {
    if (s.value.state === 'canceled') return;
    if (s.value.state === 'captured' || s.value.amountCaptured > 0) throw alreadyCaptured();
  }
  throw new AppError('PAYMENT_DECLINED', `The payment provider refused to cancel the payment: ${f.message}`);
}

export async function cancelPreOrderPayment(deps: AppDeps, tenant: TenantLike, body: unknown, requestId: string): Promise<{ isSuccessful: true; message: null }> {
  const transactionId = transactionIdOf(requireObjectBody(body));
  const payment = await findPaymentByTransaction(deps.db, tenant.tenant_identifier, transactionId);
  if (!payment) throw paymentNotFound(transactionId);
  await cancelUnlinkedPayment(deps, tenant, payment, { trigger: 'sync', ref: requestId });
  return { isSuccessful: true, message: null };
}

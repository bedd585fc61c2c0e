/**
 * Confirm a pre-order payment (sync-api.md 4.5, flows.md 5 steps 8-12 and 6 step 9): links a payment that was
 * created without an order to the order the shop has just saved, replays the webhooks held for it, and, if it is
 * still `new`, asks the PSP for the outcome and applies it through the status machine.
 *
 * Express checkout with a changed total (open point, decided): when `orderData.grandTotal` differs from the
 * payment's amount (shipping chosen after the customer lookup), the connector is asked to change the PSP payment's
 * amount first. The sandbox (like most PSPs) only allows that before the payment is authorized; an express payment
 * is authorized when the payer confirms in the express dialog, so the sandbox refuses with 409 and we answer
 * 409 CONFLICT `The order total does not match the pre-order payment amount.` with nothing linked: the shop must
 * start a new payment for the new total (or cancel this one via cancel-pre-order-payment). A PSP error / timeout
 * while changing the amount answers 502 / 504, also with nothing linked (the shop may retry).
 */
import { derivedUuid, uuidNamespace } from '../domain/derived-id.js';
import type { PspFailure, PspResult } from '../connectors/types.js';
import { AppError, illegalTransition, paymentNotFound, validationError } from '../domain/errors.js';
import { normalizeCurrency, parseMinorUnits } from '../domain/money.js';
import { isObject } from '../domain/input.js';
import { enqueue } from '../messaging/outbox.js';
import { addAlias, findPaymentById, findPaymentByOrder, findPaymentByTransaction, lockPayment, recordPspObject, updatePaymentRecording, type PaymentRow } from '../store/payments.js';
import type { Tx } from '../store/db.js';
import { decryptedSettings, type TenantRecord } from '../store/tenants.js';
import { applyPaymentOutcome } from './apply-payment-outcome.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { paymentUpdatedMessage } from './payment-messages.js';
import { replayHeldWebhooks } from './webhook-processing.js';
import { returnUrlFor } from './initialize-payment.js';

export type TenantLike = Pick<TenantRecord, 'tenant_identifier' | 'config' | 'secrets' | 'announced_methods' | 'connector'>;

const IDEMPOTENCY_NAMESPACE = uuidNamespace('6d1f0c7e-2b8a-4c3e-9f51-7a0e4d2c9b13');

/** A PSP idempotency key derived from a natural key (UUIDv5), so a retried request cannot act twice. */
export const derivedIdempotencyKey = (name: string): string => derivedUuid(name, IDEMPOTENCY_NAMESPACE);

const nonBlank = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** Runs a PSP call with the 15 s budget; a thrown error counts as a PSP error (timeout if the budget ran out). */
export async function pspCall<T>(fn: (signal: AbortSignal) => Promise<PspResult<T>>): Promise<PspResult<T>> {
  const signal = AbortSignal.timeout(PSP_CALL_TIMEOUT_MS);
  try {
    return await fn(signal);
  } catch (err) {
    if (signal.aborted) return { ok: false, failure: { kind: 'timeout' } };
    return { ok: false, failure: { kind: 'error', message: (err as Error)?.message ?? 'PSP call failed' } };
  }
}

/** PSP error → 502 PSP_ERROR, timeout → 504 PSP_TIMEOUT. */
export function transportError(f: PspFailure): AppError {
  if (f.kind === 'timeout') return new AppError('PSP_TIMEOUT', 'The payment provider did not answer in time.');
  return new AppError('PSP_ERROR', 'The payment provider could not be reached or answered with an error.');
}

/**
 * The transaction id of 4.5 / 4.6: top-level `transactionId` wins, else `preOrderPaymentData.transactionId`;
 * neither → 400 naming `preOrderPaymentData.transactionId`.
 */
export function transactionIdOf(body: Record<string, unknown>): string {
  if (nonBlank(body.transactionId)) return body.transactionId.trim();
  if (body.transactionId !== undefined && body.transactionId !== null && typeof body.transactionId !== 'string') {
    throw validationError('transactionId', 'Field "transactionId" must be a string.');
  }
  const pod = body.preOrderPaymentData;
  if (pod !== undefined && pod !== null && !isObject(pod) && !(Array.isArray(pod) && pod.length === 0)) {
    throw validationError('preOrderPaymentData', 'Field "preOrderPaymentData" must be an object.');
  }
  const t = isObject(pod) ? pod.transactionId : undefined;
  if (nonBlank(t)) return t.trim();
  throw validationError('preOrderPaymentData.transactionId');
}

export function requireObjectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) throw new AppError('INVALID_REQUEST', 'The request body must be a JSON object.');
  if (!isObject(body)) throw new AppError('INVALID_REQUEST', 'The request body must be a JSON object.');
  return body;
}

export interface ConfirmRequest {
  transactionId: string;
  orderReference: string;
  orderData: Record<string, unknown>;
  amount: number;
  currency: string;
  localeName: string | null;
  /** What the storefront sent back (`preOrderPaymentData`, e.g. an express confirmation token), for server-side confirmation. */
  clientData: Record<string, unknown>;
}

function intField(obj: Record<string, unknown>, key: string, path: string, required: boolean, min?: number): void {
  const v = obj[key];
  if (v === undefined || v === null || (!required && v === '')) {
    if (required) throw validationError(path);
    return;
  }
  const n = parseMinorUnits(v);
  if (n === null) throw validationError(path, `Field "${path}" must be an integer.`);
  if (min !== undefined && n < min) throw validationError(path, `Field "${path}" must be an integer of at least ${min}.`);
  obj[key] = n;
}

/** Validates the 4.5 body (2.3 rules) and converts integer fields. */
export function parseConfirmRequest(raw: unknown): ConfirmRequest {
  const body = requireObjectBody(raw);
  const ref = body.orderReference;
  if (ref === undefined || ref === null || ref === '') throw validationError('orderReference');
  if (typeof ref !== 'string' || ref.trim() === '') throw validationError('orderReference', 'Field "orderReference" must be a non-empty string.');
  const rawOrder = body.orderData;
  if (rawOrder === undefined || rawOrder === null) throw validationError('orderData');
  if (!isObject(rawOrder)) throw validationError('orderData', 'Field "orderData" must be an object.');
  const orderData: Record<string, unknown> = { ...rawOrder };
  const inner = orderData.orderReference;
  if (inner !== undefined && inner !== null && inner !== '' && inner !== ref) {
    throw validationError('orderData.orderReference', 'Field "orderData.orderReference" must equal "orderReference".');
  }
  orderData.orderReference = ref;
  intField(orderData, 'grandTotal', 'orderData.grandTotal', true, 1);
  const cur = orderData.currencyCode;
  if (cur === undefined || cur === null || cur === '') throw validationError('orderData.currencyCode');
  const currency = normalizeCurrency(cur);
  if (currency === null) throw validationError('orderData.currencyCode', 'Field "orderData.currencyCode" must be an ISO 4217 currency code.');
  const items = orderData.items;
  if (items === undefined || items === null) throw validationError('orderData.items');
  if (!Array.isArray(items)) throw validationError('orderData.items', 'Field "orderData.items" must be an array.');
  if (items.length === 0) throw validationError('orderData.items', 'Field "orderData.items" must contain at least one item.');
  orderData.items = items.map((item, i) => {
    const p = `orderData.items[${i}]`;
    if (!isObject(item)) throw validationError(p, `Field "${p}" must be an object.`);
    const copy = { ...item };
    intField(copy, 'idSalesOrderItem', `${p}.idSalesOrderItem`, true);
    for (const f of ['quantity', 'unitPrice', 'unitGrossPrice', 'unitNetPrice', 'sumPrice']) intField(copy, f, `${p}.${f}`, false);
    return copy;
  });
  for (const f of ['discountTotal', 'taxTotal']) intField(orderData, f, `orderData.${f}`, false);
  const locale = typeof orderData.localeName === 'string' ? orderData.localeName : typeof body.localeName === 'string' ? body.localeName : null;
  const clientData = isObject(body.preOrderPaymentData) ? { ...body.preOrderPaymentData } : {};
  return { transactionId: transactionIdOf(body), orderReference: ref, orderData, amount: orderData.grandTotal as number, currency, localeName: locale, clientData };
}

export const totalMismatch = (): AppError => new AppError('CONFLICT', 'The order total does not match the pre-order payment amount.');
export const declinedAnswer = (): AppError => new AppError('PAYMENT_DECLINED', 'The payment provider declined the payment; it can no longer be authorized.');

/** Runs the linking transaction; a concurrent link of the same order to another payment (unique index) is a 409. */
async function linkInTransaction<T>(deps: AppDeps, fn: (tx: Tx) => Promise<T>, orderReference: string): Promise<T> {
  try {
    return await deps.db.tx(fn);
  } catch (err) {
    if ((err as { code?: unknown })?.code === '23505') throw new AppError('CONFLICT', `Order "${orderReference}" already has another payment.`);
    throw err;
  }
}

/** What a confirmation answers for a payment linked to its order: 200, or the 422 of a declined payment (also on repeats). */
function answerFor(payment: PaymentRow): { isSuccessful: true; message: null } {
  if (payment.status === 'authorization_failed') throw declinedAnswer();
  return { isSuccessful: true, message: null };
}

export async function confirmPreOrderPayment(deps: AppDeps, tenant: TenantLike, body: unknown, requestId: string): Promise<{ isSuccessful: true; message: null }> {
  const req = parseConfirmRequest(body);
  const tenantId = tenant.tenant_identifier;

  const payment = await findPaymentByTransaction(deps.db, tenantId, req.transactionId);
  if (!payment) throw paymentNotFound(req.transactionId);
  if (payment.orderReference === req.orderReference) return answerFor(payment); // idempotent repeat
  if (payment.orderReference) throw new AppError('CONFLICT', `The payment is already linked to order "${payment.orderReference}".`);
  const other = await findPaymentByOrder(deps.db, tenantId, req.orderReference);
  if (other && other.id !== payment.id) throw new AppError('CONFLICT', `Order "${req.orderReference}" already has another payment.`);
  if (payment.status === 'canceled') throw illegalTransition(payment.status, 'authorized');
  if (payment.currency !== req.currency) throw new AppError('CONFLICT', 'The order currency does not match the pre-order payment currency.');

  const settings = decryptedSettings(deps.secrets, tenant);
  const connector = deps.connectors.require(payment.connector);

  // Step 5: amount change at the PSP before anything is linked.
  let newAmount: { amount: number; pspId: string; preOrderPaymentData: Record<string, unknown>; publicDetails: Record<string, unknown> } | null = null;
  if (payment.amount !== req.amount) {
    const r = await pspCall((signal) =>
      connector.updatePaymentAmount(settings, payment.transactionId, req.amount, {
        idempotencyKey: derivedIdempotencyKey(`confirm-amount:${payment.id}:${payment.version}:${req.amount}`),
        paymentId: payment.id,
        signal,
      }),
    );
    if (!r.ok) {
      // Refused (the sandbox: already authorized at the express confirmation) → 409, nothing linked.
      if (r.failure.kind === 'declined' || r.failure.kind === 'conflict') throw totalMismatch();
      throw transportError(r.failure);
    }
    if (r.value.amount !== req.amount) throw totalMismatch();
    newAmount = { amount: req.amount, pspId: r.value.id, preOrderPaymentData: r.value.preOrderPaymentData, publicDetails: r.value.publicDetails };
  }

  // Step 6: one transaction links the order.
  const linked = await linkInTransaction(deps, async (tx) => {
    const locked = await lockPayment(tx, payment.id);
    if (locked.orderReference === req.orderReference) return { payment: locked, fresh: false };
    if (locked.orderReference) throw new AppError('CONFLICT', `The payment is already linked to order "${locked.orderReference}".`);
    if (locked.status === 'canceled') throw illegalTransition(locked.status, 'authorized');
    const taken = await findPaymentByOrder(tx, tenantId, req.orderReference);
    if (taken && taken.id !== locked.id) throw new AppError('CONFLICT', `Order "${req.orderReference}" already has another payment.`);
    if ((newAmount?.amount ?? locked.amount) !== req.amount) throw totalMismatch();
    const newId = newAmount && newAmount.pspId && newAmount.pspId !== locked.transactionId ? newAmount.pspId : null;
    if (newId) {
      await addAlias(tx, tenantId, locked.transactionId, locked.id);
      await recordPspObject(tx, connector.id, newId, tenantId, 'payment');
    }
    const { payment: after, history } = await updatePaymentRecording(tx, locked.id, {
      orderReference: req.orderReference,
      orderData: req.orderData,
      linkedAt: new Date(),
      ...(newAmount ? { amount: newAmount.amount, pspDetails: { ...locked.pspDetails, ...newAmount.publicDetails } } : {}),
      ...(newId ? { transactionId: newId, preOrderData: { ...(locked.preOrderData ?? {}), ...newAmount!.preOrderPaymentData, transactionId: newId } } : {}),
      ...(req.localeName ? { localeName: req.localeName } : {}),
    }, null, true);
    await enqueue(tx, deps.config.appIdentifier, [paymentUpdatedMessage(after, history, requestId)]);
    return { payment: after, fresh: true };
  }, req.orderReference);
  if (!linked.fresh) return answerFor(linked.payment);

  // Step 7: held webhooks, in arrival order, now with the order present.
  await replayHeldWebhooks(deps, tenantId, linked.payment.transactionId);

  // Step 8: still `new` → confirm server-side where the connector needs it (capability `confirmation`, with the
  // storefront's data, e.g. an express confirmation token), else ask the PSP (a status query).
  let current = (await findPaymentById(deps.db, payment.id)) ?? linked.payment;
  if (current.status === 'new') {
    const confirm = connector.capabilities.confirmation === 'server-confirm' ? connector.confirmPayment?.bind(connector) : undefined;
    const txId = current.transactionId;
    const r = await pspCall((signal) =>
      confirm
        ? confirm(settings, txId, { amount: req.amount, clientData: req.clientData, returnUrl: returnUrlFor(deps.config.appBaseUrl, tenantId, txId) }, { idempotencyKey: payment.id, signal })
        : connector.getPayment(settings, txId, signal),
    );
    if (!r.ok && confirm && r.failure.kind === 'declined') {
      // A server-side decline is final for this checkout (the shopper has left the wallet sheet): authorization_failed.
      const failure = r.failure;
      await deps.db.tx((tx) =>
        applyPaymentOutcome(deps, tx, payment.id, { state: 'failed', decline: { code: failure.code, message: failure.message } }, { trigger: 'sync', ref: requestId }),
      );
      current = (await findPaymentById(deps.db, payment.id)) ?? current;
      return answerFor(current);
    }
    if (r.ok) {
      const psp = r.value;
      await deps.db.tx((tx) =>
        applyPaymentOutcome(
          deps,
          tx,
          payment.id,
          {
            state: psp.state,
            ...(psp.lastDecline ? { decline: psp.lastDecline } : {}),
            ...(Object.keys(psp.publicDetails ?? {}).length > 0 ? { publicDetails: psp.publicDetails } : {}),
            amountCaptured: psp.amountCaptured,
          },
          { trigger: 'sync', ref: requestId },
        ),
      );
      current = (await findPaymentById(deps.db, payment.id)) ?? current;
    } else {
      // Step 9: PSP unreachable → stays `new` and linked; 200; reconciliation / the webhook settles it.
      deps.log.warn({ tenantIdentifier: tenantId, transactionId: current.transactionId, failure: r.failure.kind }, 'confirm-pre-order: PSP status query failed; payment stays new');
    }
  }
  return answerFor(current);
}

/**
 * Initialize payment (sync-api.md 4.3, 4.4): hosted mode (order exists, answer the hosted page URL) and
 * pre-order mode (no order yet, answer `preOrderPaymentData`). The PSP is called outside any transaction; the
 * payment, its first history row, its PSP object mapping and `PaymentCreated` are written in one transaction after
 * it (flows.md 0 rules 3, 4). Nothing is stored when anything fails.
 */
import { randomUUID } from 'node:crypto';
import { derivedUuid, uuidNamespace } from '../domain/derived-id.js';
import type { Connector, PspFailure, PspPayment, TenantSettings } from '../connectors/types.js';
import { AppError, illegalTransition, paymentNotFound, validationError } from '../domain/errors.js';
import { normalizeCurrency, parseMinorUnits } from '../domain/money.js';
import { isObject } from '../domain/input.js';
import { enqueue, outboxRowsOf, outboxWritten } from '../messaging/outbox.js';
import {
  addAlias,
  findOrderPaymentSummary,
  findPaymentByOrder,
  findPaymentByTransaction,
  insertNewPayment,
  lockPayment,
  recordPspObject,
  updatePaymentRecording,
  type PaymentRow,
} from '../store/payments.js';
import { decryptedSettings, type TenantRecord } from '../store/tenants.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { rememberOwner } from './psp-owners.js';
import { paymentCreatedMessage, paymentUpdatedMessage } from './payment-messages.js';
import { ACTIVE_STATES, processWaitingWebhooksFor } from './webhook-processing.js';

/** Namespace of the PSP idempotency keys derived from natural keys (UUIDv5). */
const IDEMPOTENCY_NAMESPACE = uuidNamespace('b3f1c2a4-5d6e-4f70-8a91-0c2d3e4f5a6b');

export const hostedIdempotencyKey = (tenant: string, orderReference: string): string =>
  derivedUuid(`initialize-payment:${tenant}:${orderReference}`, IDEMPOTENCY_NAMESPACE);

export type TenantForPayment = Pick<TenantRecord, 'tenant_identifier' | 'config' | 'secrets' | 'announced_methods' | 'connector'>;

export interface InitializeAnswer {
  isSuccessful: true;
  transactionId: string;
  redirectUrl: string | null;
  message: null;
  preOrderPaymentData?: Record<string, unknown>;
}

export interface InitializeRequest {
  mode: 'hosted' | 'pre-order';
  orderReference: string | null;
  amount: number;
  currency: string;
  /** The method as sent (`paymentMethod`, else `paymentMethodName`). */
  method: string;
  /** Every orderData field as sent, integer fields converted. */
  orderData: Record<string, unknown>;
  redirectSuccessUrl: string | null;
  redirectCancelUrl: string | null;
  checkoutSummaryPageUrl: string | null;
  localeName: string | null;
  /** Pre-order repeat: `preOrderPaymentData.transactionId`. */
  preOrderTransactionId: string | null;
}

// ---------------------------------------------------------------------------------------------
// Validation (sync-api.md 2.3, 4.3)
// ---------------------------------------------------------------------------------------------

const absent = (v: unknown): boolean => v === undefined || v === null;

function optionalInteger(obj: Record<string, unknown>, key: string, path: string): void {
  const v = obj[key];
  if (absent(v) || v === '') return;
  const n = parseMinorUnits(v);
  if (n === null) throw validationError(path, `Field "${path}" must be an integer.`);
  obj[key] = n;
}

function requiredInteger(obj: Record<string, unknown>, key: string, path: string, min?: number): number {
  const v = obj[key];
  if (absent(v)) throw validationError(path);
  const n = parseMinorUnits(v);
  if (n === null) throw validationError(path, `Field "${path}" must be an integer.`);
  if (min !== undefined && n < min) throw validationError(path, `Field "${path}" must be an integer of at least ${min}.`);
  obj[key] = n;
  return n;
}

function optionalString(obj: Record<string, unknown>, key: string, path: string): string | null {
  const v = obj[key];
  if (absent(v)) return null;
  if (typeof v !== 'string') throw validationError(path, `Field "${path}" must be a string.`);
  return v;
}

function optionalUrl(obj: Record<string, unknown>, key: string, path: string, required: boolean): string | null {
  const v = optionalString(obj, key, path);
  if (v === null || v.trim() === '') {
    if (required) throw validationError(path);
    return null;
  }
  let u: URL | undefined;
  try {
    u = new URL(v);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw validationError(path, `Field "${path}" must be an absolute http or https URL.`);
  return v;
}

function convertLines(orderData: Record<string, unknown>, key: 'items' | 'expenses', intFields: string[], opts: { requireIds: boolean }): void {
  const path = `orderData.${key}`;
  const lines = orderData[key];
  if (absent(lines)) {
    if (opts.requireIds) throw validationError(path);
    return;
  }
  if (!Array.isArray(lines)) throw validationError(path, `Field "${path}" must be an array.`);
  if (opts.requireIds && lines.length === 0) throw validationError(path, `Field "${path}" must contain at least one item.`);
  orderData[key] = lines.map((line, i) => {
    const p = `${path}[${i}]`;
    if (!isObject(line)) throw validationError(p, `Field "${p}" must be an object.`);
    const copy: Record<string, unknown> = { ...line };
    if (key === 'items') {
      if (opts.requireIds) requiredInteger(copy, 'idSalesOrderItem', `${p}.idSalesOrderItem`);
      else optionalInteger(copy, 'idSalesOrderItem', `${p}.idSalesOrderItem`);
    }
    for (const f of intFields) optionalInteger(copy, f, `${p}.${f}`);
    return copy;
  });
}

/** Validates a request body (already unwrapped from `form_params` / form encoding) and converts its integer fields. */
export function parseInitializeRequest(body: unknown): InitializeRequest {
  if (absent(body)) throw validationError('orderData');
  if (!isObject(body)) throw new AppError('INVALID_REQUEST', 'The request body must be a JSON object.');
  const rawOrder = body.orderData;
  if (absent(rawOrder)) throw validationError('orderData');
  if (!isObject(rawOrder)) throw validationError('orderData', 'Field "orderData" must be an object.');
  const orderData: Record<string, unknown> = { ...rawOrder };

  const ref = optionalString(orderData, 'orderReference', 'orderData.orderReference');
  const orderReference = ref !== null && ref.trim() !== '' ? ref : null;
  const mode = orderReference !== null ? 'hosted' : 'pre-order';

  const amount = requiredInteger(orderData, 'grandTotal', 'orderData.grandTotal', 1);

  const cur = orderData.currencyCode;
  if (absent(cur) || cur === '') throw validationError('orderData.currencyCode');
  const currency = normalizeCurrency(cur);
  if (currency === null) throw validationError('orderData.currencyCode', 'Field "orderData.currencyCode" must be an ISO 4217 currency code.');

  const pm = optionalString(orderData, 'paymentMethod', 'orderData.paymentMethod');
  const pmName = optionalString(orderData, 'paymentMethodName', 'orderData.paymentMethodName');
  const method = pm !== null && pm.trim() !== '' ? pm : pmName !== null && pmName.trim() !== '' ? pmName : null;
  if (method === null) throw validationError('orderData.paymentMethod');

  convertLines(orderData, 'items', ['quantity', 'unitPrice', 'unitGrossPrice', 'unitNetPrice', 'sumPrice'], { requireIds: mode === 'hosted' });
  convertLines(orderData, 'expenses', ['quantity', 'unitPrice', 'unitGrossPrice', 'unitNetPrice', 'sumPrice'], { requireIds: false });
  optionalInteger(orderData, 'discountTotal', 'orderData.discountTotal');
  optionalInteger(orderData, 'taxTotal', 'orderData.taxTotal');
  const orderLocale = optionalString(orderData, 'localeName', 'orderData.localeName');

  const apd = orderData.additionalPaymentData;
  if (!absent(apd) && !isObject(apd)) throw validationError('orderData.additionalPaymentData', 'Field "orderData.additionalPaymentData" must be an object.');
  if (absent(apd) && isObject(body.payment) && isObject(body.payment.additionalPaymentData)) orderData.additionalPaymentData = body.payment.additionalPaymentData;

  const redirectSuccessUrl = optionalUrl(body, 'redirectSuccessUrl', 'redirectSuccessUrl', mode === 'hosted');
  const redirectCancelUrl = optionalUrl(body, 'redirectCancelUrl', 'redirectCancelUrl', mode === 'hosted');
  const checkoutSummaryPageUrl = optionalUrl(body, 'checkoutSummaryPageUrl', 'checkoutSummaryPageUrl', false);
  const bodyLocale = optionalString(body, 'localeName', 'localeName');

  let preOrderTransactionId: string | null = null;
  const pod = body.preOrderPaymentData;
  if (!absent(pod)) {
    if (Array.isArray(pod) && pod.length === 0) {
      // PHP serialises an empty array as [] — treat as an empty object.
    } else if (!isObject(pod)) {
      throw validationError('preOrderPaymentData', 'Field "preOrderPaymentData" must be an object.');
    } else {
      const t = optionalString(pod, 'transactionId', 'preOrderPaymentData.transactionId');
      if (t !== null && t.trim() !== '') preOrderTransactionId = t;
    }
  }

  return {
    mode,
    orderReference,
    amount,
    currency,
    method,
    orderData,
    redirectSuccessUrl,
    redirectCancelUrl,
    checkoutSummaryPageUrl,
    localeName: orderLocale ?? bodyLocale,
    preOrderTransactionId,
  };
}

// ---------------------------------------------------------------------------------------------
// Payment method matching (4.3)
// ---------------------------------------------------------------------------------------------

/** `Credit Card` → `credit-card` (lower-case; runs of spaces, underscores or dots → `-`). */
export function normaliseMethod(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s_.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** The normalised name of the announced method `value` designates, or null. */
export function matchPaymentMethod(value: string, announced: TenantForPayment['announced_methods'], defaultProvider: string): string | null {
  const v = value.trim().toLowerCase();
  for (const a of announced ?? []) {
    const payload = (a.payload ?? {}) as Record<string, unknown>;
    const display = typeof payload.name === 'string' ? payload.name : a.name;
    const normalised = normaliseMethod(display);
    const provider = typeof payload.providerName === 'string' ? payload.providerName : defaultProvider;
    const forms = [display, normalised, a.name, `${normaliseMethod(provider)}-${normalised}`].map((f) => f.toLowerCase());
    if (forms.includes(v)) return normaliseMethod(a.name);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Use case
// ---------------------------------------------------------------------------------------------

export function paymentPageUrl(appBaseUrl: string, transactionId: string, tenant: string): string {
  const q = new URLSearchParams({ transactionId, tenantIdentifier: tenant });
  return `${appBaseUrl.replace(/\/+$/, '')}/app-payment?${q.toString()}`;
}

/** `{APP_BASE_URL}/app-payment/redirect?[transactionId=..&]tenantIdentifier=..`: where the PSP sends the browser back. */
export function returnUrlFor(appBaseUrl: string, tenant: string, transactionId?: string): string {
  const q = new URLSearchParams(transactionId ? { transactionId, tenantIdentifier: tenant } : { tenantIdentifier: tenant });
  return `${appBaseUrl.replace(/\/+$/, '')}/app-payment/redirect?${q.toString()}`;
}

function pspError(f: PspFailure, conflict: () => AppError): AppError {
  switch (f.kind) {
    case 'declined':
      return new AppError('PAYMENT_DECLINED', `The payment provider refused the payment: ${f.message}`);
    case 'conflict':
      return conflict();
    case 'timeout':
      return new AppError('PSP_TIMEOUT', 'The payment provider did not answer in time.');
    default:
      return new AppError('PSP_ERROR', 'The payment provider could not be reached or answered with an error.');
  }
}

const amountConflict = (ref: string): AppError => new AppError('CONFLICT', `Order "${ref}" already has a payment with a different amount or currency.`);

/** Runs a PSP call with the 15 s budget; a thrown error counts as a PSP error (timeout if the budget ran out). */
async function pspCall<T>(fn: (signal: AbortSignal) => Promise<{ ok: true; value: T } | { ok: false; failure: PspFailure }>): Promise<{ ok: true; value: T } | { ok: false; failure: PspFailure }> {
  const signal = AbortSignal.timeout(PSP_CALL_TIMEOUT_MS);
  try {
    return await fn(signal);
  } catch (err) {
    if (signal.aborted) return { ok: false, failure: { kind: 'timeout' } };
    return { ok: false, failure: { kind: 'error', message: (err as Error)?.message ?? 'PSP call failed' } };
  }
}

interface TenantContext {
  connector: Connector;
  settings: TenantSettings;
  captureMode: 'manual' | 'automatic';
  mode: 'test' | 'live';
}

/** The tenant's connector and decrypted settings, read through the connector's accessors. */
function settingsOf(deps: AppDeps, tenant: TenantForPayment): TenantContext {
  const connector = deps.connectors.require(tenant.connector);
  const settings = decryptedSettings(deps.secrets, tenant);
  return { connector, settings, captureMode: connector.settings.captureMode(settings), mode: connector.settings.isLive(settings) ? 'live' : 'test' };
}

function preOrderDataOf(payment: PaymentRow): Record<string, unknown> {
  return { ...(payment.preOrderData ?? {}), transactionId: payment.transactionId };
}

function hostedAnswer(deps: AppDeps, tenant: string, transactionId: string): InitializeAnswer {
  return { isSuccessful: true, transactionId, redirectUrl: paymentPageUrl(deps.config.appBaseUrl, transactionId, tenant), message: null };
}

function preOrderAnswer(payment: PaymentRow): InitializeAnswer {
  return { isSuccessful: true, transactionId: payment.transactionId, redirectUrl: null, message: null, preOrderPaymentData: preOrderDataOf(payment) };
}

const fingerprint = (amount: number, currency: string): string => `${amount}:${currency}`;

/**
 * Re-drives webhooks that arrived before the payment was stored (flows.md 12 step 8). Never throws.
 */
export async function afterPaymentStored(deps: AppDeps, tenant: string, transactionId: string): Promise<void> {
  try {
    await processWaitingWebhooksFor(deps, tenant, transactionId);
  } catch (err) {
    deps.log.error({ err, tenantIdentifier: tenant, transactionId }, 'replaying waiting webhooks failed');
  }
}

/**
 * Stores a freshly created PSP payment with its history row, PSP object mapping and PaymentCreated, all in one
 * statement (one round trip, atomic: flows.md 0 rule 3). null = unique key taken (nothing written).
 * `webhooksWaiting`: webhooks of the new transaction id already wait in the inbox (re-drive them after the write).
 */
async function storeNewPayment(
  deps: AppDeps,
  tenant: string,
  req: InitializeRequest,
  methodName: string,
  psp: PspPayment,
  s: TenantContext,
  requestId: string,
  paymentId: string,
): Promise<{ payment: PaymentRow; webhooksWaiting: boolean } | null> {
  const stored = await insertNewPayment(
    deps.db,
    {
      id: paymentId,
      tenantIdentifier: tenant,
      transactionId: psp.id,
      orderReference: req.orderReference,
      status: 'new',
      amount: req.amount,
      currency: req.currency,
      paymentMethod: methodName,
      connector: s.connector.id,
      mode: s.mode,
      captureMode: s.captureMode,
      orderData: req.orderData,
      redirectSuccessUrl: req.redirectSuccessUrl,
      redirectCancelUrl: req.redirectCancelUrl,
      checkoutSummaryPageUrl: req.checkoutSummaryPageUrl,
      localeName: req.localeName,
      preOrderData: { ...psp.preOrderPaymentData, transactionId: psp.id },
      pspDetails: psp.publicDetails ?? {},
      pspData: psp.pspData ?? {},
      initializeFingerprint: fingerprint(req.amount, req.currency),
    },
    { trigger: 'sync', ref: requestId, pspObjectKind: 'payment', waitingStates: ACTIVE_STATES },
    ({ payment, history }) => (psp.id.startsWith('tmp-') ? [] : outboxRowsOf(deps.config.appIdentifier, [paymentCreatedMessage(payment, [history], requestId)])),
  );
  if (!stored) return null;
  outboxWritten();
  if (stored.pspObjectRecorded) rememberOwner(deps, s.connector.id, psp.id, tenant); // its webhooks: attributed without a query
  return { payment: stored.payment, webhooksWaiting: stored.webhooksWaiting };
}

export async function initializePayment(deps: AppDeps, tenant: TenantForPayment, body: unknown, requestId: string): Promise<InitializeAnswer> {
  const req = parseInitializeRequest(body);
  const methodName = matchPaymentMethod(req.method, tenant.announced_methods, deps.connectors.require(tenant.connector).providerName);
  if (methodName === null) throw validationError('orderData.paymentMethod', `Unknown payment method "${req.method}" for this tenant.`);
  return req.mode === 'hosted' ? initializeHosted(deps, tenant, req, methodName, requestId) : initializePreOrder(deps, tenant, req, methodName, requestId);
}

async function initializeHosted(deps: AppDeps, tenant: TenantForPayment, req: InitializeRequest, methodName: string, requestId: string): Promise<InitializeAnswer> {
  const tenantId = tenant.tenant_identifier;
  const ref = req.orderReference!;
  const sameContent = (p: { amount: number; currency: string }): boolean => p.amount === req.amount && p.currency === req.currency;

  const existing = await findOrderPaymentSummary(deps.db, tenantId, ref);
  if (existing) {
    if (!sameContent(existing)) throw amountConflict(ref);
    return hostedAnswer(deps, tenantId, existing.transactionId);
  }

  const s = settingsOf(deps, tenant);
  // Deterministic per (tenant, order): a repeated request sends the PSP identical parameters (idempotent replay).
  const paymentId = hostedIdempotencyKey(tenantId, ref);
  const created = await pspCall((signal) =>
    s.connector.createPayment(
      s.settings,
      {
        tenantIdentifier: tenantId,
        paymentId,
        orderData: req.orderData,
        amount: req.amount,
        currency: req.currency,
        orderReference: ref,
        captureMode: s.captureMode,
        returnUrl: returnUrlFor(deps.config.appBaseUrl, tenantId),
        metadata: { tenantIdentifier: tenantId, orderReference: ref, paymentId, appIdentifier: deps.config.appIdentifier },
      },
      { idempotencyKey: paymentId, signal },
    ),
  );
  if (!created.ok) {
    // A concurrent identical request may have stored the payment meanwhile.
    const now = await findOrderPaymentSummary(deps.db, tenantId, ref);
    if (now && sameContent(now)) return hostedAnswer(deps, tenantId, now.transactionId);
    throw pspError(created.failure, () => amountConflict(ref));
  }
  const psp = created.value;

  const fresh = await storeNewPayment(deps, tenantId, req, methodName, psp, s, requestId, paymentId);
  if (fresh) {
    if (fresh.webhooksWaiting) await afterPaymentStored(deps, tenantId, fresh.payment.transactionId);
    return hostedAnswer(deps, tenantId, fresh.payment.transactionId);
  }
  // Lost the race against an identical request (unique (tenant, order) / (tenant, transaction)): answer the first.
  const first = (await findPaymentByOrder(deps.db, tenantId, ref)) ?? (await findPaymentByTransaction(deps.db, tenantId, psp.id));
  if (!first || first.orderReference !== ref || !sameContent(first)) throw amountConflict(ref);
  return hostedAnswer(deps, tenantId, first.transactionId);
}

async function initializePreOrder(deps: AppDeps, tenant: TenantForPayment, req: InitializeRequest, methodName: string, requestId: string): Promise<InitializeAnswer> {
  const tenantId = tenant.tenant_identifier;
  const s = settingsOf(deps, tenant);

  if (req.preOrderTransactionId === null) {
    const paymentId = randomUUID(); // the payment's id, sent to the PSP (its idempotency key and metadata)
    const created = await pspCall((signal) =>
      s.connector.createPayment(
        s.settings,
        {
          tenantIdentifier: tenantId,
          paymentId,
          orderData: req.orderData,
          amount: req.amount,
          currency: req.currency,
          captureMode: s.captureMode,
          returnUrl: returnUrlFor(deps.config.appBaseUrl, tenantId),
          metadata: { tenantIdentifier: tenantId, paymentId, appIdentifier: deps.config.appIdentifier },
        },
        { idempotencyKey: paymentId, signal },
      ),
    );
    if (!created.ok) throw pspError(created.failure, () => new AppError('CONFLICT', 'The payment provider refused to create the payment.'));
    const psp = created.value;
    const stored = await storeNewPayment(deps, tenantId, req, methodName, psp, s, requestId, paymentId);
    if (!stored) throw new AppError('CONFLICT', `Transaction "${psp.id}" is already stored.`);
    if (stored.webhooksWaiting) await afterPaymentStored(deps, tenantId, stored.payment.transactionId);
    return preOrderAnswer(stored.payment);
  }

  // Repeat call with the data we answered before.
  const payment = await findPaymentByTransaction(deps.db, tenantId, req.preOrderTransactionId);
  if (!payment) throw paymentNotFound(req.preOrderTransactionId);
  if (payment.orderReference) throw new AppError('CONFLICT', `The payment is already linked to order "${payment.orderReference}".`);
  if (payment.status === 'canceled') throw illegalTransition(payment.status, 'new');
  if (payment.status !== 'new') throw new AppError('CONFLICT', 'The payment can no longer be changed.');
  if (payment.currency !== req.currency) throw new AppError('CONFLICT', 'The currency of a pre-order payment cannot be changed; start a new payment.');
  if (payment.amount === req.amount) return preOrderAnswer(payment);

  const updated = await pspCall((signal) =>
    s.connector.updatePaymentAmount(s.settings, payment.transactionId, req.amount, {
      idempotencyKey: derivedUuid(`update-amount:${payment.id}:${payment.version}:${req.amount}`, IDEMPOTENCY_NAMESPACE),
      paymentId: payment.id,
      signal,
    }),
  );
  if (!updated.ok) {
    const f = updated.failure;
    if (f.kind === 'declined' || f.kind === 'conflict') throw new AppError('CONFLICT', 'The payment can no longer be changed.');
    throw pspError(f, () => new AppError('CONFLICT', 'The payment can no longer be changed.'));
  }
  const psp = updated.value;
  const oldId = payment.transactionId;
  const result = await deps.db.tx(async (tx) => {
    const locked = await lockPayment(tx, payment.id);
    if (locked.orderReference) throw new AppError('CONFLICT', `The payment is already linked to order "${locked.orderReference}".`);
    if (locked.status !== 'new') throw new AppError('CONFLICT', 'The payment can no longer be changed.');
    const newId = psp.id && psp.id !== locked.transactionId ? psp.id : null;
    if (newId) {
      await addAlias(tx, tenantId, locked.transactionId, locked.id);
      await recordPspObject(tx, s.connector.id, newId, tenantId, 'payment');
    }
    const { payment: after, history } = await updatePaymentRecording(tx, locked.id, {
      amount: req.amount,
      ...(newId ? { transactionId: newId } : {}),
      orderData: req.orderData,
      preOrderData: { ...(locked.preOrderData ?? {}), ...psp.preOrderPaymentData, transactionId: newId ?? locked.transactionId },
      pspDetails: { ...locked.pspDetails, ...(psp.publicDetails ?? {}) },
      pspData: { ...locked.pspData, ...(psp.pspData ?? {}) },
      initializeFingerprint: fingerprint(req.amount, req.currency),
      ...(req.localeName ? { localeName: req.localeName } : {}),
    }, null, true);
    await enqueue(tx, deps.config.appIdentifier, [paymentUpdatedMessage(after, history, requestId)]);
    return after;
  });
  if (result.transactionId !== oldId) await afterPaymentStored(deps, tenantId, result.transactionId);
  return preOrderAnswer(result);
}

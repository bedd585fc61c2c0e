/**
 * Builders of the payment-events messages (messages.md 3.3, 3.4) and their event keys (messages.md 2.4).
 * Shared by every use case that changes a payment (initialize, apply outcome, captures, cancels, refunds).
 */
import type { OutgoingMessage } from '../messaging/outbox.js';
import type { HistoryRow, PaymentRow } from '../store/payments.js';

export const PAYMENT_EVENTS = 'payment-events' as const;

export type PaymentStatusMessageName =
  | 'PaymentAuthorized'
  | 'PaymentAuthorizationFailed'
  | 'PaymentCaptured'
  | 'PaymentCaptureFailed'
  | 'PaymentCanceled'
  | 'PaymentCancellationFailed'
  | 'PaymentRefunded'
  | 'PaymentRefundFailed'
  | 'PaymentOverpaid'
  | 'PaymentUnderpaid';

/** Ordering key of every message about this payment (messages.md 6); the outbox prefixes the tenant. */
export const paymentOrderingKey = (paymentId: string): string => `payment/${paymentId}`;

export const eventKeys = {
  created: (paymentId: string): string => `payment/${paymentId}/created`,
  updated: (paymentId: string, version: number): string => `payment/${paymentId}/version/${version}`,
  /** Authorization outcomes and PSP-side changes without a record. */
  status: (paymentId: string, historySeq: number): string => `payment/${paymentId}/status/${historySeq}`,
  capture: (captureId: string, status: string): string => `capture/${captureId}/${status}`,
  cancel: (cancelId: string, status: string): string => `cancel/${cancelId}/${status}`,
  refund: (refundId: string, status: string, seq: number): string => `refund/${refundId}/${status}/${seq}`,
  command: (incomingMessageId: string): string => `command/${incomingMessageId}`,
};

/** All `orderData.items[].idSalesOrderItem` values (integers; integer strings are converted, others skipped). */
export function orderItemIdsOf(orderData: Record<string, unknown> | null | undefined): number[] {
  const items = orderData?.items;
  if (!Array.isArray(items)) return [];
  const ids: number[] = [];
  for (const item of items) {
    if (item === null || typeof item !== 'object') continue;
    const v = (item as Record<string, unknown>).idSalesOrderItem;
    if (typeof v === 'number' && Number.isSafeInteger(v)) ids.push(v);
    else if (typeof v === 'string' && /^-?[0-9]+$/.test(v) && Number.isSafeInteger(Number(v))) ids.push(Number(v));
  }
  return ids;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `YYYY-MM-DD HH:MM:SS` in UTC. */
export function historyTimestamp(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

const CORE_DETAIL_KEYS = new Set(['transactionId', 'status', 'amount', 'capturedAmount', 'refundedAmount', 'currencyIsoCode', 'paymentMethod', 'connector', 'mode']);

/**
 * The `details` object of PaymentCreated/PaymentUpdated (messages.md 3.4), serialised to a string.
 * History rows that repeat the previous row's status (e.g. a recorded retryable decline) add no key.
 */
export function paymentDetails(payment: PaymentRow, history: HistoryRow[]): string {
  const details: Record<string, unknown> = {
    transactionId: payment.transactionId,
    status: payment.status,
    amount: payment.amount,
    capturedAmount: payment.capturedAmount,
    refundedAmount: payment.refundedAmount,
    currencyIsoCode: payment.currency,
    paymentMethod: payment.paymentMethod,
    connector: payment.connector,
    mode: payment.mode,
  };
  for (const [k, v] of Object.entries(payment.pspDetails ?? {})) {
    if (CORE_DETAIL_KEYS.has(k) || k.startsWith('External status') || v === null || v === undefined) continue;
    details[k] = v;
  }
  let previous: string | undefined;
  for (const h of [...history].sort((a, b) => a.seq - b.seq)) {
    if (h.status === previous) continue;
    previous = h.status;
    const key = `External status "${h.status}"`;
    if (!(key in details)) details[key] = historyTimestamp(h.createdAt);
  }
  return JSON.stringify(details);
}

function entityPayload(payment: PaymentRow, history: HistoryRow[]): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  if (payment.orderReference) payload.entityReference = payment.orderReference;
  payload.paymentReference = payment.transactionId;
  payload.details = paymentDetails(payment, history);
  return payload;
}

/** `PaymentCreated` (caller skips it for `tmp-` transaction ids). */
export function paymentCreatedMessage(payment: PaymentRow, history: HistoryRow[], correlationId?: string): OutgoingMessage {
  return {
    tenantIdentifier: payment.tenantIdentifier,
    channel: PAYMENT_EVENTS,
    name: 'PaymentCreated',
    eventKey: eventKeys.created(payment.id),
    orderingKey: paymentOrderingKey(payment.id),
    payload: entityPayload(payment, history),
    correlationId,
  };
}

/**
 * Whether a write changed something `PaymentUpdated` carries (messages.md 3.4): status, the amounts in `details`,
 * the order link or the transaction id (and the public PSP details shown with them). A change of an amount the
 * message does not carry (e.g. `pendingRefundAmount` when a refund is requested) sends no PaymentUpdated.
 */
export function paymentUpdateCarriesChange(before: PaymentRow, after: PaymentRow): boolean {
  return (
    before.status !== after.status ||
    before.orderReference !== after.orderReference ||
    before.transactionId !== after.transactionId ||
    paymentDetails(before, []) !== paymentDetails(after, [])
  );
}

/** `PaymentUpdated` for the payment as it is after the write (`payment.version` is the new version). */
export function paymentUpdatedMessage(payment: PaymentRow, history: HistoryRow[], correlationId?: string): OutgoingMessage {
  return {
    tenantIdentifier: payment.tenantIdentifier,
    channel: PAYMENT_EVENTS,
    name: 'PaymentUpdated',
    eventKey: eventKeys.updated(payment.id, payment.version),
    orderingKey: paymentOrderingKey(payment.id),
    payload: entityPayload(payment, history),
    correlationId,
  };
}

export interface StatusMessageOptions {
  eventKey: string;
  /** Defaults to every item id of the stored order data (authorization outcomes). */
  orderItemIds?: number[];
  /** Defaults to the payment's amount (authorization outcomes). */
  amount?: number;
  correlationId?: string;
}

/** A status message of messages.md 3.3. Only for payments linked to an order (throws otherwise: programming error). */
export function paymentStatusMessage(name: PaymentStatusMessageName | string, payment: PaymentRow, opts: StatusMessageOptions): OutgoingMessage {
  if (!payment.orderReference) throw new Error(`${name} needs a payment linked to an order (payment ${payment.id})`);
  return {
    tenantIdentifier: payment.tenantIdentifier,
    channel: PAYMENT_EVENTS,
    name,
    eventKey: opts.eventKey,
    orderingKey: paymentOrderingKey(payment.id),
    payload: {
      orderReference: payment.orderReference,
      orderItemIds: opts.orderItemIds ?? orderItemIdsOf(payment.orderData),
      amount: Math.abs(opts.amount ?? payment.amount),
      currencyIsoCode: payment.currency,
    },
    correlationId: opts.correlationId,
  };
}

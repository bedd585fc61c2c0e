/**
 * Sandbox rows, their API shapes, and event writing (outbox-like, in the caller's transaction).
 */
import type { Queryable, Tx } from '../store/db.js';
import type { CardBehavior } from './cards.js';
import { newId, sandboxSignal } from './util.js';

export type PaymentStatus = 'requires_payment_method' | 'requires_action' | 'authorized' | 'captured' | 'failed' | 'canceled';

export interface Decline {
  code: string;
  message: string;
}

export interface Payment {
  id: string;
  accountId: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  captureMethod: 'manual' | 'automatic';
  reference: string | null;
  returnUrl: string | null;
  metadata: Record<string, unknown>;
  clientSecret: string;
  amountCapturable: number;
  amountCaptured: number;
  amountRefunded: number;
  declineCount: number;
  lastDecline: Decline | null;
  failureCode: string | null;
  captureError: Decline | null;
  card: { brand: string; last4: string; expMonth: number; expYear: number } | null;
  cardBehavior: CardBehavior | null;
  payer: Record<string, unknown> | null;
  created: Date;
}

type Row = Record<string, any>;

export function paymentFromRow(r: Row): Payment {
  return {
    id: r.id,
    accountId: r.account_id,
    status: r.status,
    amount: r.amount,
    currency: r.currency,
    captureMethod: r.capture_method,
    reference: r.reference,
    returnUrl: r.return_url,
    metadata: r.metadata ?? {},
    clientSecret: r.client_secret,
    amountCapturable: r.amount_capturable,
    amountCaptured: r.amount_captured,
    amountRefunded: r.amount_refunded,
    declineCount: r.decline_count,
    lastDecline: r.last_decline,
    failureCode: r.failure_code,
    captureError: r.capture_error,
    card: r.card,
    cardBehavior: r.card_behavior,
    payer: r.payer,
    created: new Date(r.created_at),
  };
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

export async function insertPayment(tx: Queryable, p: Payment): Promise<void> {
  await tx.query(
    `INSERT INTO sandbox_payments (id, account_id, status, amount, currency, capture_method, reference, return_url, metadata, client_secret, created_at)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11)`,
    insertPaymentParams(p),
  );
}

/** The parameters $1..$11 of the payment insert (id, account, status, amount, currency, capture method, reference, return URL, metadata, client secret, created). */
export function insertPaymentParams(p: Payment): unknown[] {
  return [p.id, p.accountId, p.status, p.amount, p.currency, p.captureMethod, p.reference, p.returnUrl, JSON.stringify(p.metadata), p.clientSecret, p.created];
}

export async function savePayment(tx: Queryable, p: Payment): Promise<void> {
  await tx.query(
    `UPDATE sandbox_payments SET status=$2, amount=$3, amount_capturable=$4, amount_captured=$5, amount_refunded=$6, decline_count=$7,
       last_decline=$8::jsonb, failure_code=$9, capture_error=$10::jsonb, card=$11::jsonb, card_behavior=$12, payer=$13::jsonb, updated_at=now()
     WHERE id=$1`,
    [p.id, p.status, p.amount, p.amountCapturable, p.amountCaptured, p.amountRefunded, p.declineCount, json(p.lastDecline), p.failureCode, json(p.captureError), json(p.card), p.cardBehavior, json(p.payer)],
  );
}

/** Loads a payment (locked when `lock`); `accountId` restricts it to the caller's account. */
export async function loadPayment(q: Queryable, id: string, opts: { accountId?: string; lock?: boolean } = {}): Promise<Payment | undefined> {
  const r = await q.query<Row>(`SELECT * FROM sandbox_payments WHERE id=$1${opts.lock ? ' FOR UPDATE' : ''}`, [id]);
  const row = r.rows[0];
  if (!row || (opts.accountId !== undefined && row.account_id !== opts.accountId)) return undefined;
  return paymentFromRow(row);
}

const unix = (d: Date): number => Math.floor(d.getTime() / 1000);

/** The API shape of a payment. `clientSecret` only for callers that may see it (not in webhooks). */
export function paymentObject(p: Payment, base: string, withSecret: boolean): Record<string, unknown> {
  return {
    id: p.id,
    object: 'payment',
    status: p.status,
    amount: p.amount,
    currency: p.currency,
    amountCapturable: p.amountCapturable,
    amountCaptured: p.amountCaptured,
    amountRefunded: p.amountRefunded,
    captureMethod: p.captureMethod,
    reference: p.reference,
    returnUrl: p.returnUrl,
    metadata: p.metadata,
    ...(withSecret ? { clientSecret: p.clientSecret } : {}),
    checkoutUrl: `${base}/checkout/${p.id}`,
    nextAction: p.status === 'requires_action' ? { type: 'challenge', url: `${base}/checkout/${p.id}/challenge` } : null,
    lastDecline: p.lastDecline,
    declineCount: p.declineCount,
    failureCode: p.failureCode,
    captureError: p.captureError,
    card: p.card,
    created: unix(p.created),
  };
}

export interface Refund {
  id: string;
  accountId: string;
  paymentId: string;
  amount: number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed';
  failureReason: string | null;
  created: Date;
}

export function refundFromRow(r: Row): Refund {
  return { id: r.id, accountId: r.account_id, paymentId: r.payment_id, amount: r.amount, currency: r.currency, status: r.status, failureReason: r.failure_reason, created: new Date(r.created_at) };
}

export function refundObject(r: Refund, paymentMetadata: Record<string, unknown>): Record<string, unknown> {
  return { id: r.id, object: 'refund', payment: r.paymentId, amount: r.amount, currency: r.currency, status: r.status, failureReason: r.failureReason, metadata: paymentMetadata, created: unix(r.created) };
}

export function accountObject(r: Row, base: string): Record<string, unknown> {
  return {
    id: r.id,
    object: 'account',
    status: r.status,
    reference: r.reference,
    name: r.name,
    metadata: r.metadata ?? {},
    onboardingUrl: `${base}/onboarding/${r.id}`,
    created: unix(new Date(r.created_at)),
  };
}

export function transferObject(r: Row): Record<string, unknown> {
  return {
    id: r.id,
    object: 'transfer',
    status: 'succeeded',
    amount: r.amount,
    currency: r.currency,
    destination: r.destination,
    transferGroup: r.transfer_group,
    amountReversed: r.amount_reversed,
    reversals: r.reversals ?? [],
    metadata: r.metadata ?? {},
    created: unix(new Date(r.created_at)),
  };
}

export interface EventTiming {
  webhookDelayMs: number;
}

/** Writes a webhook event for `accountId` in the caller's transaction; the dispatcher delivers it after commit. */
export async function emitEvent(tx: Tx, timing: EventTiming, accountId: string, type: string, object: Record<string, unknown>): Promise<void> {
  const ep = await tx.query<{ livemode: boolean }>('SELECT livemode FROM sandbox_webhook_endpoints WHERE account_id=$1', [accountId]);
  const now = new Date();
  const id = newId('evt_');
  const body = JSON.stringify({ id, type, created: unix(now), livemode: ep.rows[0]?.livemode ?? false, data: { object } });
  await tx.query('INSERT INTO sandbox_events (id, account_id, type, body, next_attempt_at, created_at) VALUES ($1,$2,$3,$4,$5,$6)', [
    id,
    accountId,
    type,
    body,
    new Date(now.getTime() + timing.webhookDelayMs),
    now,
  ]);
  tx.afterCommit(() => sandboxSignal.emit('written'));
}

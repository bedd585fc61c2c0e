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
  const w = new Writes();
  w.payment(p);
  await tx.query(w.sql(), w.params);
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
  await new Writes().event(timing, accountId, type, object).run(tx);
}

/**
 * Writes of one operation gathered into one statement (one round trip): each write is a data-modifying CTE of
 * `WITH w0 AS (...), w1 AS (...) SELECT 1` (a single write runs as itself). The writes touch different rows, so
 * running them together changes nothing but the number of statements.
 */
export class Writes {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];
  private signal = false;

  private p(v: unknown): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }

  get empty(): boolean {
    return this.parts.length === 0;
  }

  /** Saves the payment's mutable fields (as `savePayment`). */
  payment(p: Payment): this {
    const q = (v: unknown) => this.p(v);
    this.parts.push(
      `UPDATE sandbox_payments SET status=${q(p.status)}, amount=${q(p.amount)}, amount_capturable=${q(p.amountCapturable)}, amount_captured=${q(p.amountCaptured)}, ` +
        `amount_refunded=${q(p.amountRefunded)}, decline_count=${q(p.declineCount)}, last_decline=${q(json(p.lastDecline))}::jsonb, failure_code=${q(p.failureCode)}, ` +
        `capture_error=${q(json(p.captureError))}::jsonb, card=${q(json(p.card))}::jsonb, card_behavior=${q(p.cardBehavior)}, payer=${q(json(p.payer))}::jsonb, updated_at=now() ` +
        `WHERE id=${q(p.id)}`,
    );
    return this;
  }

  /**
   * A webhook event for `accountId`. Its body is `{"id","type","created","livemode","data":{"object"}}` with `livemode`
   * that of the account's endpoint (false without one), read by the insert itself.
   */
  event(timing: EventTiming, accountId: string, type: string, object: Record<string, unknown>): this {
    const now = new Date();
    const id = newId('evt_');
    const head = `${JSON.stringify({ id, type, created: unix(now) }).slice(0, -1)},"livemode":`;
    const tail = `,"data":${JSON.stringify({ object })}}`;
    const acct = this.p(accountId);
    this.parts.push(
      `INSERT INTO sandbox_events (id, account_id, type, body, next_attempt_at, created_at) SELECT ${this.p(id)}::text, ${acct}::text, ${this.p(type)}::text, ` +
        `${this.p(head)}::text || COALESCE((SELECT livemode FROM sandbox_webhook_endpoints WHERE account_id=${acct}::text), false)::text || ${this.p(tail)}::text, ` +
        `${this.p(new Date(now.getTime() + timing.webhookDelayMs))}::timestamptz, ${this.p(now)}::timestamptz`,
    );
    this.signal = true;
    return this;
  }

  /** A new refund row (pending until `settleAt`). */
  refund(r: Refund, settleAt: Date): this {
    const q = (v: unknown) => this.p(v);
    this.parts.push(
      `INSERT INTO sandbox_refunds (id, account_id, payment_id, amount, currency, status, settle_at, created_at) ` +
        `VALUES (${q(r.id)}, ${q(r.accountId)}, ${q(r.paymentId)}, ${q(r.amount)}, ${q(r.currency)}, ${q(r.status)}, ${q(settleAt)}, ${q(r.created)})`,
    );
    this.signal = true;
    return this;
  }

  /** The final answer of an idempotency record inserted earlier in the transaction. */
  idempotency(accountId: string, key: string, status: number, body: unknown): this {
    const q = (v: unknown) => this.p(v);
    this.parts.push(`UPDATE sandbox_idempotency SET status=${q(status)}, response=${q(JSON.stringify(body))}::jsonb WHERE account_id=${q(accountId)} AND key=${q(key)}`);
    return this;
  }

  sql(): string {
    if (this.parts.length === 1) return this.parts[0]!;
    return `WITH ${this.parts.map((s, i) => `w${i} AS (${s})`).join(', ')} SELECT 1`;
  }

  /** Runs the writes (nothing when there are none); events and refunds wake the dispatcher after commit. */
  async run(tx: Tx): Promise<void> {
    if (this.empty) return;
    await tx.query(this.sql(), this.params);
    if (this.signal) tx.afterCommit(() => sandboxSignal.emit('written'));
  }
}

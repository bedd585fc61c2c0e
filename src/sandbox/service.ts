/**
 * The sandbox PSP's operations and its payment state machine (sandbox-psp.md). Every mutation runs in one
 * transaction that also writes its webhook events; routes wrap them with `idempotent`.
 *
 * Payment statuses: requires_payment_method → (confirm) authorized | captured | requires_action | requires_payment_method
 * (retryable decline) | failed; requires_action → (challenge) authorized | captured | requires_payment_method | failed;
 * authorized → (capture) authorized (partial, more capturable) | captured (nothing left); authorized/requires_* → canceled
 * (or captured when part was already captured: the remainder is released).
 */
import { Coalescer } from '../store/coalesce.js';
import type { Db, Queryable, Tx } from '../store/db.js';
import { DECLINE_MESSAGES, MAX_RETRYABLE_DECLINES, brandOf, decideCard, type CardDecision, type CardInput } from './cards.js';
import {
  accountObject,
  emitEvent,
  insertPayment,
  insertPaymentParams,
  loadPayment,
  paymentFromRow,
  paymentObject,
  refundFromRow,
  refundObject,
  savePayment,
  transferObject,
  Writes,
  type Payment,
} from './model.js';
import { SbxError, badParam, canonicalJson, fail, newId, notFound, ok, sha256, unexpectedState, type SbxResult } from './util.js';


/** A payment to create with its idempotency record and the answer stored for its key. */
interface Creation {
  p: Payment;
  key: string;
  hash: string;
  res: SbxResult;
}

export interface SandboxSettings {
  /** Public base URL of the sandbox as browsers reach it, e.g. `https://pay.example.com/sandbox`. */
  publicBaseUrl: () => string;
  webhookDelayMs: number;
  refundSettleMs: number;
}

export type ConfirmOutcome =
  | { kind: 'authorized'; payment: Payment }
  | { kind: 'requires_action'; payment: Payment }
  | { kind: 'declined'; payment: Payment; code: string; message: string; final: boolean }
  | { kind: 'rejected'; payment: Payment; code: string; message: string };

export class SandboxService {
  constructor(
    readonly db: Db,
    readonly settings: SandboxSettings,
  ) {}

  get base(): string {
    return this.settings.publicBaseUrl();
  }

  pay(p: Payment, withSecret = true): Record<string, unknown> {
    return paymentObject(p, this.base, withSecret);
  }

  private emit(tx: Tx, accountId: string, type: string, object: Record<string, unknown>): Promise<void> {
    return emitEvent(tx, { webhookDelayMs: this.settings.webhookDelayMs }, accountId, type, object);
  }

  private emitPayment(tx: Tx, p: Payment, type: string): Promise<void> {
    return this.emit(tx, p.accountId, type, this.pay(p, false));
  }

  /**
   * Runs a mutation with Idempotency-Key semantics: same key + same request → the first result (also errors
   * that changed state, such as declines); same key + different request → 409. Thrown SbxErrors roll back and are not stored.
   */
  async idempotent(accountId: string, key: string | undefined, request: unknown, fn: (tx: Tx) => Promise<SbxResult>): Promise<SbxResult> {
    const hash = idempotencyHash(key, request);
    return this.db.tx(async (tx) => {
      if (key !== undefined) {
        const ins = await tx.query('INSERT INTO sandbox_idempotency (account_id, key, request_hash) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING RETURNING key', [accountId, key, hash]);
        if (ins.rows.length === 0) return this.replay(tx, accountId, key, hash);
      }
      const res = await fn(tx);
      if (key !== undefined) await tx.query('UPDATE sandbox_idempotency SET status=$3, response=$4::jsonb WHERE account_id=$1 AND key=$2', [accountId, key, res.status, JSON.stringify(res.body)]);
      return res;
    });
  }

  /** The answer for a key already used: its first result for the same request, 409 for another one. */
  private async replay(q: Queryable, accountId: string, key: string, hash: string): Promise<SbxResult> {
    const prev = (await q.query<{ request_hash: string; status: number | null; response: unknown }>('SELECT request_hash, status, response FROM sandbox_idempotency WHERE account_id=$1 AND key=$2', [accountId, key])).rows[0];
    if (!prev || prev.request_hash !== hash || prev.status === null) {
      return fail(new SbxError('conflict', 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request.'));
    }
    return { status: prev.status, body: prev.response };
  }

  /**
   * `idempotent(...)` for an operation on one payment (capture, cancel, refund) in two statements instead of up to
   * six: (1) the key's record is inserted and, only when it is new, the payment locked (`FOR UPDATE`), in that
   * order, as `idempotent` then `mustLoad` did; (2) the operation's writes and the key's final answer together.
   * `op` gets the payment (undefined when missing or another account's), decides synchronously, adds its writes to
   * `w` and returns the answer, or throws an SbxError: the transaction rolls back and the key stays unused.
   */
  private async onPayment(accountId: string, key: string | undefined, request: unknown, paymentId: string, op: (p: Payment | undefined, w: Writes) => SbxResult): Promise<SbxResult> {
    const hash = idempotencyHash(key, request);
    return this.db.tx(async (tx) => {
      let row: Record<string, any> | undefined;
      if (key === undefined) {
        row = (await tx.query('SELECT * FROM sandbox_payments WHERE id=$1 FOR UPDATE', [paymentId])).rows[0];
      } else {
        const r = (
          await tx.query<Record<string, any>>(
            `WITH idem AS (INSERT INTO sandbox_idempotency (account_id, key, request_hash) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING RETURNING key)
             SELECT i.idem_fresh, p.* FROM (SELECT count(*)::int AS idem_fresh FROM idem) i
             LEFT JOIN LATERAL (SELECT * FROM sandbox_payments WHERE id=$4 AND i.idem_fresh > 0 FOR UPDATE) p ON true`,
            [accountId, key, hash, paymentId],
          )
        ).rows[0]!;
        if (Number(r.idem_fresh) === 0) return this.replay(tx, accountId, key, hash);
        row = r.id === null || r.id === undefined ? undefined : r;
      }
      const p = row && row.account_id === accountId ? paymentFromRow(row) : undefined;
      const w = new Writes();
      const res = op(p, w);
      if (key !== undefined) w.idempotency(accountId, key, res.status, res.body);
      await w.run(tx);
      return res;
    });
  }

  // ---- payments ------------------------------------------------------------------------------

  async createPayment(tx: Tx, accountId: string, b: NewPaymentInput): Promise<SbxResult> {
    const p = newPayment(accountId, b);
    await insertPayment(tx, p);
    return ok(this.pay(p));
  }

  /**
   * `idempotent(accountId, key, request, (tx) => createPayment(tx, accountId, b))` in one statement (one round trip
   * instead of five): the idempotency record is stored with its final answer together with the payment, both or
   * neither. A key already used answers as `idempotent` does (the first result, or 409 for another request).
   */
  async createPaymentIdempotent(accountId: string, key: string | undefined, request: unknown, b: NewPaymentInput): Promise<SbxResult> {
    const hash = idempotencyHash(key, request);
    const p = newPayment(accountId, b);
    const res = ok(this.pay(p));
    if (key === undefined) {
      await insertPayment(this.db, p);
      return res;
    }
    // Concurrent creations of one account share a statement (group commit); a key already used is answered alone.
    const created = await this.creations.submit(accountId, { p, key, hash, res });
    return created ? res : this.replay(this.db, accountId, key, hash);
  }

  /** New payments with their idempotency records, per account: true for each stored, false for a key already used. */
  private readonly creations = new Coalescer<Creation, boolean>({
    one: async (_account, c) => {
      const r = await this.db.query<{ n: number }>(
        `WITH idem AS (
           INSERT INTO sandbox_idempotency (account_id, key, request_hash, status, response) VALUES ($2, $12, $13, $14, $15::jsonb)
           ON CONFLICT DO NOTHING RETURNING key),
         pay AS (
           INSERT INTO sandbox_payments (id, account_id, status, amount, currency, capture_method, reference, return_url, metadata, client_secret, created_at)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11 WHERE EXISTS (SELECT 1 FROM idem)
           RETURNING id)
         SELECT count(*)::int AS n FROM pay`,
        [...insertPaymentParams(c.p), c.key, c.hash, c.res.status, JSON.stringify(c.res.body)],
      );
      return Number(r.rows[0]?.n ?? 0) > 0;
    },
    many: async (account, cs) => {
      if (new Set(cs.map((c) => c.key)).size < cs.length) throw new Error('creations of one batch share an idempotency key'); // keysOf keeps them apart
      const rows = cs.map((c) => insertPaymentParams(c.p));
      const column = (i: number): unknown[] => rows.map((r) => (i === 10 ? (r[i] as Date).toISOString() : r[i]));
      const r = await this.db.query<{ n: number | string }>(
        `WITH input AS (
           SELECT * FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
             $11::timestamptz[], $12::text[], $13::text[], $14::int[], $15::text[])
           WITH ORDINALITY AS x(id, status, amount, currency, capture_method, reference, return_url, metadata, client_secret, created_at,
             key, request_hash, answer_status, answer, n)),
         idem AS (
           INSERT INTO sandbox_idempotency (account_id, key, request_hash, status, response)
           SELECT $1, key, request_hash, answer_status, answer::jsonb FROM input ORDER BY n
           ON CONFLICT DO NOTHING RETURNING key),
         pay AS (
           INSERT INTO sandbox_payments (id, account_id, status, amount, currency, capture_method, reference, return_url, metadata, client_secret, created_at)
           SELECT id, $1, status, amount, currency, capture_method, reference, return_url, metadata::jsonb, client_secret, created_at
           FROM input WHERE key IN (SELECT key FROM idem) ORDER BY n
           RETURNING id)
         SELECT i.n FROM input i JOIN pay ON pay.id = i.id`,
        [account, ...[0, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(column), cs.map((c) => c.key), cs.map((c) => c.hash), cs.map((c) => c.res.status), cs.map((c) => JSON.stringify(c.res.body))],
      );
      const stored = new Set(r.rows.map((x) => Number(x.n)));
      return cs.map((_, i) => stored.has(i + 1));
    },
    keysOf: (c) => [c.key], // a repeated key waits for the next batch, which answers it from the first's record
  });

  async mustLoad(tx: Tx, id: string, accountId?: string): Promise<Payment> {
    const p = await loadPayment(tx, id, { accountId, lock: true });
    if (!p) throw notFound('payment', id);
    return p;
  }

  async updateAmount(tx: Tx, accountId: string, id: string, amount: number): Promise<SbxResult> {
    const p = await this.mustLoad(tx, id, accountId);
    if (p.status !== 'requires_payment_method') throw unexpectedState('payment', p.status, 'updated');
    p.amount = amount;
    await savePayment(tx, p);
    return ok(this.pay(p));
  }

  /** The card decides (sandbox-psp.md "Test cards"). Throws 409 when the payment cannot be confirmed any more. */
  async confirm(tx: Tx, p: Payment, card: CardInput, payer?: Record<string, unknown>): Promise<ConfirmOutcome> {
    if (p.status !== 'requires_payment_method' && p.status !== 'requires_action') throw unexpectedState('payment', p.status, 'confirmed');
    if (payer) p.payer = payer;
    const decision = decideCard(card);
    if (decision.kind !== 'reject') {
      p.card = { brand: brandOf(card.number), last4: card.number.slice(-4), expMonth: card.expMonth, expYear: card.expYear };
    }
    return this.applyDecision(tx, p, decision);
  }

  /** The challenge page's answer for a payment in `requires_action`. */
  async completeChallenge(tx: Tx, p: Payment, outcome: 'complete' | 'fail'): Promise<ConfirmOutcome> {
    if (p.status !== 'requires_action') throw unexpectedState('payment', p.status, 'authenticated');
    const decision: CardDecision =
      outcome === 'complete' ? { kind: 'authorize', behavior: 'normal' } : { kind: 'decline', code: 'authentication_failed', message: DECLINE_MESSAGES.authentication_failed! };
    return this.applyDecision(tx, p, decision);
  }

  private async applyDecision(tx: Tx, p: Payment, d: CardDecision): Promise<ConfirmOutcome> {
    switch (d.kind) {
      case 'reject':
        // Bad card data: nothing was attempted; remembered so a return to the shop can show why.
        p.lastDecline = { code: d.code, message: d.message };
        await savePayment(tx, p);
        return { kind: 'rejected', payment: p, code: d.code, message: d.message };
      case 'challenge':
        p.status = 'requires_action';
        p.cardBehavior = 'normal';
        await savePayment(tx, p);
        return { kind: 'requires_action', payment: p };
      case 'decline': {
        p.declineCount += 1;
        p.lastDecline = { code: d.code, message: d.message };
        const final = p.declineCount >= MAX_RETRYABLE_DECLINES;
        p.status = final ? 'failed' : 'requires_payment_method';
        if (final) p.failureCode = 'too_many_declines';
        await savePayment(tx, p);
        await this.emitPayment(tx, p, final ? 'payment.failed' : 'payment.attempt_failed');
        return { kind: 'declined', payment: p, code: d.code, message: d.message, final };
      }
      case 'fail':
        p.status = 'failed';
        p.failureCode = d.code;
        p.lastDecline = { code: d.code, message: d.message };
        await savePayment(tx, p);
        await this.emitPayment(tx, p, 'payment.failed');
        return { kind: 'declined', payment: p, code: d.code, message: d.message, final: true };
      case 'authorize':
        p.status = 'authorized';
        p.cardBehavior = d.behavior;
        p.amountCapturable = p.amount;
        p.lastDecline = null;
        if (p.captureMethod === 'automatic' && d.behavior !== 'capture_fails') {
          p.amountCaptured = p.amount;
          p.amountCapturable = 0;
          p.status = 'captured';
          await savePayment(tx, p);
          await this.emitPayment(tx, p, 'payment.captured');
        } else {
          await this.emitPayment(tx, p, 'payment.authorized');
          if (p.captureMethod === 'automatic') {
            p.captureError = { code: 'capture_failed', message: DECLINE_MESSAGES.capture_failed! };
            await this.emitPayment(tx, p, 'payment.capture_failed');
          }
          await savePayment(tx, p);
        }
        return { kind: 'authorized', payment: p };
    }
  }

  /** The API answer for a confirm outcome: 200 with the payment, or 402 card_error carrying the payment. */
  confirmResult(o: ConfirmOutcome): SbxResult {
    if (o.kind === 'authorized' || o.kind === 'requires_action') return ok(this.pay(o.payment));
    return fail(new SbxError('card_error', o.code, o.message, { declineType: o.kind === 'rejected' ? 'invalid' : o.final ? 'final' : 'retryable', payment: this.pay(o.payment) }));
  }

  /** POST /v1/payments/:id/capture with its Idempotency-Key. */
  captureIdempotent(accountId: string, key: string | undefined, request: unknown, id: string, amount: number | undefined): Promise<SbxResult> {
    return this.onPayment(accountId, key, request, id, (p, w) => this.capture(w, p, id, amount));
  }

  /** POST /v1/payments/:id/cancel with its Idempotency-Key. */
  cancelIdempotent(accountId: string, key: string | undefined, request: unknown, id: string): Promise<SbxResult> {
    return this.onPayment(accountId, key, request, id, (p, w) => this.cancel(w, p, id));
  }

  /** POST /v1/refunds with its Idempotency-Key. */
  createRefundIdempotent(accountId: string, key: string | undefined, request: unknown, paymentId: string, amount: number): Promise<SbxResult> {
    return this.onPayment(accountId, key, request, paymentId, (p, w) => this.createRefund(w, accountId, p, paymentId, amount));
  }

  private eventOf(w: Writes, p: Payment, type: string): void {
    w.event({ webhookDelayMs: this.settings.webhookDelayMs }, p.accountId, type, this.pay(p, false));
  }

  /** `p`: the locked payment of the caller's account (undefined when there is none). */
  private capture(w: Writes, p: Payment | undefined, id: string, amount: number | undefined): SbxResult {
    if (!p) throw notFound('payment', id);
    if (p.status !== 'authorized' || p.amountCapturable <= 0) throw unexpectedState('payment', p.status, 'captured');
    const amt = amount ?? p.amountCapturable;
    if (amt > p.amountCapturable) throw new SbxError('invalid_request', 'amount_too_large', `The amount ${amt} exceeds the capturable amount ${p.amountCapturable}.`, { param: 'amount' });
    if (p.cardBehavior === 'capture_fails') {
      p.captureError = { code: 'capture_failed', message: DECLINE_MESSAGES.capture_failed! };
      w.payment(p);
      this.eventOf(w, p, 'payment.capture_failed');
      return fail(new SbxError('card_error', 'capture_failed', DECLINE_MESSAGES.capture_failed!, { payment: this.pay(p) }));
    }
    p.amountCapturable -= amt;
    p.amountCaptured += amt;
    p.captureError = null;
    if (p.amountCapturable === 0) p.status = 'captured';
    w.payment(p);
    this.eventOf(w, p, 'payment.captured');
    return ok({ ...this.pay(p), capture: { id: newId('sbx_cap_'), amount: amt } });
  }

  private cancel(w: Writes, p: Payment | undefined, id: string): SbxResult {
    if (!p) throw notFound('payment', id);
    if (p.status === 'canceled') return ok(this.pay(p));
    if (p.status === 'captured' || p.status === 'failed') throw unexpectedState('payment', p.status, 'canceled');
    // A partly captured payment keeps its captured money: the rest of the authorization is released.
    p.status = p.amountCaptured > 0 ? 'captured' : 'canceled';
    p.amountCapturable = 0;
    w.payment(p);
    this.eventOf(w, p, 'payment.canceled');
    return ok(this.pay(p));
  }

  // ---- refunds -------------------------------------------------------------------------------

  private createRefund(w: Writes, accountId: string, p: Payment | undefined, paymentId: string, amount: number): SbxResult {
    if (!p) throw badParam('payment', `No such payment: '${paymentId}'.`);
    const refundable = p.amountCaptured - p.amountRefunded;
    if (amount > refundable) throw new SbxError('invalid_request', 'amount_too_large', `The amount ${amount} exceeds the refundable amount ${refundable}.`, { param: 'amount' });
    p.amountRefunded += amount;
    w.payment(p);
    const now = new Date();
    const r = { id: newId('sbx_re_'), accountId, paymentId: p.id, amount, currency: p.currency, status: 'pending' as const, failureReason: null, created: now };
    w.refund(r, new Date(now.getTime() + this.settings.refundSettleMs));
    return ok(refundObject(r, p.metadata));
  }

  async getRefund(accountId: string, id: string): Promise<SbxResult> {
    const r = (await this.db.query('SELECT * FROM sandbox_refunds WHERE id=$1 AND account_id=$2', [id, accountId])).rows[0];
    if (!r) throw notFound('refund', id);
    const p = await loadPayment(this.db, String(r.payment_id));
    return ok(refundObject(refundFromRow(r), p?.metadata ?? {}));
  }

  /** Settles refunds whose time has come (called by the dispatcher). Returns how many were settled. */
  async settleDueRefunds(now = new Date()): Promise<number> {
    return this.db.tx(async (tx) => {
      const due = await tx.query('SELECT * FROM sandbox_refunds WHERE status=$1 AND settle_at <= $2 ORDER BY settle_at LIMIT 50 FOR UPDATE SKIP LOCKED', ['pending', now]);
      for (const row of due.rows) {
        const r = refundFromRow(row);
        const p = (await loadPayment(tx, r.paymentId, { lock: true }))!;
        if (p.cardBehavior === 'refund_fails') {
          r.status = 'failed';
          r.failureReason = 'refund_failed';
          p.amountRefunded -= r.amount;
          await savePayment(tx, p);
        } else {
          r.status = 'succeeded';
        }
        await tx.query('UPDATE sandbox_refunds SET status=$2, failure_reason=$3 WHERE id=$1', [r.id, r.status, r.failureReason]);
        await this.emit(tx, r.accountId, r.status === 'succeeded' ? 'refund.succeeded' : 'refund.failed', refundObject(r, p.metadata));
      }
      return due.rows.length;
    });
  }

  // ---- webhook endpoints, accounts, transfers, customers -------------------------------------

  async registerEndpoint(tx: Tx, accountId: string, b: { url: string; secret: string; livemode?: boolean }): Promise<SbxResult> {
    await tx.query(
      `INSERT INTO sandbox_webhook_endpoints (account_id, url, secret, livemode) VALUES ($1,$2,$3,$4)
       ON CONFLICT (account_id) DO UPDATE SET url=EXCLUDED.url, secret=EXCLUDED.secret, livemode=EXCLUDED.livemode, updated_at=now()`,
      [accountId, b.url, b.secret, b.livemode ?? false],
    );
    return ok({ id: `sbx_we_${accountId.replace(/^sbx_acct_/, '')}`, object: 'webhook_endpoint', url: b.url, livemode: b.livemode ?? false });
  }

  async createAccount(tx: Tx, platformId: string, b: { reference?: string; name?: string; metadata?: Record<string, unknown> }): Promise<SbxResult> {
    const id = newId('sbx_acct_');
    const r = await tx.query('INSERT INTO sandbox_accounts (id, platform_account_id, reference, name, status, metadata) VALUES ($1,$2,$3,$4,$5,$6::jsonb) RETURNING *', [
      id,
      platformId,
      b.reference ?? null,
      b.name ?? null,
      'pending',
      JSON.stringify(b.metadata ?? {}),
    ]);
    return ok(accountObject(r.rows[0]!, this.base));
  }

  async getAccount(platformId: string, id: string): Promise<SbxResult> {
    const r = (await this.db.query('SELECT * FROM sandbox_accounts WHERE id=$1 AND platform_account_id=$2', [id, platformId])).rows[0];
    if (!r) throw notFound('account', id);
    return ok(accountObject(r, this.base));
  }

  /** The onboarding page's answer: `complete` activates the account, `fail` rejects it; `account.updated` either way. */
  async finishOnboarding(accountId: string, outcome: 'complete' | 'fail'): Promise<Record<string, any> | undefined> {
    return this.db.tx(async (tx) => {
      const r = (await tx.query('SELECT * FROM sandbox_accounts WHERE id=$1 FOR UPDATE', [accountId])).rows[0];
      if (!r) return undefined;
      if (r.status !== 'pending') return r;
      const status = outcome === 'complete' ? 'active' : 'rejected';
      const updated = (await tx.query('UPDATE sandbox_accounts SET status=$2 WHERE id=$1 RETURNING *', [accountId, status])).rows[0]!;
      await this.emit(tx, String(updated.platform_account_id), 'account.updated', accountObject(updated, this.base));
      return updated;
    });
  }

  async createTransfer(tx: Tx, accountId: string, b: { amount: number; currency: string; destination: string; transferGroup?: string; metadata?: Record<string, unknown> }): Promise<SbxResult> {
    const dest = (await tx.query('SELECT status FROM sandbox_accounts WHERE id=$1 AND platform_account_id=$2', [b.destination, accountId])).rows[0];
    if (!dest) throw new SbxError('invalid_request', 'account_invalid', `No such destination account: '${b.destination}'.`, { param: 'destination' });
    if (dest.status !== 'active') throw new SbxError('invalid_request', 'account_not_active', `The destination account is ${String(dest.status)}; transfers need an active account.`, { param: 'destination' });
    const r = await tx.query('INSERT INTO sandbox_transfers (id, account_id, destination, amount, currency, transfer_group, metadata) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb) RETURNING *', [
      newId('sbx_tr_'),
      accountId,
      b.destination,
      b.amount,
      b.currency.toUpperCase(),
      b.transferGroup ?? null,
      JSON.stringify(b.metadata ?? {}),
    ]);
    const t = transferObject(r.rows[0]!);
    await this.emit(tx, accountId, 'transfer.created', t);
    return ok(t);
  }

  async reverseTransfer(tx: Tx, accountId: string, id: string, amount: number): Promise<SbxResult> {
    const t = (await tx.query('SELECT * FROM sandbox_transfers WHERE id=$1 AND account_id=$2 FOR UPDATE', [id, accountId])).rows[0];
    if (!t) throw notFound('transfer', id);
    const left = Number(t.amount) - Number(t.amount_reversed);
    if (amount > left) throw new SbxError('invalid_request', 'amount_too_large', `The amount ${amount} exceeds the reversible amount ${left}.`, { param: 'amount' });
    const reversal = { id: newId('sbx_trr_'), object: 'transfer_reversal', transfer: id, amount, created: Math.floor(Date.now() / 1000) };
    const r = await tx.query('UPDATE sandbox_transfers SET amount_reversed = amount_reversed + $2, reversals = reversals || $3::jsonb WHERE id=$1 RETURNING *', [
      id,
      amount,
      JSON.stringify([{ id: reversal.id, amount, created: reversal.created }]),
    ]);
    await this.emit(tx, accountId, 'transfer.reversed', transferObject(r.rows[0]!));
    return ok(reversal);
  }

  async getTransfer(accountId: string, id: string): Promise<SbxResult> {
    const t = (await this.db.query('SELECT * FROM sandbox_transfers WHERE id=$1 AND account_id=$2', [id, accountId])).rows[0];
    if (!t) throw notFound('transfer', id);
    return ok(transferObject(t));
  }

  async customerFromPayment(accountId: string, paymentId: string): Promise<SbxResult> {
    const p = await loadPayment(this.db, paymentId, { accountId });
    if (!p) throw notFound('payment', paymentId);
    if (!p.payer) throw new SbxError('not_found', 'customer_not_found', 'No payer was recorded for this payment yet.');
    return ok({ object: 'customer', payment: p.id, ...p.payer });
  }
}

export interface NewPaymentInput {
  amount: number;
  currency: string;
  reference?: string;
  captureMethod?: 'manual' | 'automatic';
  returnUrl?: string;
  metadata?: Record<string, unknown>;
}

/** Checks an Idempotency-Key (1 to 255 characters) and hashes the request it goes with. */
function idempotencyHash(key: string | undefined, request: unknown): string {
  if (key !== undefined && (key.length === 0 || key.length > 255)) throw badParam('Idempotency-Key', 'Idempotency-Key must be 1 to 255 characters.');
  return sha256(canonicalJson(request));
}

function newPayment(accountId: string, b: NewPaymentInput): Payment {
  const id = newId('sbx_pay_');
  return {
    id,
    accountId,
    status: 'requires_payment_method',
    amount: b.amount,
    currency: b.currency.toUpperCase(),
    captureMethod: b.captureMethod ?? 'manual',
    reference: b.reference ?? null,
    returnUrl: b.returnUrl ?? null,
    metadata: b.metadata ?? {},
    clientSecret: `${id}_secret_${newId('')}`,
    amountCapturable: 0,
    amountCaptured: 0,
    amountRefunded: 0,
    declineCount: 0,
    lastDecline: null,
    failureCode: null,
    captureError: null,
    card: null,
    cardBehavior: null,
    payer: null,
    created: new Date(),
  };
}

/**
 * A stateful Stripe-shaped fake for tests (stripe.md 4.2/4.3): an HTTP server on 127.0.0.1 speaking Stripe's wire format,
 * signed webhook delivery, a stripe.js double at `${url}/v3/`, and test controls. See README.md in this folder.
 */
import type { AddressInfo } from 'node:net';
import { type Json, PINNED_API_VERSION, State, rand } from './core.js';
import * as pay from './payments.js';
import * as con from './connect.js';
import { type Delivery, type WebhookMode, Webhooks, signPayload } from './webhooks.js';
import { type Fault, FakeServer, type LoggedRequest } from './server.js';

export { PINNED_API_VERSION, signPayload };
export { TEST_CARD_NUMBERS, TEST_PMS } from './payments.js';
export type { Delivery, Fault, LoggedRequest, WebhookMode, Json };
export type { AccountStateName } from './connect.js';

export type Mode = 'test' | 'live';

export interface StripeFakeOptions {
  /** Port to listen on (default 0: random). Always 127.0.0.1. */
  port?: number;
  /** API version of events and the `Stripe-Version` answer when the client sends none (default the pinned one). */
  apiVersion?: string;
  /** Delays between automatic webhook retries (default [200, 1000, 3000] ms, then given up; `flush()` retries anyway). */
  webhookRetryDelaysMs?: number[];
  /** Refunds start `pending` (default false: card refunds answer `succeeded` like Stripe's test mode). */
  refundsPending?: boolean;
}

/** A platform account (the tenant's own Stripe account) with its keys. */
export interface FakeAccount {
  id: string;
  secretKey: string;
  publishableKey: string;
  /** Restricted key with every permission except `account` (as the connector's recommended key). */
  restrictedKey: string;
  liveSecretKey: string;
  livePublishableKey: string;
  liveRestrictedKey: string;
}

export interface AddKeyOptions {
  /** The key itself (must start with sk_/rk_/pk_ and the mode); default random. */
  key?: string;
  account?: string;
  mode?: Mode;
  kind: 'secret' | 'restricted' | 'publishable';
  /** Restricted keys: resources (`payment_intents`, `refunds`, `webhook_endpoints:read`, ...) or '*' (default '*'). */
  permissions?: string[] | '*';
}

export interface StripeFake {
  /** Base URL, e.g. http://127.0.0.1:41234 (the API is under /v1, stripe.js under /v3/). */
  url: string;
  host: string;
  port: number;
  /** Ready-made SDK options: `new Stripe(key, fake.sdkOptions)`. */
  sdkOptions: { host: string; port: number; protocol: 'http'; apiVersion: string; maxNetworkRetries: 0 };
  /** The default platform account. */
  account: FakeAccount;
  close(): Promise<void>;
  addAccount(opts?: { id?: string; country?: string; businessName?: string }): FakeAccount;
  addKey(opts: AddKeyOptions): string;
  /** Creates an Express connected account of a platform (default: the default account), optionally in a given state. */
  addConnectedAccount(opts?: { platform?: string; mode?: Mode; state?: con.AccountStateName; metadata?: Record<string, string> }): string;
  /**
   * Confirms a PaymentIntent as the browser would (`pm_card_*`); returns the PI (also after a decline, no throw).
   * `processing: true` (fake-only) leaves a succeeding confirmation in `processing` until `settleProcessing`.
   */
  confirm(piId: string, pm: string, opts?: { returnUrl?: string; processing?: boolean }): Json;
  /** Ends `processing`: authorized (or captured, automatic capture) when ok, else declined. */
  settleProcessing(piId: string, ok: boolean): Json;
  /** The uncaptured authorization expires: Stripe cancels the PI with `cancellation_reason: automatic`. */
  expireAuthorization(piId: string): Json;
  /** Completes or fails the 3DS challenge of a PI in `requires_action`. */
  completeChallenge(piId: string, ok: boolean): Json;
  /** Creates a ConfirmationToken (express payer data) like `stripe.createConfirmationToken`. */
  createConfirmationToken(opts?: {
    account?: string;
    mode?: Mode;
    paymentMethod?: string;
    shipping?: Json;
    billingDetails?: Json;
    returnUrl?: string;
  }): Json;
  settleRefunds(): Json[];
  failRefund(id: string, reason?: string): Json;
  setRefundsPending(pending: boolean): void;
  setAccountState(acct: string, state: con.AccountStateName): Json;
  /** Sets an account's balance for a currency (default test mode). */
  setBalance(acct: string, b: { currency: string; available?: number; pending?: number; mode?: Mode }): void;
  /** Moves every pending balance to available. */
  settleBalances(): void;
  /** What `cancel` leaves on a partially captured multicapture PI (stripe.md [unconfirmed]; default 'canceled'). */
  setMulticaptureCancelStatus(status: 'canceled' | 'succeeded'): void;
  injectFault(f: Fault): void;
  clearFaults(): void;
  abortHungRequests(): void;
  /** Forgets stored idempotency keys (Stripe's 24 h pruning). */
  expireIdempotencyKeys(): void;
  webhooks: {
    pause(): void;
    resume(): void;
    flush(opts?: { retries?: boolean }): Promise<Delivery[]>;
    setMode(mode: WebhookMode): void;
    delivered(): Delivery[];
    pending(): Json[];
    secretOf(endpointId: string): string;
  };
  /** Every API request, in arrival order. */
  requests: LoggedRequest[];
  /** Actions "in the Stripe Dashboard": no idempotency key, webhooks sent like for API calls. */
  dashboard: { capture(pi: string, amount?: number): Json; refund(pi: string, amount?: number): Json; cancel(pi: string): Json };
  /** A stored object by id (live reference; clone before keeping). */
  get(id: string): Json | undefined;
  /** Every event emitted so far, oldest first (optionally one type). */
  events(type?: string): Json[];
}

const keyOf = (prefix: string): string => `${prefix}_${rand(24)}`;

export async function startStripeFake(opts: StripeFakeOptions = {}): Promise<StripeFake> {
  const state = new State();
  state.apiVersion = opts.apiVersion ?? PINNED_API_VERSION;
  state.refundsPending = !!opts.refundsPending;
  const webhooks = new Webhooks(state, opts.webhookRetryDelaysMs);
  const server = new FakeServer(state, webhooks);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  state.base = `http://127.0.0.1:${port}`;

  const addKey = (o: AddKeyOptions): string => {
    const acct = o.account ?? state.defaultAccount;
    if (!state.accounts.has(acct)) throw new Error(`stripe fake: no account ${acct}`);
    const mode = o.mode ?? 'test';
    const prefix = `${o.kind === 'secret' ? 'sk' : o.kind === 'restricted' ? 'rk' : 'pk'}_${mode}_`;
    if (o.key !== undefined && !o.key.startsWith(prefix)) throw new Error(`stripe fake: a ${o.kind} ${mode} key starts with ${prefix}`);
    const key = o.key ?? keyOf(prefix.slice(0, -1));
    state.keys.set(key, { key, acct, livemode: mode === 'live', kind: o.kind, permissions: o.permissions ?? '*' });
    return key;
  };
  const RESTRICTED = ['payment_intents', 'refunds', 'charges', 'payment_methods', 'confirmation_tokens', 'webhook_endpoints', 'events', 'transfers', 'accounts', 'account_links', 'balance'];
  const addAccount = (o: { id?: string; country?: string; businessName?: string } = {}): FakeAccount => {
    const id = o.id ?? `acct_${rand(16)}`;
    state.accounts.set(id, { platform: null, balance: new Map() });
    // the account object is visible in both modes
    state.put('account', id, false, con.accountObject(id, false, { country: o.country, business_profile: { name: o.businessName ?? null } }, true));
    state.defaultAccount ||= id;
    const k = (kind: AddKeyOptions['kind'], mode: Mode) => addKey({ account: id, mode, kind, permissions: kind === 'restricted' ? RESTRICTED : '*' });
    return {
      id,
      secretKey: k('secret', 'test'),
      publishableKey: k('publishable', 'test'),
      restrictedKey: k('restricted', 'test'),
      liveSecretKey: k('secret', 'live'),
      livePublishableKey: k('publishable', 'live'),
      liveRestrictedKey: k('restricted', 'live'),
    };
  };
  const account = addAccount();
  const pi = (id: string) => state.must(id, 'payment_intent');
  const dashboardCtx = (rec: { acct: string; livemode: boolean }) => ({ acct: rec.acct, livemode: rec.livemode, requestId: null, idempotencyKey: null });
  const orThrow = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e && typeof e === 'object' && 'body' in e) throw new Error(`stripe fake: ${String((e as { body: Json }).body.message)}`);
      throw e;
    }
  };

  return {
    url: state.base,
    host: '127.0.0.1',
    port,
    sdkOptions: { host: '127.0.0.1', port, protocol: 'http', apiVersion: state.apiVersion, maxNetworkRetries: 0 },
    account,
    async close() {
      await webhooks.close();
      await server.close();
    },
    addAccount,
    addKey,
    addConnectedAccount(o = {}) {
      const platform = o.platform ?? state.defaultAccount;
      const ctx = { acct: platform, livemode: o.mode === 'live', requestId: null, idempotencyKey: null };
      const a = con.createAccount(state, ctx, {
        controller: { stripe_dashboard: { type: 'express' } },
        capabilities: { transfers: { requested: 'true' } },
        metadata: o.metadata,
      });
      if (o.state) con.setAccountState(state, a.id, o.state);
      return a.id;
    },
    confirm(piId, pm, o = {}) {
      const rec = pi(piId);
      rec.x.processNext = !!o.processing;
      try {
        return pay.confirmPaymentIntent(state, dashboardCtx(rec), rec, { payment_method: pm, ...(o.returnUrl ? { return_url: o.returnUrl } : {}) });
      } catch (e) {
        if (e && typeof e === 'object' && 'body' in e && rec.obj.status === 'requires_payment_method' && rec.obj.last_payment_error) return rec.obj;
        return orThrow(() => {
          throw e;
        });
      }
    },
    settleProcessing: (piId, ok) => orThrow(() => pay.settleProcessing(state, pi(piId), ok)),
    expireAuthorization: (piId) => orThrow(() => pay.expireAuthorization(state, pi(piId))),
    completeChallenge: (piId, ok) => orThrow(() => pay.completeChallenge(state, pi(piId), ok)),
    createConfirmationToken(o = {}) {
      const acct = o.account ?? state.defaultAccount;
      return orThrow(() =>
        pay.createConfirmationToken(state, { acct, livemode: o.mode === 'live', requestId: null, idempotencyKey: null }, {
          payment_method: o.paymentMethod ?? 'pm_card_visa',
          shipping: o.shipping,
          payment_method_data: o.billingDetails ? { billing_details: o.billingDetails } : undefined,
          return_url: o.returnUrl,
        }),
      );
    },
    settleRefunds: () => pay.settleRefunds(state),
    failRefund: (id, reason) => pay.failRefund(state, id, reason),
    setRefundsPending(p) {
      state.refundsPending = p;
    },
    setAccountState: (acct, s) => con.setAccountState(state, acct, s),
    setBalance(acct, b) {
      const bal = state.balance(acct, b.mode === 'live', b.currency.toLowerCase());
      if (b.available !== undefined) bal.available = b.available;
      if (b.pending !== undefined) bal.pending = b.pending;
    },
    settleBalances() {
      for (const st of state.accounts.values())
        for (const b of st.balance.values()) {
          b.available += b.pending;
          b.pending = 0;
        }
    },
    setMulticaptureCancelStatus(s) {
      state.multicaptureCancelStatus = s;
    },
    injectFault: (f) => server.injectFault(f),
    clearFaults: () => server.clearFaults(),
    abortHungRequests: () => server.abortHungRequests(),
    expireIdempotencyKeys: () => server.expireIdempotencyKeys(),
    webhooks: {
      pause: () => webhooks.pause(),
      resume: () => webhooks.resume(),
      flush: (o) => webhooks.flush(o),
      setMode: (m) => webhooks.setMode(m),
      delivered: () => webhooks.delivered(),
      pending: () => webhooks.pending(),
      secretOf: (id) => webhooks.secretOf(id),
    },
    requests: server.requests,
    dashboard: {
      capture(id, amount) {
        const rec = pi(id);
        return orThrow(() => pay.capturePaymentIntent(state, dashboardCtx(rec), rec, amount === undefined ? {} : { amount_to_capture: String(amount) }));
      },
      refund(id, amount) {
        const rec = pi(id);
        return orThrow(() => pay.createRefund(state, dashboardCtx(rec), { payment_intent: id, ...(amount === undefined ? {} : { amount: String(amount) }) }));
      },
      cancel(id) {
        const rec = pi(id);
        return orThrow(() => pay.cancelPaymentIntent(state, dashboardCtx(rec), rec, {}));
      },
    },
    get: (id) => state.recs.get(id)?.obj,
    events: (type) =>
      [...state.recs.values()]
        .filter((r) => r.type === 'event' && (!type || r.obj.type === type))
        .sort((a, b) => a.seq - b.seq)
        .map((r) => r.obj),
  };
}

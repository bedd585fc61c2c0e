/**
 * The Stripe connector (stripe.md): every port operation on the official SDK, with our own idempotency keys (1.3),
 * metadata on every object we create, amounts converted per currency (3.8), failures as values.
 */
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import type { CaptureOutcome, CancelOutcome, Connector, CredentialCheck, PspFailure, PspResult, RefundOutcome, TenantSettings } from '../types.js';
import { attempt, failureOf, isReplayed, isStripeError, keys, run, secretKeyOf, STRIPE_API_VERSION, StripeClients } from './client.js';
import { fromStripeAmount, stripeCurrency, toStripeAmount } from './currency.js';
import { latestChargeId, merchantStatusOf, multicaptureAvailable, refundStatus, toPayer, toPspPayment } from './mapping.js';
import { renderStripeCheckout } from './page.js';
import {
  CONFIGURATION_KEYS,
  isLiveSettings,
  isMarketplace,
  STRIPE_CAPABILITIES,
  STRIPE_MESSAGE_KEYS,
  stripeDeclineMessageKey,
  stripePaymentMethods,
  stripeSettings,
  validateStripeFormats,
} from './settings.js';
import { ACCOUNT_EVENTS, CONNECT_EVENTS, parseStripeWebhook, stripeWebhookOutcome, TRANSFER_EVENTS, verifyStripeWebhook } from './webhooks.js';

export interface StripeConnectorEnv {
  apiBase: () => string;
  jsUrl: () => string;
  appIdentifier: () => string;
  /** STRIPE_MAX_DECLINED_ATTEMPTS: declined attempts after which the app cancels the PaymentIntent (3.4). */
  maxDeclinedAttempts: () => number;
  log: Logger;
}

type Obj = Record<string, any>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const fail = <T>(failure: PspFailure): PspResult<T> => ({ ok: false, failure });
const ok = <T>(value: T): PspResult<T> => ({ ok: true, value });
const invalidAmount = (currency: string): PspFailure => ({ kind: 'declined', code: 'invalid_amount', message: `Stripe cannot take this amount in ${currency.toUpperCase()}` });

/** Stripe metadata limits: 50 keys, key ≤ 40 chars, value ≤ 500 chars; empty values are left out. */
function metadata(m: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined || v === null || v === '') continue;
    if (Object.keys(out).length >= 50) break;
    out[k.slice(0, 40)] = String(v).slice(0, 500);
  }
  return out;
}

/** The PaymentIntent's own metadata we copy onto captures, refunds and transfers. */
const piMeta = (pi: Obj): Record<string, string> => ({
  tenantIdentifier: str(pi.metadata?.tenantIdentifier),
  paymentId: str(pi.metadata?.paymentId),
  orderReference: str(pi.metadata?.orderReference),
  transactionId: str(pi.id),
});

function shippingOf(orderData: Record<string, unknown> | undefined): Stripe.PaymentIntentCreateParams.Shipping | undefined {
  if (!orderData) return undefined;
  const o = orderData as Obj;
  const line1 = str(o.shippingAddress1);
  const country = str(o.shippingCountryCode);
  if (!line1 || !country) return undefined;
  const name = [str(o.shippingFirstName), str(o.shippingLastName)].filter(Boolean).join(' ') || str(o.customerFirstName) || 'Customer';
  return {
    name: name.slice(0, 200),
    ...(str(o.shippingPhone) ? { phone: str(o.shippingPhone) } : {}),
    address: {
      line1,
      ...(str(o.shippingAddress2) ? { line2: [str(o.shippingAddress2), str(o.shippingAddress3)].filter(Boolean).join(' ') } : {}),
      ...(str(o.shippingCity) ? { city: str(o.shippingCity) } : {}),
      ...(str(o.shippingZip) ? { postal_code: str(o.shippingZip) } : {}),
      ...(str(o.shippingState) ? { state: str(o.shippingState) } : {}),
      country,
    },
  };
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{2,}$/;
const UPDATABLE = new Set(['requires_payment_method', 'requires_confirmation', 'requires_action']);

export type StripeConnector = Connector & { readonly configurationKeys: readonly string[]; readonly maxDeclinedAttempts: number };

export function createStripeConnector(env: StripeConnectorEnv): StripeConnector {
  const clients = new StripeClients(env.apiBase);
  const sdk = (settings: TenantSettings): Stripe => clients.of(secretKeyOf(settings));
  const pk = (settings: TenantSettings): string => str(settings.publishableKey);

  const retrievePi = (settings: TenantSettings, id: string, signal: AbortSignal, expand: string[] = ['latest_charge']): Promise<PspResult<Stripe.PaymentIntent>> =>
    run(signal, () => sdk(settings).paymentIntents.retrieve(id, { expand }));

  /** Lists a PaymentIntent's refunds and finds ours by `metadata.refundId` (lookup before re-creating, 1.3 / 3.9). */
  async function findRefund(settings: TenantSettings, pi: string, refundId: string, signal: AbortSignal): Promise<PspResult<Stripe.Refund | null>> {
    const r = await run(signal, () => sdk(settings).refunds.list({ payment_intent: pi, limit: 100 }));
    if (!r.ok) return r;
    return ok(r.value.data.find((x) => x.metadata?.refundId === refundId) ?? null);
  }

  const refundOutcome = (r: Stripe.Refund): RefundOutcome => ({ pspRefundId: r.id, status: refundStatus(r.status) });

  /** Registers (or updates) one webhook endpoint found by our metadata; returns its id and, when created, its secret. */
  async function ensureEndpoint(
    settings: TenantSettings,
    spec: { url: string; events: readonly string[]; connect: boolean; tenant: string; knownSecret: boolean },
    signal: AbortSignal,
  ): Promise<PspResult<{ id: string; secret?: string }>> {
    const client = sdk(settings);
    const list = await run(signal, () => client.webhookEndpoints.list({ limit: 100 }));
    if (!list.ok) return list;
    const mine = list.value.data.filter((e) => e.metadata?.openAcpTenant === spec.tenant && (e.metadata?.connect === 'true') === spec.connect);
    const current = mine[0];
    if (current && spec.knownSecret) {
      const u = await run(signal, () => client.webhookEndpoints.update(current.id, { url: spec.url, enabled_events: [...spec.events] as Stripe.WebhookEndpointUpdateParams.EnabledEvent[], disabled: false }));
      return u.ok ? ok({ id: u.value.id }) : u;
    }
    // Ours but its secret is unknown to us (Stripe returns it only on creation): replace it.
    for (const e of mine) await run(signal, () => client.webhookEndpoints.del(e.id));
    const created = await run(signal, () =>
      client.webhookEndpoints.create({
        url: spec.url,
        enabled_events: [...spec.events] as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
        api_version: STRIPE_API_VERSION as Stripe.WebhookEndpointCreateParams.ApiVersion,
        ...(spec.connect ? { connect: true } : {}),
        metadata: metadata({ openAcpTenant: spec.tenant, appIdentifier: env.appIdentifier(), ...(spec.connect ? { connect: 'true' } : {}) }),
      }),
    );
    if (!created.ok) return created;
    return ok({ id: created.value.id, ...(created.value.secret ? { secret: created.value.secret } : {}) });
  }

  const connector: StripeConnector = {
    id: 'stripe',
    providerName: 'Stripe',
    capabilities: STRIPE_CAPABILITIES,
    extraSecretFields: [],
    settings: stripeSettings,
    configurationKeys: CONFIGURATION_KEYS,
    get maxDeclinedAttempts() {
      return env.maxDeclinedAttempts();
    },

    // ---- configuration (1.1) ----
    validateFormats: validateStripeFormats,

    async checkCredentials(values, signal): Promise<CredentialCheck> {
      const client = sdk(values);
      const r = await attempt(signal, () => client.paymentIntents.list({ limit: 1 }));
      if (!r.ok) {
        const e = r.error;
        if (isStripeError(e) && e.statusCode === 401) return { ok: false, kind: 'refused', field: 'secretKey', message: STRIPE_MESSAGE_KEYS.keyRefused };
        if (isStripeError(e) && e.statusCode === 403) return { ok: false, kind: 'refused', field: 'secretKey', message: STRIPE_MESSAGE_KEYS.keyLacksPermission };
        return { ok: false, kind: 'unreachable' };
      }
      if (isMarketplace(values)) {
        const a = await attempt(signal, () => client.accounts.list({ limit: 1 }));
        if (!a.ok) {
          const e = a.error;
          if (isStripeError(e) && e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500 && e.statusCode !== 429) {
            return { ok: false, kind: 'refused', field: 'businessModel', message: STRIPE_MESSAGE_KEYS.connectNotEnabled };
          }
          return { ok: false, kind: 'unreachable' };
        }
      }
      return { ok: true };
    },

    async afterConfigured(values, ctx, signal) {
      const base = `${ctx.appBaseUrl.replace(/\/+$/, '')}${isLiveSettings(values) ? '/webhooks' : '/webhooks/test'}?endpoint=${encodeURIComponent(ctx.tenantIdentifier)}`;
      const client = sdk(values);
      const patch: TenantSettings = {};
      const typedSecret = typeof values.webhookSecret === 'string' && values.webhookSecret !== '';
      // A typed secret with no endpoint of ours at Stripe: the tenant registered the endpoint in the Dashboard (skip).
      const list = await run(signal, () => client.webhookEndpoints.list({ limit: 100 }));
      if (!list.ok) throw new Error(`Stripe webhook endpoints could not be listed: ${list.failure.kind}`);
      const ours = (connect: boolean): boolean => list.value.data.some((e) => e.metadata?.openAcpTenant === ctx.tenantIdentifier && (e.metadata?.connect === 'true') === connect);
      if (!typedSecret || ours(false)) {
        const events = isMarketplace(values) ? [...ACCOUNT_EVENTS, ...TRANSFER_EVENTS] : [...ACCOUNT_EVENTS];
        const r = await ensureEndpoint(values, { url: base, events, connect: false, tenant: ctx.tenantIdentifier, knownSecret: typedSecret }, signal);
        if (!r.ok) throw new Error(`Stripe webhook endpoint registration failed: ${r.failure.kind}`);
        patch.webhookEndpointId = r.value.id;
        if (r.value.secret) patch.webhookSecret = r.value.secret;
      }
      if (isMarketplace(values)) {
        const typedConnect = typeof values.connectWebhookSecret === 'string' && values.connectWebhookSecret !== '';
        if (!typedConnect || ours(true)) {
          const r = await ensureEndpoint(values, { url: `${base}&connect=1`, events: CONNECT_EVENTS, connect: true, tenant: ctx.tenantIdentifier, knownSecret: typedConnect }, signal);
          if (!r.ok) throw new Error(`Stripe Connect webhook endpoint registration failed: ${r.failure.kind}`);
          patch.connectWebhookEndpointId = r.value.id;
          if (r.value.secret) patch.connectWebhookSecret = r.value.secret;
        }
      }
      return { settingsPatch: patch };
    },

    async beforeDisconnect(values, ctx, signal) {
      const client = sdk(values);
      const list = await run(signal, () => client.webhookEndpoints.list({ limit: 100 }));
      if (!list.ok) throw new Error(`Stripe webhook endpoints could not be listed: ${list.failure.kind}`);
      for (const e of list.value.data) {
        if (e.metadata?.openAcpTenant !== ctx.tenantIdentifier) continue;
        const d = await run(signal, () => client.webhookEndpoints.del(e.id));
        if (!d.ok) env.log.warn({ tenantIdentifier: ctx.tenantIdentifier, endpointId: e.id, failure: d.failure.kind }, 'stripe: could not delete a webhook endpoint');
      }
    },

    paymentMethods: (values) => stripePaymentMethods(values, env.jsUrl()),

    // ---- payments (1.2) ----
    async createPayment(settings, req, opts) {
      const amount = toStripeAmount(req.amount, req.currency);
      if (amount === null) return fail(invalidAmount(req.currency));
      const preOrder = !req.orderReference;
      const idempotencyKey = preOrder ? keys.preOrderPayment(req.paymentId ?? opts.idempotencyKey) : keys.hostedPayment(req.tenantIdentifier, req.orderReference!);
      const shipping = shippingOf(req.orderData);
      const email = str((req.orderData as Obj | undefined)?.customerEmail);
      const suffix = str(settings.statementDescriptorSuffix);
      const multicapture = settings.multicapture === true && !isMarketplace(settings);
      const params: Stripe.PaymentIntentCreateParams = {
        amount,
        currency: stripeCurrency(req.currency),
        capture_method: req.captureMode,
        automatic_payment_methods: { enabled: true },
        metadata: metadata({ ...req.metadata, tenantIdentifier: req.tenantIdentifier, paymentId: req.paymentId, orderReference: req.orderReference, ...(preOrder ? { preOrder: 'true' } : {}) }),
        ...(req.orderReference ? { description: `Order ${req.orderReference}`.slice(0, 1000) } : {}),
        ...(suffix ? { statement_descriptor_suffix: suffix } : {}),
        ...(multicapture ? { payment_method_options: { card: { request_multicapture: 'if_available' } } } : {}),
        ...(shipping ? { shipping } : {}),
        ...(EMAIL.test(email) ? { receipt_email: email } : {}),
      };
      const r = await run(opts.signal, () => sdk(settings).paymentIntents.create(params, { idempotencyKey }));
      return r.ok ? ok(toPspPayment(r.value, pk(settings))) : r;
    },

    async getPayment(settings, transactionId, signal) {
      const r = await retrievePi(settings, transactionId, signal);
      return r.ok ? ok(toPspPayment(r.value, pk(settings))) : r;
    },

    async updatePaymentAmount(settings, transactionId, amount, opts) {
      const current = await retrievePi(settings, transactionId, opts.signal);
      if (!current.ok) return current;
      const pi = current.value;
      const stripeAmount = toStripeAmount(amount, pi.currency);
      if (stripeAmount === null) return fail(invalidAmount(pi.currency));
      if (pi.amount === stripeAmount) return ok(toPspPayment(pi, pk(settings)));
      // [unconfirmed] Stripe accepts amount updates while requires_payment_method / requires_confirmation /
      // requires_action; any other status is answered as a conflict here, and Stripe's own refusal maps the same way.
      if (!UPDATABLE.has(pi.status)) return fail({ kind: 'conflict', code: 'payment_intent_unexpected_state', message: `PaymentIntent is ${pi.status}` });
      const idempotencyKey = keys.amountUpdate(opts.paymentId ?? str(pi.metadata?.paymentId) ?? transactionId, opts.idempotencyKey);
      const r = await run(opts.signal, () => sdk(settings).paymentIntents.update(transactionId, { amount: stripeAmount, expand: ['latest_charge'] }, { idempotencyKey }));
      return r.ok ? ok(toPspPayment(r.value, pk(settings))) : r;
    },

    async confirmPayment(settings, transactionId, req, opts) {
      const token = str(req.clientData.confirmationTokenId) || str(req.clientData.confirmationToken) || str(req.clientData.confirmation_token);
      const current = await retrievePi(settings, transactionId, opts.signal);
      if (!current.ok) return current;
      let pi = current.value;
      // Card / Payment Element flow: the browser confirmed; this is a status query.
      if (!token.startsWith('ctoken_') || !(pi.status === 'requires_payment_method' || pi.status === 'requires_confirmation')) return ok(toPspPayment(pi, pk(settings)));
      const paymentId = str(pi.metadata?.paymentId) || opts.idempotencyKey;
      const amount = toStripeAmount(req.amount, pi.currency);
      if (amount === null) return fail(invalidAmount(pi.currency));
      if (amount !== pi.amount) {
        const u = await run(opts.signal, () => sdk(settings).paymentIntents.update(transactionId, { amount }, { idempotencyKey: keys.amountUpdate(paymentId, `confirm_${amount}`) }));
        if (!u.ok) return u;
      }
      const c = await run(opts.signal, () =>
        sdk(settings).paymentIntents.confirm(transactionId, { confirmation_token: token, return_url: req.returnUrl, expand: ['latest_charge'] }, { idempotencyKey: keys.confirm(opts.idempotencyKey) }),
      );
      if (!c.ok) return c;
      pi = c.value;
      // An express confirmation declined server-side is final for this checkout (1.5 step 4).
      if (pi.status === 'requires_payment_method' && pi.last_payment_error) {
        const e = pi.last_payment_error;
        return fail({ kind: 'declined', code: String(e.decline_code ?? e.code ?? 'card_declined'), message: String(e.message ?? 'declined').slice(0, 500) });
      }
      return ok(toPspPayment(pi, pk(settings)));
    },

    async capture(settings, transactionId, amount, opts): Promise<PspResult<CaptureOutcome>> {
      const current = await retrievePi(settings, transactionId, opts.signal);
      if (!current.ok) return current;
      const before = current.value;
      const stripeAmount = toStripeAmount(amount, before.currency);
      if (stripeAmount === null) return fail(invalidAmount(before.currency));
      const multi = multicaptureAvailable(before);
      const final = !multi || opts.final !== false;
      const captureId = opts.captureId ?? opts.idempotencyKey;
      const outcome = (pi: Stripe.PaymentIntent): CaptureOutcome => ({
        status: 'succeeded',
        amountCaptured: fromStripeAmount(pi.amount_received, pi.currency),
        ...(latestChargeId(pi) ? { pspReference: latestChargeId(pi)! } : {}),
        finalCapture: pi.status !== 'requires_capture' || final,
      });
      const r = await attempt(opts.signal, () =>
        sdk(settings).paymentIntents.capture(
          transactionId,
          {
            amount_to_capture: stripeAmount,
            ...(multi ? { final_capture: final } : {}),
            metadata: metadata({ ...before.metadata, ...piMeta(before), captureId }),
            expand: ['latest_charge'],
          },
          { idempotencyKey: keys.capture(opts.idempotencyKey) },
        ),
      );
      if (r.ok) return ok(outcome(r.value));
      const failure = failureOf(r.error, opts.signal);
      // Read back (stripe.md 8): a replayed 5xx, or a key Stripe forgot after 24 h that meets the capture already made.
      if (failure.kind === 'conflict' || (failure.kind === 'error' && isStripeError(r.error) && isReplayed(r.error))) {
        const after = await retrievePi(settings, transactionId, opts.signal);
        // Ours only when the PaymentIntent carries this capture's id (the capture call writes it into the metadata).
        const captured = after.ok && (after.value.status === 'succeeded' || after.value.amount_received > 0);
        if (after.ok && captured && after.value.metadata?.captureId === captureId) return ok(outcome(after.value));
      }
      return fail(failure);
    },

    async cancel(settings, transactionId, opts): Promise<PspResult<CancelOutcome>> {
      const reason = opts.reason ?? 'requested_by_customer';
      const idempotencyKey = reason === 'abandoned' ? keys.preOrderCancel(opts.idempotencyKey) : keys.cancel(opts.idempotencyKey);
      const done = (pi: Stripe.PaymentIntent): CancelOutcome => ({ status: 'canceled', amountCaptured: fromStripeAmount(pi.amount_received, pi.currency) });
      const r = await attempt(opts.signal, () => sdk(settings).paymentIntents.cancel(transactionId, { cancellation_reason: reason }, { idempotencyKey }));
      if (r.ok) {
        // [unconfirmed] cancelling a partially captured multicapture PI may end `canceled` or `succeeded`: both mean
        // the remainder was released.
        if (r.value.status === 'canceled' || (r.value.status === 'succeeded' && r.value.amount_received > 0)) return ok(done(r.value));
        return fail({ kind: 'error', message: `Stripe answered the cancel with status ${r.value.status}` });
      }
      const failure = failureOf(r.error, opts.signal);
      if (failure.kind === 'conflict' || (failure.kind === 'error' && isStripeError(r.error) && isReplayed(r.error))) {
        const after = await retrievePi(settings, transactionId, opts.signal);
        if (after.ok && after.value.status === 'canceled') return ok(done(after.value)); // already canceled = success
      }
      return fail(failure);
    },

    async refund(settings, transactionId, amount, opts): Promise<PspResult<RefundOutcome>> {
      const refundId = opts.refundId ?? opts.idempotencyKey;
      const current = await retrievePi(settings, transactionId, opts.signal, []);
      if (!current.ok) return current;
      const pi = current.value;
      const stripeAmount = toStripeAmount(amount, pi.currency);
      if (stripeAmount === null) return fail(invalidAmount(pi.currency));
      // Look up before creating (3.9): a refund whose key Stripe forgot must not be made twice.
      const found = await findRefund(settings, transactionId, refundId, opts.signal);
      if (found.ok && found.value) return ok(refundOutcome(found.value));
      const r = await run(opts.signal, () =>
        sdk(settings).refunds.create(
          {
            payment_intent: transactionId,
            amount: stripeAmount,
            reason: 'requested_by_customer',
            metadata: metadata({ ...piMeta(pi), orderReference: opts.orderReference ?? str(pi.metadata?.orderReference), refundId }),
          },
          { idempotencyKey: keys.refund(opts.idempotencyKey) },
        ),
      );
      return r.ok ? ok(refundOutcome(r.value)) : r;
    },

    async getRefund(settings, transactionId, ref, signal) {
      if (ref.pspRefundId) {
        const r = await attempt(signal, () => sdk(settings).refunds.retrieve(ref.pspRefundId!));
        if (r.ok) return ok(refundOutcome(r.value));
        if (!(isStripeError(r.error) && r.error.statusCode === 404)) return fail(failureOf(r.error, signal));
      }
      const found = await findRefund(settings, transactionId, ref.refundId, signal);
      if (!found.ok) return found;
      return ok(found.value ? refundOutcome(found.value) : null);
    },

    // ---- webhooks (1.8–1.10) and the hosted page (2) ----
    parseWebhook: parseStripeWebhook,
    verifyWebhook: verifyStripeWebhook,
    webhookOutcome: stripeWebhookOutcome,
    webhookAck: () => ({ status: 200, contentType: 'application/json; charset=utf-8', body: '{"received":true}' }),
    returnTransactionId: (query) => {
      const v = query.payment_intent;
      return typeof v === 'string' && /^pi_[A-Za-z0-9_]{1,200}$/.test(v) ? v : null;
    },
    checkout: (settings, payment, ctx) => renderStripeCheckout(settings, payment, ctx, { jsUrl: env.jsUrl(), apiBase: env.apiBase() }),
    declineMessageKey: stripeDeclineMessageKey,

    // ---- customer lookup (1.5) ----
    customer: {
      async getPayer(settings, transactionId, clientData, signal) {
        const token = str(clientData.confirmationTokenId) || str(clientData.confirmationToken) || str(clientData.confirmation_token);
        if (token.startsWith('ctoken_')) {
          const t = await run(signal, () => sdk(settings).confirmationTokens.retrieve(token));
          if (!t.ok) return t;
          const ct = t.value as Obj;
          return ok(toPayer(ct.shipping, ct.payment_method_preview?.billing_details));
        }
        const r = await retrievePi(settings, transactionId, signal, ['payment_method']);
        if (!r.ok) return r;
        const pi = r.value as Obj;
        const billing = pi.payment_method && typeof pi.payment_method === 'object' ? pi.payment_method.billing_details : null;
        return ok(toPayer(pi.shipping, billing));
      },
    },

    // ---- marketplace (1.6) ----
    transfers: {
      async createTransfer(settings, req, opts) {
        if (!isMarketplace(settings)) return fail({ kind: 'declined', code: 'transfers_unsupported', message: 'This Stripe configuration is not a marketplace.' });
        const amount = toStripeAmount(req.amount, req.currency);
        if (amount === null) return fail(invalidAmount(req.currency));
        const payoutId = req.payoutId ?? opts.idempotencyKey;
        const client = sdk(settings);
        if (req.transferGroup) {
          // Look up before creating (3.9).
          const l = await run(opts.signal, () => client.transfers.list({ transfer_group: req.transferGroup!, limit: 100 }));
          const hit = l.ok ? l.value.data.find((t) => t.metadata?.payoutId === payoutId) : undefined;
          if (hit) return ok({ pspTransferId: hit.id });
        }
        let sourceCharge: string | null = null;
        if (req.sourceTransactionId) {
          const pi = await retrievePi(settings, req.sourceTransactionId, opts.signal, []);
          if (!pi.ok) return pi;
          sourceCharge = latestChargeId(pi.value);
        }
        const r = await run(opts.signal, () =>
          client.transfers.create(
            {
              amount,
              currency: stripeCurrency(req.currency),
              destination: req.destinationAccountId,
              ...(req.transferGroup ? { transfer_group: req.transferGroup } : {}),
              ...(sourceCharge ? { source_transaction: sourceCharge } : {}),
              metadata: metadata({ payoutId, tenantIdentifier: req.tenantIdentifier, orderReference: req.transferGroup, merchantReference: req.merchantReference, transactionId: req.sourceTransactionId }),
            },
            { idempotencyKey: keys.transfer(opts.idempotencyKey) },
          ),
        );
        return r.ok ? ok({ pspTransferId: r.value.id }) : r;
      },
      async reverseTransfer(settings, pspTransferId, amount, opts) {
        const reversalId = opts.reversalId ?? opts.idempotencyKey;
        const client = sdk(settings);
        const t = await run(opts.signal, () => client.transfers.retrieve(pspTransferId));
        if (!t.ok) return t;
        const stripeAmount = toStripeAmount(amount, t.value.currency);
        if (stripeAmount === null) return fail(invalidAmount(t.value.currency));
        // Look up before creating (3.9); the embedded list may be truncated, so list the reversals.
        const l = await run(opts.signal, () => client.transfers.listReversals(pspTransferId, { limit: 100 }));
        const hit = l.ok ? l.value.data.find((x) => x.metadata?.reversalId === reversalId) : undefined;
        if (hit) return ok({ pspReversalId: hit.id });
        const r = await run(opts.signal, () =>
          client.transfers.createReversal(
            pspTransferId,
            { amount: stripeAmount, metadata: metadata({ reversalId, tenantIdentifier: opts.tenantIdentifier ?? str(t.value.metadata?.tenantIdentifier), orderReference: str(t.value.metadata?.orderReference) }) },
            { idempotencyKey: keys.reversal(opts.idempotencyKey) },
          ),
        );
        return r.ok ? ok({ pspReversalId: r.value.id }) : r;
      },
    },

    // ---- merchant onboarding (1.7) ----
    onboarding: {
      async createAccount(settings, req, opts) {
        const country = str(settings.onboardingCountry);
        const r = await run(opts.signal, () =>
          sdk(settings).accounts.create(
            {
              controller: { stripe_dashboard: { type: 'express' }, fees: { payer: 'application' }, losses: { payments: 'application' }, requirement_collection: 'stripe' },
              ...(country ? { country } : {}),
              ...(req.name ? { business_profile: { name: req.name.slice(0, 200) } } : {}),
              capabilities: { transfers: { requested: true } },
              metadata: metadata({ tenantIdentifier: req.tenantIdentifier, merchantReference: req.merchantReference }),
            },
            { idempotencyKey: keys.account(req.tenantIdentifier, req.merchantReference) },
          ),
        );
        return r.ok ? ok({ accountId: r.value.id, status: merchantStatusOf(r.value) }) : r;
      },
      async onboardingLink(settings, accountId, urls, signal) {
        const r = await run(signal, () =>
          sdk(settings).accountLinks.create({ account: accountId, type: 'account_onboarding', return_url: urls.successUrl, refresh_url: urls.refreshUrl, collection_options: { fields: 'eventually_due' } }),
        );
        return r.ok ? ok({ url: r.value.url }) : r;
      },
    },
  };
  return connector;
}

/**
 * The sandbox connector: talks to the sandbox PSP only over its HTTP API and its webhooks (sandbox-psp.md),
 * as a Stripe connector talks to Stripe. A sandbox mounted in this process gets the same requests dispatched in memory.
 */
import type { Logger } from 'pino';
import type { CheckoutContext, Connector, ConnectorCapabilities, CredentialCheck, InProcessHttp, PaymentMethodDefinition, PspResult, RefundOutcome, TenantSettings } from '../types.js';
import { call, callRaw, failureOf, type SandboxEndpoint } from './client.js';
import { renderPaymentForm, type InPageDeclines } from './form.js';
import { toPayer, toPspPayment } from './mapping.js';
import { mapAccountStatus, parseWebhook, verifyWebhook, webhookOutcome } from './webhooks.js';

/** What the sandbox connector needs: where the sandbox PSP's API is, and where browsers reach it. */
export interface SandboxConnectorEnv {
  pspBaseUrl: () => string;
  /**
   * Set when the sandbox PSP is mounted in this process at `path`: this process's routes dispatched in memory
   * (`dispatch()` is undefined until the server is up). Its requests then go there without a socket: about a sixth
   * less CPU of the app per initialize-payment (README "Benchmark").
   */
  inProcess?: { dispatch: () => InProcessHttp | undefined; path: string };
  publicBaseUrl: () => string;
  log: Logger;
}

/** Secret configuration fields (beyond the form's password widgets): redacted from logs. */
export const SANDBOX_SECRET_FIELDS = ['secretKey', 'webhookSecret', 'clientSecret', 'card'] as const;

/** Decline codes the sandbox reports that the app's message catalog knows. */
const KNOWN_DECLINES = new Set(['card_declined', 'insufficient_funds', 'card_blocked', 'authentication_failed', 'expired_card', 'invalid_expiry', 'invalid_cvc', 'invalid_number']);

/** A sandbox decline code → the app's message key (an unknown code reads as a declined card). */
const declineMessageKey = (code: string): string => (KNOWN_DECLINES.has(code) ? code : 'card_declined');

/** What the form's script shows for each decline code the sandbox answers (`*`: any other code), when the page offers it. */
function inPageDeclines(ctx: CheckoutContext): InPageDeclines | undefined {
  const d = ctx.inPageDeclines;
  if (!d) return undefined;
  return { messageId: d.messageId, byCode: Object.fromEntries([...KNOWN_DECLINES, '*'].map((code) => [code, d.notice(declineMessageKey(code))])) };
}

export const SANDBOX_CAPABILITIES: ConnectorCapabilities = {
  preOrder: true,
  customer: 'server',
  transfers: { model: 'connected-accounts', needsSourcePayment: false, reversal: 'native' },
  onboarding: { strategy: 'redirect', linkExpires: false },
  captures: 'multiple',
  captureResult: 'sync',
  cancelResult: 'sync',
  refundResult: 'async',
  releaseRemainder: 'cancel',
  amountUpdate: 'before-authorization',
  amountUpdateMayChangeId: false,
  finalDeclines: true,
  automaticCapture: { supported: true, mayFail: true },
  confirmation: 'none',
  paymentIdentity: 'psp-id-at-creation',
  paymentPage: { requiresJavaScript: false, iframeable: true },
  webhooks: { eventsPerRequest: 'one', signature: 'timestamped', secretsPerTenant: 1, endpointTenantInUrl: false },
  dashboardOperations: [],
  idempotency: { maxKeyLength: 255, retentionHours: null },
};

export const SECRET_KEY_FORMAT = /^sk_sandbox_[A-Za-z0-9]{8,}$/;
export const WEBHOOK_SECRET_FORMAT = /^whsec_[A-Za-z0-9]{16,}$/;

/** Message keys this connector returns (rendered by the app's message catalog). */
export const SANDBOX_MESSAGE_KEYS = {
  invalidSecretKeyFormat: 'invalid_secret_key_format',
  invalidWebhookSecretFormat: 'invalid_webhook_secret_format',
  credentialsRefused: 'credentials_refused',
} as const;

const METHODS = ['credit-card', 'sandbox-express'] as const;

const secretKeyOf = (s: TenantSettings): string => (typeof s.secretKey === 'string' ? s.secretKey : '');
const isLiveOf = (s: TenantSettings): boolean => s.isLive === true;

function toRefundOutcome(b: { id?: unknown; status?: unknown }): RefundOutcome {
  if (typeof b.id !== 'string') throw new Error('refund without id');
  const status = b.status === 'succeeded' || b.status === 'failed' ? b.status : 'pending';
  return { pspRefundId: b.id, status };
}

export function createSandboxConnector(env: SandboxConnectorEnv): Connector {
  const api = (): SandboxEndpoint => {
    const dispatch = env.inProcess?.dispatch();
    return dispatch ? { url: env.pspBaseUrl(), local: { dispatch, path: env.inProcess!.path } } : { url: env.pspBaseUrl() };
  };

  return {
    id: 'sandbox',
    providerName: 'Sandbox',
    capabilities: SANDBOX_CAPABILITIES,
    extraSecretFields: [],
    settings: {
      captureMode: (s) => (s.captureMode === 'automatic' ? 'automatic' : 'manual'),
      isLive: isLiveOf,
      webhookSecretFields: ['webhookSecret'],
      marketplace: () => true,
    },

    // ---- configuration ----
    validateFormats(values) {
      const errors: Record<string, string> = {};
      if (values.secretKey !== undefined && values.secretKey !== null && (typeof values.secretKey !== 'string' || !SECRET_KEY_FORMAT.test(values.secretKey))) {
        errors.secretKey = SANDBOX_MESSAGE_KEYS.invalidSecretKeyFormat;
      }
      if (values.webhookSecret !== undefined && values.webhookSecret !== null && (typeof values.webhookSecret !== 'string' || !WEBHOOK_SECRET_FORMAT.test(values.webhookSecret))) {
        errors.webhookSecret = SANDBOX_MESSAGE_KEYS.invalidWebhookSecretFormat;
      }
      return errors;
    },

    async checkCredentials(values, signal): Promise<CredentialCheck> {
      const a = await callRaw(api(), secretKeyOf(values), '/v1/account', { signal });
      if (a.ok) return { ok: true };
      if (a.status === 401) return { ok: false, kind: 'refused', field: 'secretKey', message: SANDBOX_MESSAGE_KEYS.credentialsRefused };
      return { ok: false, kind: 'unreachable' };
    },

    async afterConfigured(values, ctx, signal) {
      const live = isLiveOf(values);
      const url = `${ctx.appBaseUrl.replace(/\/+$/, '')}${live ? '/webhooks' : '/webhooks/test'}`;
      const r = await call(api(), secretKeyOf(values), '/v1/webhook-endpoints', { body: { url, secret: values.webhookSecret, livemode: live }, signal }, (b) => b);
      if (!r.ok) {
        env.log.warn({ tenantIdentifier: ctx.tenantIdentifier, failure: r.failure }, 'sandbox: could not register the webhook endpoint');
        throw new Error(`sandbox webhook endpoint registration failed: ${r.failure.kind}`);
      }
    },

    paymentMethods(values): PaymentMethodDefinition[] {
      const chosen = Array.isArray(values.paymentMethods) && values.paymentMethods.length > 0 ? values.paymentMethods : ['credit-card'];
      return METHODS.filter((m) => chosen.includes(m)).map((m) =>
        m === 'credit-card'
          ? { name: 'Credit Card', strategy: 'hosted-payment-page' }
          : {
              name: 'Sandbox Express',
              strategy: 'express-checkout',
              scripts: [{ url: `${env.publicBaseUrl()}/express.js`, queryParams: { currency: 'currencyName', locale: 'localeName' } }],
              paymentServiceProviderData: { isLive: isLiveOf(values) },
            },
      );
    },

    // ---- payments ----
    createPayment(settings, req, opts) {
      return call(
        api(),
        secretKeyOf(settings),
        '/v1/payments',
        {
          body: {
            amount: req.amount,
            currency: req.currency,
            ...(req.orderReference ? { reference: req.orderReference } : {}),
            captureMethod: req.captureMode,
            returnUrl: req.returnUrl,
            metadata: { ...req.metadata, tenantIdentifier: req.tenantIdentifier },
          },
          idempotencyKey: opts.idempotencyKey,
          signal: opts.signal,
        },
        toPspPayment,
      );
    },

    getPayment(settings, transactionId, signal) {
      return call(api(), secretKeyOf(settings), `/v1/payments/${encodeURIComponent(transactionId)}`, { signal }, toPspPayment);
    },

    updatePaymentAmount(settings, transactionId, amount, opts) {
      return call(api(), secretKeyOf(settings), `/v1/payments/${encodeURIComponent(transactionId)}/update`, { body: { amount }, idempotencyKey: opts.idempotencyKey, signal: opts.signal }, toPspPayment);
    },

    capture(settings, transactionId, amount, opts) {
      return call(api(), secretKeyOf(settings), `/v1/payments/${encodeURIComponent(transactionId)}/capture`, { body: { amount }, idempotencyKey: opts.idempotencyKey, signal: opts.signal }, (b) => ({
        status: 'succeeded' as const,
        ...(b.capture?.id ? { pspReference: String(b.capture.id), pspCaptureId: String(b.capture.id) } : {}),
        ...(typeof b.amountCaptured === 'number' ? { amountCaptured: b.amountCaptured } : {}),
      }));
    },

    cancel(settings, transactionId, opts) {
      return call(api(), secretKeyOf(settings), `/v1/payments/${encodeURIComponent(transactionId)}/cancel`, { body: {}, idempotencyKey: opts.idempotencyKey, signal: opts.signal }, (b) => ({
        status: 'canceled' as const,
        ...(typeof b.amountCaptured === 'number' ? { amountCaptured: b.amountCaptured } : {}),
      }));
    },

    refund(settings, transactionId, amount, opts) {
      return call(api(), secretKeyOf(settings), '/v1/refunds', { body: { payment: transactionId, amount }, idempotencyKey: opts.idempotencyKey, signal: opts.signal }, toRefundOutcome);
    },

    // Reconciliation of a pending refund whose webhook was lost. Without the sandbox's refund id (the answer to the
    // create was lost) there is nothing to look up: the create is repeated with the same idempotency key instead.
    async getRefund(settings, _transactionId, ref, signal) {
      if (!ref.pspRefundId) return { ok: true, value: null };
      return call(api(), secretKeyOf(settings), `/v1/refunds/${encodeURIComponent(ref.pspRefundId)}`, { signal }, toRefundOutcome);
    },

    // ---- webhooks and the hosted page ----
    parseWebhook: (req) => {
      const event = parseWebhook(req.rawBody);
      return event ? { events: [event] } : null;
    },
    verifyWebhook: (req, secrets, now) => verifyWebhook(req.rawBody, req.headers, secrets, now),
    webhookOutcome: (payload) => webhookOutcome(payload),
    webhookAck: () => ({ status: 200, contentType: 'application/json; charset=utf-8', body: '{"isSuccessful":true}' }),
    returnTransactionId: (query) => (typeof query.transactionId === 'string' && query.transactionId.trim() !== '' ? query.transactionId.trim() : null),
    checkout: (_settings, payment, ctx) => renderPaymentForm(payment, env.publicBaseUrl(), ctx, inPageDeclines(ctx)),
    declineMessageKey,

    // ---- optional capabilities ----
    customer: {
      async getPayer(settings, transactionId, _clientData, signal) {
        const a = await callRaw(api(), secretKeyOf(settings), `/v1/customers/from-payment/${encodeURIComponent(transactionId)}`, { signal });
        if (a.ok) return { ok: true, value: toPayer(a.body) };
        if (a.status === 404 && 'error' in a && a.error.code === 'customer_not_found') return { ok: true, value: null };
        return { ok: false, failure: failureOf(a) };
      },
    },

    transfers: {
      createTransfer(settings, req, opts) {
        return call(
          api(),
          secretKeyOf(settings),
          '/v1/transfers',
          {
            body: { amount: req.amount, currency: req.currency, destination: req.destinationAccountId, ...(req.transferGroup ? { transferGroup: req.transferGroup } : {}) },
            idempotencyKey: opts.idempotencyKey,
            signal: opts.signal,
          },
          (b) => {
            if (typeof b.id !== 'string') throw new Error('transfer without id');
            return { pspTransferId: b.id };
          },
        );
      },
      reverseTransfer(settings, pspTransferId, amount, opts) {
        return call(api(), secretKeyOf(settings), `/v1/transfers/${encodeURIComponent(pspTransferId)}/reversals`, { body: { amount }, idempotencyKey: opts.idempotencyKey, signal: opts.signal }, (b) => {
          if (typeof b.id !== 'string') throw new Error('reversal without id');
          return { pspReversalId: b.id };
        });
      },
    },

    onboarding: {
      createAccount(settings, req, opts) {
        return call(
          api(),
          secretKeyOf(settings),
          '/v1/accounts',
          {
            body: { reference: req.merchantReference, ...(req.name ? { name: req.name } : {}), metadata: { tenantIdentifier: req.tenantIdentifier, merchantReference: req.merchantReference } },
            idempotencyKey: opts.idempotencyKey,
            signal: opts.signal,
          },
          (b) => {
            if (typeof b.id !== 'string') throw new Error('account without id');
            return { accountId: b.id, status: mapAccountStatus(b.status) };
          },
        );
      },
      async onboardingLink(settings, accountId, urls, signal): Promise<PspResult<{ url: string }>> {
        return call(api(), secretKeyOf(settings), `/v1/accounts/${encodeURIComponent(accountId)}`, { signal }, (b) => {
          if (typeof b.onboardingUrl !== 'string') throw new Error('account without onboardingUrl');
          const u = new URL(b.onboardingUrl);
          u.searchParams.set('returnUrl', urls.successUrl);
          return { url: u.toString() };
        });
      },
    },
  };
}

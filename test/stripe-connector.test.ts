/**
 * The Stripe connector at the port (connectors/stripe.md): capabilities, configuration rules, currency table, mapping,
 * webhook parsing/verification/outcomes with signatures computed by the SDK, the checkout view; and every operation
 * through the real SDK against the project's Stripe fake (test/fakes/stripe).
 */
import pino from 'pino';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../src/app/catalog.js';
import { loadConfig } from '../src/config.js';
import { allSecretFields, moduleById } from '../src/connectors/registry.js';
import { apiTarget, keys, redactSecrets, sha256Key, STRIPE_API_VERSION } from '../src/connectors/stripe/client.js';
import { createStripeConnector } from '../src/connectors/stripe/connector.js';
import { fromStripeAmount, toStripeAmount } from '../src/connectors/stripe/currency.js';
import { merchantStatusOf, paymentState, splitName, toPspPayment } from '../src/connectors/stripe/mapping.js';
import { CONFIGURATION_KEYS, STRIPE_CAPABILITIES, stripeDeclineMessageKey, validateStripeFormats } from '../src/connectors/stripe/settings.js';
import type { Connector, WebhookContext, WebhookRequest } from '../src/connectors/types.js';
import { isMessageKey } from '../src/i18n/messages.js';

const log = pino({ level: 'silent' });
const connectorFor = (apiBase = 'https://api.stripe.com', jsUrl = 'https://js.stripe.com/v3/'): Connector =>
  createStripeConnector({ apiBase: () => apiBase, jsUrl: () => jsUrl, appIdentifier: () => 'open-acp-pay-test', maxDeclinedAttempts: () => 3, log });

const SK = 'sk_test_abcdefghij1234';
const PK = 'pk_test_abcdefghij1234';
const WHSEC = 'whsec_0123456789abcdefXYZ';
const WHSEC_OLD = 'whsec_oldoldoldoldoldold0';
const WHSEC_CONNECT = 'whsec_connectconnect0123';

describe('Stripe connector: module, capabilities, configuration', () => {
  it('is registered, declares section 6 exactly and redacts its secret fields', () => {
    const m = moduleById('stripe');
    expect(m?.providerName).toBe('Stripe');
    for (const f of ['secretKey', 'webhookSecret', 'connectWebhookSecret', 'clientSecret']) expect(allSecretFields()).toContain(f);
    expect(STRIPE_CAPABILITIES).toMatchObject({
      preOrder: true,
      customer: 'server',
      transfers: { model: 'connected-accounts', needsSourcePayment: true, reversal: 'native' },
      onboarding: { strategy: 'redirect', linkExpires: true },
      captures: 'single-final',
      captureResult: 'sync',
      cancelResult: 'sync',
      refundResult: 'async',
      amountUpdate: 'before-authorization',
      amountUpdateMayChangeId: false,
      finalDeclines: false,
      automaticCapture: { supported: true, mayFail: false },
      confirmation: 'server-confirm',
      paymentIdentity: 'psp-id-at-creation',
      paymentPage: { requiresJavaScript: true, iframeable: true },
      webhooks: { eventsPerRequest: 'one', signature: 'timestamped', secretsPerTenant: 2, endpointTenantInUrl: true },
      dashboardOperations: ['capture', 'cancel', 'refund'],
      idempotency: { maxKeyLength: 255, retentionHours: 24 },
    });
    const c = m!.create({ config: loadConfig({ CONNECTOR: 'stripe', STRIPE_API_BASE: 'http://127.0.0.1:9' }), listenUrl: () => 'http://127.0.0.1:1', log });
    expect(c.id).toBe('stripe');
    expect(c.settings.webhookSecretFields).toEqual(['webhookSecret', 'connectWebhookSecret']);
  });

  it('ships a configuration form with every configuration key and both locales', () => {
    const cat = loadCatalog('stripe', { configurationKeys: CONFIGURATION_KEYS });
    const pw = cat.form.fields.filter((f) => f.password).map((f) => f.id);
    expect(pw.sort()).toEqual(['connectWebhookSecret', 'secretKey', 'webhookSecret']);
    expect(cat.form.fields.filter((f) => f.required).map((f) => f.id).sort()).toEqual(['publishableKey', 'secretKey']);
    expect(cat.manifests.en_US!.name).toBe('Open ACP Pay for Stripe');
    expect(cat.manifests.de_DE!.description).toContain('JavaScript');
    expect(loadCatalog('sandbox').manifests.en_US!.name).toBe('Open ACP Pay'); // the app's manifest for connectors without their own
  });

  it('validates key formats, key modes and the other fields; every key is in the message catalog', () => {
    expect(validateStripeFormats({ secretKey: SK, publishableKey: PK })).toEqual({});
    expect(validateStripeFormats({ secretKey: 'rk_live_abcdefghij12', publishableKey: 'pk_live_abcdefghij12' })).toEqual({});
    expect(validateStripeFormats({ secretKey: 'sk_sandbox_abcdefghij', publishableKey: PK })).toEqual({ secretKey: 'stripe_invalid_secret_key_format' });
    expect(validateStripeFormats({ secretKey: 'sk_test_short', publishableKey: PK }).secretKey).toBe('stripe_invalid_secret_key_format');
    expect(validateStripeFormats({ secretKey: SK, publishableKey: 'pk_live_abcdefghij12' })).toEqual({ publishableKey: 'stripe_key_mode_mismatch' });
    expect(validateStripeFormats({ secretKey: SK, publishableKey: 'xx' })).toEqual({ publishableKey: 'stripe_invalid_publishable_key_format' });
    const all = validateStripeFormats({
      secretKey: SK,
      publishableKey: PK,
      webhookSecret: 'whsec_x',
      connectWebhookSecret: 'nope',
      payButtonColor: 'red',
      businessModel: 'marketplace',
      statementDescriptorSuffix: 'x'.repeat(23),
      brandFavicon: 'http://insecure.example/x.ico',
    });
    expect(all).toEqual({
      webhookSecret: 'stripe_invalid_webhook_secret_format',
      connectWebhookSecret: 'stripe_invalid_webhook_secret_format',
      payButtonColor: 'stripe_invalid_pay_button_color',
      onboardingCountry: 'stripe_onboarding_country_required',
      statementDescriptorSuffix: 'stripe_invalid_statement_descriptor_suffix',
      brandFavicon: 'stripe_invalid_favicon_url',
    });
    expect(validateStripeFormats({ onboardingCountry: 'de' })).toEqual({ onboardingCountry: 'stripe_invalid_onboarding_country' });
    for (const key of [...Object.values(all), 'stripe_key_mode_mismatch', 'stripe_invalid_secret_key_format', 'stripe_invalid_publishable_key_format', 'stripe_invalid_onboarding_country', 'stripe_key_refused', 'stripe_key_lacks_permission', 'stripe_connect_not_enabled']) {
      expect(isMessageKey(key), key).toBe(true);
    }
  });

  it('announces the payment methods of the form with the publishable key and STRIPE_JS_URL', () => {
    const c = connectorFor('https://api.stripe.com', 'http://127.0.0.1:4000/v3/');
    expect(c.paymentMethods({ secretKey: SK, publishableKey: PK })).toEqual([{ name: 'Stripe', strategy: 'hosted-payment-page', paymentServiceProviderData: { publishableKey: PK, isLive: false } }]);
    const both = c.paymentMethods({ secretKey: 'sk_live_abcdefghij12', publishableKey: 'pk_live_abcdefghij12', paymentMethods: ['stripe', 'stripe-express'] });
    expect(both.map((m) => [m.name, m.strategy])).toEqual([
      ['Stripe', 'hosted-payment-page'],
      ['Stripe Express', 'express-checkout'],
    ]);
    expect(both[1]!.scripts).toEqual([{ url: 'http://127.0.0.1:4000/v3/', queryParams: {} }]);
    expect(both[1]!.paymentServiceProviderData).toEqual({ publishableKey: 'pk_live_abcdefghij12', isLive: true });
    expect(c.settings.isLive({ secretKey: 'rk_live_abcdefghij12' })).toBe(true);
    expect(c.settings.isLive({ secretKey: SK, isLive: true })).toBe(false); // derived from the key, not a field
    expect(c.settings.captureMode({})).toBe('manual');
    expect(c.settings.marketplace({ businessModel: 'marketplace' })).toBe(true);
  });
});

describe('Stripe connector: keys, amounts, mapping', () => {
  it('builds idempotency keys exactly per stripe.md 1.3 and 8', () => {
    const hex = sha256Key('shop-1', 'DE--1');
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(keys.hostedPayment('shop-1', 'DE--1')).toBe(`oacp_pi_${hex}`);
    expect(keys.preOrderPayment('p1')).toBe('oacp_pi_p1');
    expect(keys.confirm('p1')).toBe('oacp_pic_p1');
    expect(keys.capture('c1')).toBe('oacp_cap_c1');
    expect(keys.cancel('x')).toBe('oacp_cancel_x');
    expect(keys.preOrderCancel('x')).toBe('oacp_pi_cancel_x');
    expect(keys.refund('r')).toBe('oacp_ref_r');
    expect(keys.transfer('t')).toBe('oacp_tr_t');
    expect(keys.reversal('v')).toBe('oacp_trr_v');
    expect(keys.account('shop-1', 'M1')).toBe(`oacp_acct_${sha256Key('shop-1', 'M1')}`);
    expect(keys.amountUpdate('p', 'v').length).toBeLessThanOrEqual(255);
  });

  it('redacts keys, webhook secrets and client secrets from failure messages', () => {
    expect(redactSecrets('Invalid API Key provided: sk_test_abcdefghij1234 and rk_live_XYZ123, whsec_abc123, pi_1_secret_zz')).toBe(
      'Invalid API Key provided: sk_test_******** and rk_live_********, whsec_********, pi_1_secret_********',
    );
  });

  it('parses STRIPE_API_BASE into host, port and protocol', () => {
    expect(apiTarget('https://api.stripe.com')).toEqual({ host: 'api.stripe.com', port: 443, protocol: 'https' });
    expect(apiTarget('http://127.0.0.1:12111')).toEqual({ host: '127.0.0.1', port: 12111, protocol: 'http' });
    expect(STRIPE_API_VERSION).toBe('2026-10-28.endive');
  });

  it('converts currencies per the table of 3.8', () => {
    expect(toStripeAmount(1234, 'EUR')).toBe(1234);
    expect(toStripeAmount(500, 'JPY')).toBe(500);
    expect(toStripeAmount(5, 'ISK')).toBe(500);
    expect(toStripeAmount(7, 'ugx')).toBe(700);
    expect(fromStripeAmount(500, 'isk')).toBe(5);
    expect(toStripeAmount(1230, 'KWD')).toBe(1230);
    expect(toStripeAmount(1234, 'BHD')).toBeNull();
    expect(toStripeAmount(1234, 'HUF')).toBe(1234);
    expect(toStripeAmount(-1, 'EUR')).toBeNull();
  });

  it('maps PaymentIntent statuses per 1.4 (never failed, never capture_failed)', () => {
    expect(paymentState({ status: 'requires_payment_method' })).toBe('pending');
    expect(paymentState({ status: 'requires_confirmation' })).toBe('pending');
    expect(paymentState({ status: 'processing' })).toBe('pending');
    expect(paymentState({ status: 'requires_action' })).toBe('requires_action');
    expect(paymentState({ status: 'requires_capture' })).toBe('authorized');
    expect(paymentState({ status: 'succeeded' })).toBe('captured');
    expect(paymentState({ status: 'canceled', amount_received: 0 })).toBe('canceled');
    expect(paymentState({ status: 'canceled', amount_received: 100 })).toBe('captured');
    const base = { id: 'pi_1', amount: 1000, currency: 'eur', amount_capturable: 0, amount_received: 0, client_secret: 'pi_1_secret_x', capture_method: 'manual' };
    const declined = toPspPayment({ ...base, status: 'requires_payment_method', latest_charge: 'ch_9', last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'no', charge: 'ch_9' } }, PK);
    expect(declined).toMatchObject({ state: 'pending', lastDecline: { code: 'insufficient_funds', attemptId: 'ch_9' }, preOrderPaymentData: { transactionId: 'pi_1', clientSecret: 'pi_1_secret_x', publishableKey: PK }, currency: 'EUR' });
    const action = toPspPayment({ ...base, status: 'requires_action', next_action: { type: 'redirect_to_url', redirect_to_url: { url: 'https://hooks.stripe.com/3ds' } } }, PK);
    expect(action.actionUrl).toBe('https://hooks.stripe.com/3ds');
    expect(toPspPayment({ ...base, status: 'requires_action', next_action: { type: 'use_stripe_sdk' } }, PK).actionUrl).toBeUndefined();
    const auth = toPspPayment(
      { ...base, status: 'requires_capture', amount_capturable: 1000, latest_charge: { id: 'ch_1', amount_refunded: 0, payment_method_details: { type: 'card', card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2030, multicapture: { status: 'available' } } } } },
      PK,
    );
    expect(auth).toMatchObject({ state: 'authorized', amountCapturable: 1000, multipleCapturesAvailable: true, publicDetails: { cardBrand: 'visa', cardLast4: '4242' }, pspData: { latestChargeId: 'ch_1' } });
    expect(JSON.stringify(auth.publicDetails)).not.toContain('secret');
  });

  it('maps Account objects to merchant statuses in the order of 1.7', () => {
    const active = { capabilities: { transfers: 'active' }, payouts_enabled: true, details_submitted: true, requirements: { currently_due: [], past_due: [] }, future_requirements: { currently_due: [] } };
    expect(merchantStatusOf(active)).toBe('enabled');
    expect(merchantStatusOf({ ...active, requirements: { currently_due: ['x'], past_due: [] } })).toBe('restricted soon');
    expect(merchantStatusOf({ ...active, requirements: { current_deadline: 123 } })).toBe('restricted soon');
    expect(merchantStatusOf({ ...active, future_requirements: { currently_due: ['y'] } })).toBe('restricted soon');
    expect(merchantStatusOf({ ...active, requirements: { disabled_reason: 'rejected.fraud' } })).toBe('rejected');
    expect(merchantStatusOf({ capabilities: { transfers: 'inactive' }, details_submitted: true, requirements: { past_due: ['z'], disabled_reason: 'requirements.past_due' } })).toBe('restricted');
    expect(merchantStatusOf({ capabilities: { transfers: 'pending' }, details_submitted: true, requirements: {} })).toBe('completed');
    expect(merchantStatusOf({ capabilities: { transfers: 'inactive' }, details_submitted: false, requirements: { currently_due: ['a'] } })).toBe('pending');
  });

  it('splits names at the last space and maps decline codes to catalog keys', () => {
    expect(splitName('Sonia Maria Wagner')).toEqual({ firstName: 'Sonia Maria', lastName: 'Wagner' });
    expect(splitName('Cher')).toEqual({ firstName: 'Cher', lastName: null });
    expect(stripeDeclineMessageKey('insufficient_funds')).toBe('insufficient_funds');
    expect(stripeDeclineMessageKey('incorrect_number')).toBe('invalid_number');
    expect(stripeDeclineMessageKey('authentication_required')).toBe('authentication_failed');
    expect(stripeDeclineMessageKey('<script>alert(1)</script>')).toBe('card_declined');
  });
});

// ---------------------------------------------------------------------------------------------
// Webhooks: parse, verify (signatures computed with the SDK), outcomes of every event of 1.8
// ---------------------------------------------------------------------------------------------

function event(type: string, object: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id: `evt_${Math.random().toString(36).slice(2)}`, object: 'event', api_version: STRIPE_API_VERSION, created: 1_790_000_000, livemode: false, type, data: { object }, ...extra });
}

function signed(payload: string, secret: string, timestamp: number, query: Record<string, unknown> = { endpoint: 'shop-1' }): WebhookRequest {
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
  return { method: 'POST', headers: { 'stripe-signature': header, 'content-type': 'application/json' }, query, rawBody: Buffer.from(payload) };
}

const ctx = (status: string | null = 'authorized'): WebhookContext => ({ payment: status === null ? null : { status, amount: 1000, amountCaptured: 0, amountRefunded: 0, pspData: {} } });

describe('Stripe connector: webhooks', () => {
  const c = connectorFor();
  const now = new Date(1_790_000_000 * 1000);
  const nowS = 1_790_000_000;

  it('parses one event per request with the endpoint tenant from the URL and the tenant hint from metadata', () => {
    const body = event('payment_intent.succeeded', { id: 'pi_1', object: 'payment_intent', metadata: { tenantIdentifier: 'shop-1' } });
    const parsed = c.parseWebhook(signed(body, WHSEC, nowS));
    expect(parsed?.endpointTenant).toBe('shop-1');
    expect(parsed?.events).toHaveLength(1);
    expect(parsed?.events[0]).toMatchObject({ eventType: 'payment_intent.succeeded', mode: 'test', objectIds: ['pi_1'], tenantHint: 'shop-1' });
    expect(c.parseWebhook({ method: 'POST', headers: {}, query: {}, rawBody: Buffer.from(body) })).toBeNull(); // no Stripe-Signature: not Stripe's
    expect(c.parseWebhook(signed('{not json', WHSEC, nowS))).toBeNull();
    expect(c.parseWebhook(signed(JSON.stringify({ id: 'x', type: 'a' }), WHSEC, nowS))).toBeNull();
    const refund = c.parseWebhook(signed(event('refund.updated', { id: 're_1', object: 'refund', payment_intent: 'pi_1' }), WHSEC, nowS));
    expect(refund?.events[0]!.objectIds).toEqual(['re_1', 'pi_1']);
    const charge = c.parseWebhook(signed(event('charge.captured', { id: 'ch_1', object: 'charge', payment_intent: 'pi_1' }), WHSEC, nowS));
    expect(charge?.events[0]!.objectIds).toEqual(['ch_1', 'pi_1']);
    const rev = c.parseWebhook(signed(event('transfer.reversed', { id: 'tr_1', object: 'transfer', reversals: { data: [{ id: 'trr_2', created: 2 }, { id: 'trr_1', created: 1 }] } }), WHSEC, nowS));
    expect(rev?.events[0]!.objectIds).toEqual(['tr_1', 'trr_2']);
    const cap = c.parseWebhook(signed(event('capability.updated', { id: 'transfers', object: 'capability', account: 'acct_9' }, { account: 'acct_9' }), WHSEC, nowS));
    expect(cap?.events[0]!.objectIds).toEqual(['acct_9']);
  });

  it('verifies Stripe-Signature with the current, the previous and the Connect secret; rejects wrong, stale and tampered ones', () => {
    const body = event('payment_intent.succeeded', { id: 'pi_1' });
    const secrets = [WHSEC, WHSEC_OLD, WHSEC_CONNECT];
    expect(c.verifyWebhook(signed(body, WHSEC, nowS), secrets, now)).toBe(true);
    expect(c.verifyWebhook(signed(body, WHSEC_OLD, nowS), secrets, now)).toBe(true); // rotated
    expect(c.verifyWebhook(signed(body, WHSEC_CONNECT, nowS), secrets, now)).toBe(true); // Connect endpoint
    expect(c.verifyWebhook(signed(body, 'whsec_someoneelse000000', nowS), secrets, now)).toBe(false);
    expect(c.verifyWebhook(signed(body, WHSEC, nowS - 301), secrets, now)).toBe(false);
    expect(c.verifyWebhook(signed(body, WHSEC, nowS - 299), secrets, now)).toBe(true);
    expect(c.verifyWebhook(signed(body, WHSEC, nowS + 301), secrets, now)).toBe(false);
    expect(c.verifyWebhook(signed(body, WHSEC, nowS), [], now)).toBe(false);
    const tampered = signed(body, WHSEC, nowS);
    tampered.rawBody = Buffer.from(body.replace('pi_1', 'pi_2'));
    expect(c.verifyWebhook(tampered, secrets, now)).toBe(false);
    // two v1 entries (Stripe signs with both secrets during a rotation): one matching is enough
    const h1 = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: 'whsec_unknown0000000000', timestamp: nowS });
    const h2 = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WHSEC, timestamp: nowS });
    const both = `${h1},v1=${h2.split('v1=')[1]}`;
    expect(c.verifyWebhook({ method: 'POST', headers: { 'Stripe-Signature': both }, query: {}, rawBody: Buffer.from(body) }, [WHSEC], now)).toBe(true);
    expect(c.verifyWebhook({ method: 'POST', headers: { 'stripe-signature': 'garbage' }, query: {}, rawBody: Buffer.from(body) }, [WHSEC], now)).toBe(false);
  });

  const out = (type: string, object: Record<string, unknown>, context: WebhookContext = ctx(), extra: Record<string, unknown> = {}) => c.webhookOutcome(Buffer.from(event(type, object, extra)), context);
  const pi = (o: Record<string, unknown>) => ({ id: 'pi_1', object: 'payment_intent', amount: 1000, currency: 'eur', amount_received: 0, capture_method: 'manual', ...o });

  it('maps every event of 1.8 to its outcome', () => {
    expect(out('payment_intent.amount_capturable_updated', pi({ status: 'requires_capture', amount_capturable: 1000 }), ctx('new'))).toMatchObject({ kind: 'payment', transactionId: 'pi_1', state: 'authorized' });
    expect(out('payment_intent.amount_capturable_updated', pi({ status: 'requires_capture', amount_received: 300 }))).toEqual({ kind: 'capture', transactionId: 'pi_1', amountCaptured: 300, succeeded: true, final: false });
    expect(out('payment_intent.succeeded', pi({ status: 'succeeded', amount_received: 1000, capture_method: 'automatic' }), ctx('new'))).toMatchObject({ kind: 'payment', state: 'captured', amountCaptured: 1000 });
    expect(out('payment_intent.succeeded', pi({ status: 'succeeded', amount_received: 600 }), ctx('authorized'))).toEqual({ kind: 'capture', transactionId: 'pi_1', amountCaptured: 600, succeeded: true, final: true });
    expect(out('payment_intent.succeeded', pi({ status: 'succeeded', amount_received: 1000 }), ctx('new'))).toMatchObject({ kind: 'payment', state: 'captured' }); // out of order
    expect(out('charge.captured', { id: 'ch_1', object: 'charge', payment_intent: 'pi_1', amount_captured: 400, currency: 'eur', payment_method_details: { card: { multicapture: { status: 'available' } } } })).toEqual({
      kind: 'capture',
      transactionId: 'pi_1',
      amountCaptured: 400,
      succeeded: true,
    });
    expect(out('charge.captured', { id: 'ch_1', object: 'charge', payment_intent: 'pi_1', amount_captured: 400, currency: 'eur' })).toMatchObject({ kind: 'capture', final: true });
    expect(out('payment_intent.payment_failed', pi({ status: 'requires_payment_method', latest_charge: 'ch_7', last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Insufficient', charge: 'ch_7' } }), ctx('new'))).toMatchObject({
      kind: 'payment',
      state: 'pending',
      decline: { code: 'insufficient_funds', attemptId: 'ch_7' },
    });
    expect(out('payment_intent.requires_action', pi({ status: 'requires_action' }))).toMatchObject({ kind: 'payment', state: 'requires_action' });
    expect(out('payment_intent.processing', pi({ status: 'processing' }))).toMatchObject({ kind: 'payment', state: 'pending' });
    expect(out('payment_intent.canceled', pi({ status: 'canceled', cancellation_reason: 'automatic' }))).toMatchObject({ kind: 'payment', state: 'canceled' });
    expect(out('payment_intent.canceled', pi({ status: 'canceled', amount_received: 700 }))).toMatchObject({ kind: 'payment', state: 'captured', amountCaptured: 700 });
    const capCancel = pi({ status: 'canceled', cancellation_reason: 'abandoned', last_payment_error: { code: 'card_declined', decline_code: 'generic_decline', message: 'x' } });
    expect(out('payment_intent.canceled', capCancel, ctx('new'))).toMatchObject({ kind: 'payment', state: 'failed', decline: { code: 'generic_decline' } });
    expect(out('payment_intent.canceled', capCancel, ctx('authorization_failed'))).toMatchObject({ kind: 'ignored' });
    expect(out('payment_intent.canceled', pi({ status: 'canceled', cancellation_reason: 'abandoned' }), ctx('new'))).toMatchObject({ kind: 'payment', state: 'canceled' });
    const refund = (o: Record<string, unknown>) => ({ id: 're_1', object: 'refund', payment_intent: 'pi_1', amount: 250, currency: 'eur', ...o });
    expect(out('refund.created', refund({ status: 'pending', metadata: { refundId: 'r-1' } }))).toEqual({ kind: 'refund', transactionId: 'pi_1', pspRefundId: 're_1', amount: 250, status: 'pending', refundId: 'r-1' });
    expect(out('refund.updated', refund({ status: 'requires_action' }))).toMatchObject({ status: 'processing' });
    expect(out('refund.updated', refund({ status: 'succeeded' }))).toMatchObject({ status: 'succeeded' });
    expect(out('charge.refund.updated', refund({ status: 'canceled' }))).toMatchObject({ status: 'canceled' });
    expect(out('refund.failed', refund({ status: 'failed', failure_reason: 'expired_or_canceled_card' }))).toMatchObject({ status: 'failed', reason: 'expired_or_canceled_card' });
    expect(out('refund.updated', refund({ status: 'succeeded' }))).not.toHaveProperty('refundId'); // a Dashboard refund (10.12)
    expect(out('transfer.created', { id: 'tr_1', object: 'transfer' })).toEqual({ kind: 'transfer', pspTransferId: 'tr_1', status: 'succeeded' });
    expect(out('transfer.reversed', { id: 'tr_1', object: 'transfer', reversals: { data: [{ id: 'trr_1', created: 1 }] } })).toEqual({ kind: 'transfer', pspTransferId: 'tr_1', status: 'succeeded', reversalId: 'trr_1' });
    expect(out('transfer.updated', { id: 'tr_1', object: 'transfer' })).toMatchObject({ kind: 'ignored' });
    expect(out('account.updated', { id: 'acct_1', object: 'account', capabilities: { transfers: 'active' }, payouts_enabled: true, requirements: {} }, ctx(null), { account: 'acct_1' })).toEqual({
      kind: 'account',
      accountId: 'acct_1',
      merchantStatus: 'enabled',
    });
    expect(out('account.application.deauthorized', { id: 'ca_1', object: 'application' }, ctx(null), { account: 'acct_2' })).toEqual({ kind: 'account', accountId: 'acct_2', merchantStatus: 'rejected' });
    expect(out('capability.updated', { id: 'transfers', object: 'capability', account: 'acct_1', status: 'active' }, ctx(null))).toMatchObject({ kind: 'ignored' });
    expect(out('charge.dispute.created', { id: 'dp_1', object: 'dispute' })).toMatchObject({ kind: 'ignored' });
    expect(c.webhookOutcome(Buffer.from('nope'), ctx())).toMatchObject({ kind: 'ignored' });
    expect(out('payment_intent.succeeded', pi({ status: 'succeeded', currency: 'isk', amount: 10000, amount_received: 10000, capture_method: 'automatic' }), ctx('new'))).toMatchObject({ amountCaptured: 100 }); // 3.8
  });

  it('answers 200 JSON and reads the return parameters Stripe appends', () => {
    expect(c.webhookAck()).toMatchObject({ status: 200 });
    expect(c.returnTransactionId({ payment_intent: 'pi_3Q3abc', payment_intent_client_secret: 'pi_3Q3abc_secret_x', redirect_status: 'succeeded' })).toBe('pi_3Q3abc');
    expect(c.returnTransactionId({ transactionId: 'pay_sandbox' })).toBeNull();
    expect(c.returnTransactionId({ payment_intent: '<x>' })).toBeNull();
  });
});

describe('Stripe connector: the payment page', () => {
  const c = connectorFor('http://127.0.0.1:5555', 'http://127.0.0.1:5555/v3/');
  const payment = toPspPayment({ id: 'pi_1', amount: 1000, currency: 'eur', amount_received: 0, amount_capturable: 0, status: 'requires_payment_method', client_secret: 'pi_1_secret_"><script>' }, PK);
  const ctxPage = { locale: 'de_DE', returnUrl: 'https://app.example/app-payment/redirect?transactionId=pi_1&tenantIdentifier=shop-1', pageUrl: 'https://app.example/app-payment', cancelUrl: null, amountLabel: '10,00 €', pspData: {} };

  it('renders the Payment Element with a nonce-able script, Stripe.js from STRIPE_JS_URL and the CSP origins of section 8', () => {
    const v = c.checkout({ secretKey: SK, publishableKey: PK, payButtonColor: '#112233' }, payment, ctxPage);
    expect(v.kind).toBe('sdk');
    if (v.kind !== 'sdk') return;
    expect(v.externalScripts).toEqual(['http://127.0.0.1:5555/v3/']);
    expect(v.csp).toEqual({ script: ['http://127.0.0.1:5555'], frame: ['http://127.0.0.1:5555', 'https://hooks.stripe.com'], connect: ['http://127.0.0.1:5555'], img: ['https://*.stripe.com'] });
    expect(v.html).toContain(`data-publishable-key="${PK}"`);
    expect(v.html).toContain('data-client-secret="pi_1_secret_&quot;&gt;&lt;script&gt;"'); // escaped
    expect(v.html).toContain('data-return-url="https://app.example/app-payment/redirect?transactionId=pi_1&amp;tenantIdentifier=shop-1"');
    expect(v.html).toContain('Bezahlen 10,00 €');
    expect(v.html).toContain('data-color="#112233"');
    expect(v.html).not.toContain(SK);
    expect(v.script).toContain('confirmPayment');
    expect(v.script).toContain('handleNextAction');
    expect(v.script).not.toContain('<\/script');
  });

  it('defaults to Stripe origins', () => {
    const v = connectorFor().checkout({ publishableKey: PK }, payment, ctxPage);
    expect(v.kind === 'sdk' && v.csp).toEqual({ script: ['https://js.stripe.com'], frame: ['https://js.stripe.com', 'https://hooks.stripe.com'], connect: ['https://api.stripe.com'], img: ['https://*.stripe.com'] });
  });
});

// ---------------------------------------------------------------------------------------------
// Every operation through the real SDK against the Stripe fake
// ---------------------------------------------------------------------------------------------

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { startStripeFake, type StripeFake } from './fakes/stripe/index.js';
import type { CallOptions, PspResult } from '../src/connectors/types.js';

const budget = (): AbortSignal => AbortSignal.timeout(15_000);
const opts = (idempotencyKey: string): CallOptions => ({ idempotencyKey, signal: budget() });
const must = <T>(r: PspResult<T>): T => {
  if (!r.ok) throw new Error(`expected success, got ${JSON.stringify(r.failure)}`);
  return r.value;
};
let seq = 0;
const uid = (p: string): string => `${p}-${Date.now().toString(36)}-${++seq}`;

describe('Stripe connector against the Stripe fake (real SDK)', () => {
  let fake: StripeFake;
  let c: Connector;
  let settings: Record<string, unknown>;
  const tenant = 'shop-1';

  beforeAll(async () => {
    fake = await startStripeFake();
    c = connectorFor(fake.url, `${fake.url}/v3/`);
    settings = { secretKey: fake.account.secretKey, publishableKey: fake.account.publishableKey, captureMode: 'manual' };
  });
  afterAll(async () => {
    await fake?.close();
  });

  const lastCalls = (method: string, path: RegExp) => fake.requests.filter((r) => r.method === method && path.test(r.path));

  async function newPayment(s: Record<string, unknown> = settings, amount = 1000, currency = 'EUR', orderRef: string | null = uid('ORD')) {
    const paymentId = uid('pay');
    const ref = orderRef ?? undefined;
    const p = must(
      await c.createPayment(
        s,
        { tenantIdentifier: tenant, paymentId, amount, currency, orderReference: ref, captureMode: c.settings.captureMode(s), returnUrl: 'https://app.example/app-payment/redirect', metadata: { tenantIdentifier: tenant, paymentId, appIdentifier: 'open-acp-pay-test', ...(ref ? { orderReference: ref } : {}) } },
        opts(paymentId),
      ),
    );
    return { p, paymentId, ref };
  }
  async function authorized(s: Record<string, unknown> = settings, amount = 1000, pm = 'pm_card_visa') {
    const x = await newPayment(s, amount);
    fake.confirm(x.p.id, pm);
    return x;
  }

  it('checks credentials live: good key, refused key, key without PaymentIntent permission, Connect missing, Stripe unreachable', async () => {
    expect(await c.checkCredentials(settings, budget())).toEqual({ ok: true });
    expect(await c.checkCredentials({ ...settings, secretKey: fake.account.restrictedKey }, budget())).toEqual({ ok: true });
    expect(await c.checkCredentials({ ...settings, secretKey: 'sk_test_unknownunknown1234' }, budget())).toEqual({ ok: false, kind: 'refused', field: 'secretKey', message: 'stripe_key_refused' });
    const noPi = fake.addKey({ kind: 'restricted', permissions: ['refunds'] });
    expect(await c.checkCredentials({ ...settings, secretKey: noPi }, budget())).toEqual({ ok: false, kind: 'refused', field: 'secretKey', message: 'stripe_key_lacks_permission' });
    const noAccounts = fake.addKey({ kind: 'restricted', permissions: ['payment_intents'] });
    expect(await c.checkCredentials({ ...settings, secretKey: noAccounts, businessModel: 'marketplace' }, budget())).toEqual({ ok: false, kind: 'refused', field: 'businessModel', message: 'stripe_connect_not_enabled' });
    const down = connectorFor('http://127.0.0.1:9', 'http://127.0.0.1:9/v3/');
    expect(await down.checkCredentials(settings, budget())).toEqual({ ok: false, kind: 'unreachable' });
    fake.injectFault({ path: '/v1/payment_intents', method: 'GET', kind: '500' });
    expect(await c.checkCredentials(settings, budget())).toEqual({ ok: false, kind: 'unreachable' });
  });

  it('registers the tenant webhook endpoint (secret from Stripe, never a form field), updates it on reconfigure, adds the Connect endpoint for marketplaces, deletes them on disconnect', async () => {
    const acct = fake.addAccount();
    const s = { secretKey: acct.secretKey, publishableKey: acct.publishableKey };
    const ctxC = { tenantIdentifier: 'shop-wh', appBaseUrl: 'https://app.example/', appIdentifier: 'open-acp-pay-test' };
    const first = await c.afterConfigured(s, ctxC, budget());
    const patch = first && first.settingsPatch;
    expect(patch?.webhookEndpointId).toMatch(/^we_/);
    expect(patch?.webhookSecret).toBe(fake.webhooks.secretOf(String(patch!.webhookEndpointId)));
    const created = lastCalls('POST', /^\/v1\/webhook_endpoints$/).at(-1)!;
    expect(created.params).toMatchObject({ url: 'https://app.example/webhooks/test?endpoint=shop-wh', api_version: STRIPE_API_VERSION, metadata: { openAcpTenant: 'shop-wh', appIdentifier: 'open-acp-pay-test' } });
    expect(created.params.enabled_events).toContain('payment_intent.amount_capturable_updated');
    expect(created.params.enabled_events).not.toContain('transfer.created');

    // reconfigure with the stored secret: same endpoint updated, no new secret
    const again = await c.afterConfigured({ ...s, webhookSecret: patch!.webhookSecret }, ctxC, budget());
    expect(again && again.settingsPatch).toEqual({ webhookEndpointId: patch!.webhookEndpointId });

    // marketplace: transfer events on the account endpoint, plus a Connect endpoint
    const market = await c.afterConfigured({ ...s, webhookSecret: patch!.webhookSecret, businessModel: 'marketplace', onboardingCountry: 'DE' }, ctxC, budget());
    const mp = market && market.settingsPatch;
    expect(mp?.connectWebhookSecret).toMatch(/^whsec_/);
    const connectCall = lastCalls('POST', /^\/v1\/webhook_endpoints$/).at(-1)!;
    expect(connectCall.params).toMatchObject({ url: 'https://app.example/webhooks/test?endpoint=shop-wh&connect=1', connect: 'true', metadata: { connect: 'true' } });
    const update = lastCalls('POST', /^\/v1\/webhook_endpoints\/we_/).at(-1)!;
    expect(update.params.enabled_events).toContain('transfer.reversed');

    // a typed secret and no endpoint of ours: the tenant registered it in the Dashboard; nothing is created
    const other = fake.addAccount();
    const before = lastCalls('POST', /^\/v1\/webhook_endpoints$/).length;
    const typed = await c.afterConfigured({ secretKey: other.secretKey, publishableKey: other.publishableKey, webhookSecret: WHSEC }, { ...ctxC, tenantIdentifier: 'shop-typed' }, budget());
    expect(typed && typed.settingsPatch).toEqual({});
    expect(lastCalls('POST', /^\/v1\/webhook_endpoints$/).length).toBe(before);

    // live keys register the live URL
    const live = await c.afterConfigured({ secretKey: acct.liveSecretKey, publishableKey: acct.livePublishableKey }, { ...ctxC, tenantIdentifier: 'shop-live' }, budget());
    expect(live && live.settingsPatch?.webhookSecret).toMatch(/^whsec_/);
    expect(lastCalls('POST', /^\/v1\/webhook_endpoints$/).at(-1)!.params.url).toBe('https://app.example/webhooks?endpoint=shop-live');

    await c.beforeDisconnect!(s, ctxC, budget());
    const deleted = lastCalls('DELETE', /^\/v1\/webhook_endpoints\/we_/).map((r) => r.path);
    expect(deleted).toContain(`/v1/webhook_endpoints/${String(patch!.webhookEndpointId)}`);
    expect(deleted).toContain(`/v1/webhook_endpoints/${String(mp!.connectWebhookEndpointId)}`);
  });

  it('delivers webhooks the fake signs that verify with the registered secret and map to outcomes', async () => {
    const bodies: Array<{ headers: Record<string, string | string[] | undefined>; raw: Buffer; url: string }> = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (ch: Buffer) => chunks.push(ch));
      req.on('end', () => {
        bodies.push({ headers: req.headers, raw: Buffer.concat(chunks), url: req.url ?? '' });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const acct = fake.addAccount();
      const s = { secretKey: acct.secretKey, publishableKey: acct.publishableKey, captureMode: 'manual' };
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const reg = await c.afterConfigured(s, { tenantIdentifier: 'shop-hook', appBaseUrl: base }, budget());
      const secret = String(reg && reg.settingsPatch?.webhookSecret);
      const { p } = await authorized(s);
      await fake.webhooks.flush();
      const got = bodies.filter((b) => JSON.parse(b.raw.toString()).type === 'payment_intent.amount_capturable_updated');
      expect(got).toHaveLength(1);
      const req: WebhookRequest = { method: 'POST', headers: got[0]!.headers, query: Object.fromEntries(new URL(got[0]!.url, base).searchParams), rawBody: got[0]!.raw };
      const parsed = c.parseWebhook(req)!;
      expect(parsed.endpointTenant).toBe('shop-hook');
      expect(parsed.events[0]!.objectIds).toEqual([p.id]);
      expect(parsed.events[0]!.tenantHint).toBe(tenant);
      expect(c.verifyWebhook(req, [secret], new Date())).toBe(true);
      expect(c.verifyWebhook(req, [WHSEC], new Date())).toBe(false);
      expect(c.webhookOutcome(parsed.events[0]!.payload, ctx('new'))).toMatchObject({ kind: 'payment', transactionId: p.id, state: 'authorized' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('creates hosted PaymentIntents with the deterministic key, metadata and manual capture; a repeat replays the same PaymentIntent', async () => {
    const ref = uid('ORD');
    const a = await newPayment(settings, 1000, 'EUR', ref);
    const call = lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!;
    expect(call.idempotencyKey).toBe(keys.hostedPayment(tenant, ref));
    expect(call.stripeVersion).toBe(STRIPE_API_VERSION);
    expect(call.params).toMatchObject({ amount: '1000', currency: 'eur', capture_method: 'manual', automatic_payment_methods: { enabled: 'true' }, description: `Order ${ref}`, metadata: { tenantIdentifier: tenant, orderReference: ref, paymentId: a.paymentId } });
    expect(call.params).not.toHaveProperty('payment_method_types');
    expect(a.p).toMatchObject({ state: 'pending', amount: 1000, currency: 'EUR', preOrderPaymentData: { transactionId: a.p.id, publishableKey: fake.account.publishableKey } });
    expect(String(a.p.preOrderPaymentData.clientSecret)).toMatch(new RegExp(`^${a.p.id}_secret_`));
    const b = must(
      await c.createPayment(settings, { tenantIdentifier: tenant, paymentId: a.paymentId, amount: 1000, currency: 'EUR', orderReference: ref, captureMode: 'manual', returnUrl: 'https://app.example/app-payment/redirect', metadata: { tenantIdentifier: tenant, paymentId: a.paymentId, appIdentifier: 'open-acp-pay-test', orderReference: ref } }, opts(a.paymentId)),
    );
    expect(b.id).toBe(a.p.id);
    expect(lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!.replayed).toBe(true);
  });

  it('creates pre-order PaymentIntents keyed by the payment id, with preOrder metadata; converts ISK; refuses a three-decimal amount Stripe cannot take', async () => {
    const pre = await newPayment(settings, 2500, 'EUR', null);
    const call = lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!;
    expect(call.idempotencyKey).toBe(`oacp_pi_${pre.paymentId}`);
    expect(call.params.metadata).toMatchObject({ preOrder: 'true', paymentId: pre.paymentId });
    const isk = await newPayment(settings, 5, 'ISK');
    expect(lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!.params.amount).toBe('500');
    expect(isk.p.amount).toBe(5);
    const bad = await c.createPayment(settings, { tenantIdentifier: tenant, amount: 1234, currency: 'KWD', captureMode: 'manual', returnUrl: 'x', metadata: {} }, opts(uid('p')));
    expect(bad).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'declined', code: 'invalid_amount' }) });
  });

  it('reads PaymentIntents per 1.4: authorized with card details, declined attempt, 3DS with an action URL', async () => {
    const ok1 = await authorized();
    const got = must(await c.getPayment(settings, ok1.p.id, budget()));
    expect(got).toMatchObject({ state: 'authorized', amountCapturable: 1000, publicDetails: { cardBrand: 'visa', cardLast4: '4242' }, multipleCapturesAvailable: false });
    const declined = await authorized(settings, 1000, 'pm_card_chargeDeclinedInsufficientFunds');
    const d = must(await c.getPayment(settings, declined.p.id, budget()));
    expect(d.state).toBe('pending');
    expect(d.lastDecline).toMatchObject({ code: 'insufficient_funds' });
    expect(d.lastDecline?.attemptId).toMatch(/^(ch|py|pm)_/);
    expect(c.declineMessageKey(d.lastDecline!.code)).toBe('insufficient_funds');
    const tds = await newPayment();
    fake.confirm(tds.p.id, 'pm_card_threeDSecure2Required', { returnUrl: 'https://app.example/app-payment/redirect' });
    const t = must(await c.getPayment(settings, tds.p.id, budget()));
    expect(t.state).toBe('requires_action');
    expect(t.actionUrl).toMatch(/^http/);
    const missing = await c.getPayment(settings, 'pi_doesnotexist', budget());
    expect(missing.ok).toBe(false);
  });

  it('updates the amount before authorization and answers conflict after it', async () => {
    const x = await newPayment(settings, 1000, 'EUR', null);
    const u = must(await c.updatePaymentAmount(settings, x.p.id, 1500, { ...opts('k-1'), paymentId: x.paymentId }));
    expect(u).toMatchObject({ id: x.p.id, amount: 1500 });
    expect(lastCalls('POST', new RegExp(`^/v1/payment_intents/${x.p.id}$`)).at(-1)!.idempotencyKey).toBe(`oacp_piu_${x.paymentId}_k-1`);
    fake.confirm(x.p.id, 'pm_card_visa');
    const late = await c.updatePaymentAmount(settings, x.p.id, 2000, { ...opts('k-2'), paymentId: x.paymentId });
    expect(late).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'conflict', code: 'payment_intent_unexpected_state' }) });
  });

  it('express: looks the payer up from the confirmation token, confirms server-side with the order total, a declined token is final', async () => {
    const x = await newPayment(settings, 1000, 'EUR', null);
    const token = fake.createConfirmationToken({
      paymentMethod: 'pm_card_visa',
      shipping: { name: 'Sonia Wagner', phone: '+49301234567', address: { line1: 'Julie-Wolfthorn-Str. 1', city: 'Berlin', postal_code: '10115', country: 'DE' } },
      billingDetails: { name: 'Sonia Wagner', email: 'sonia@example.com', phone: '+49301234567', address: { line1: 'Julie-Wolfthorn-Str. 1', city: 'Berlin', postal_code: '10115', country: 'DE' } },
    }) as { id: string };
    const payer = must(await c.customer!.getPayer(settings, x.p.id, { transactionId: x.p.id, confirmationTokenId: token.id }, budget()));
    expect(payer).toMatchObject({ firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com', shippingAddress: { address1: 'Julie-Wolfthorn-Str. 1', zipCode: '10115', city: 'Berlin', iso2Code: 'DE' }, billingAddress: { iso2Code: 'DE' } });
    expect(must(await c.customer!.getPayer(settings, x.p.id, {}, budget()))).toBeNull(); // nothing yet → null (409)

    const confirmed = must(await c.confirmPayment!(settings, x.p.id, { amount: 1490, clientData: { confirmationTokenId: token.id }, returnUrl: 'https://app.example/r' }, opts(x.paymentId)));
    expect(confirmed).toMatchObject({ state: 'authorized', amount: 1490 });
    expect(lastCalls('POST', /\/confirm$/).at(-1)!.idempotencyKey).toBe(`oacp_pic_${x.paymentId}`);
    // a repeated confirmation is a status query
    expect(must(await c.confirmPayment!(settings, x.p.id, { amount: 1490, clientData: { confirmationTokenId: token.id }, returnUrl: 'https://app.example/r' }, opts(x.paymentId))).state).toBe('authorized');

    const y = await newPayment(settings, 1000, 'EUR', null);
    const bad = fake.createConfirmationToken({ paymentMethod: 'pm_card_chargeDeclined' }) as { id: string };
    const declined = await c.confirmPayment!(settings, y.p.id, { amount: 1000, clientData: { confirmationTokenId: bad.id }, returnUrl: 'https://app.example/r' }, opts(y.paymentId));
    expect(declined).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'declined' }) });

    // card flow (no token): the browser confirmed; confirmPayment is a status query
    const z = await authorized();
    expect(must(await c.confirmPayment!(settings, z.p.id, { amount: 1000, clientData: {}, returnUrl: 'https://app.example/r' }, opts(z.paymentId))).state).toBe('authorized');
  });

  it('captures single-final: a partial capture is final and releases the rest; over-capture is declined', async () => {
    const x = await authorized();
    const capId = uid('cap');
    const r = must(await c.capture(settings, x.p.id, 600, { ...opts(capId), final: false, captureId: capId }));
    expect(r).toMatchObject({ status: 'succeeded', amountCaptured: 600, finalCapture: true });
    const call = lastCalls('POST', /\/capture$/).at(-1)!;
    expect(call.idempotencyKey).toBe(`oacp_cap_${capId}`);
    expect(call.params).toMatchObject({ amount_to_capture: '600', metadata: { captureId: capId, tenantIdentifier: tenant, paymentId: x.paymentId } });
    expect(call.params).not.toHaveProperty('final_capture');
    expect(must(await c.getPayment(settings, x.p.id, budget()))).toMatchObject({ state: 'captured', amountCaptured: 600 });
    const more = await c.capture(settings, x.p.id, 100, opts(uid('cap')));
    expect(more.ok).toBe(false);
    const y = await authorized();
    expect(await c.capture(settings, y.p.id, 5000, opts(uid('cap')))).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'declined', code: 'amount_too_large' }) });
  });

  it('captures with multicapture when available: non-final captures keep the rest, the last is final; releasing the rest cancels', async () => {
    const s = { ...settings, multicapture: true };
    const x = await authorized(s);
    expect(lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!.params.payment_method_options).toEqual({ card: { request_multicapture: 'if_available' } });
    expect(must(await c.getPayment(s, x.p.id, budget())).multipleCapturesAvailable).toBe(true);
    const one = must(await c.capture(s, x.p.id, 300, { ...opts(uid('cap')), final: false }));
    expect(one).toMatchObject({ amountCaptured: 300, finalCapture: false });
    expect(lastCalls('POST', /\/capture$/).at(-1)!.params.final_capture).toBe('false');
    const two = must(await c.capture(s, x.p.id, 200, { ...opts(uid('cap')), final: false }));
    expect(two).toMatchObject({ amountCaptured: 500, finalCapture: false });
    const released = must(await c.cancel(s, x.p.id, { ...opts(uid('cancel')), reason: 'requested_by_customer' }));
    expect(released).toEqual({ status: 'canceled', amountCaptured: 500 });
    fake.setMulticaptureCancelStatus('succeeded'); // [unconfirmed] end status: both are a release
    const y = await authorized(s);
    must(await c.capture(s, y.p.id, 300, { ...opts(uid('cap')), final: false }));
    expect(must(await c.cancel(s, y.p.id, opts(uid('cancel'))))).toEqual({ status: 'canceled', amountCaptured: 300 });
    fake.setMulticaptureCancelStatus('canceled');
    // marketplace mode never asks for multicapture
    await newPayment({ ...s, businessModel: 'marketplace' });
    expect(lastCalls('POST', /^\/v1\/payment_intents$/).at(-1)!.params).not.toHaveProperty('payment_method_options');
  });

  it('retries a capture after a reset after the write, and after a timeout, with the same key: captured once', async () => {
    const x = await authorized();
    const capId = uid('cap');
    fake.injectFault({ path: `/v1/payment_intents/${x.p.id}/capture`, kind: 'reset-after-write' });
    const first = await c.capture(settings, x.p.id, 400, opts(capId));
    expect(first.ok).toBe(false);
    const second = must(await c.capture(settings, x.p.id, 400, opts(capId)));
    expect(second.amountCaptured).toBe(400);
    const executed = lastCalls('POST', new RegExp(`^/v1/payment_intents/${x.p.id}/capture$`)).filter((r) => !r.replayed && r.fault !== 'timeout');
    expect(executed).toHaveLength(1);
    expect((fake.get(x.p.id) as { amount_received: number }).amount_received).toBe(400);
    fake.expireIdempotencyKeys(); // a re-drive after Stripe forgot the key: read back, recognised by the capture id
    expect(must(await c.capture(settings, x.p.id, 400, opts(capId))).amountCaptured).toBe(400);
    expect((fake.get(x.p.id) as { amount_received: number }).amount_received).toBe(400);

    const y = await authorized();
    const capY = uid('cap');
    fake.injectFault({ path: `/v1/payment_intents/${y.p.id}/capture`, kind: 'timeout' });
    const timedOut = await c.capture(settings, y.p.id, 1000, { idempotencyKey: capY, signal: AbortSignal.timeout(500) });
    expect(timedOut).toEqual({ ok: false, failure: { kind: 'timeout' } });
    fake.abortHungRequests();
    expect(must(await c.capture(settings, y.p.id, 1000, opts(capY))).amountCaptured).toBe(1000);
    expect((fake.get(y.p.id) as { amount_received: number }).amount_received).toBe(1000);
  });

  it('retries PaymentIntent creation and server-side confirmation after a reset after the write: one PaymentIntent, one confirmation', async () => {
    const ref = uid('ORD');
    fake.injectFault({ path: '/v1/payment_intents', method: 'POST', kind: 'reset-after-write' });
    const req = { tenantIdentifier: tenant, paymentId: 'p-retry', amount: 1000, currency: 'EUR', orderReference: ref, captureMode: 'manual' as const, returnUrl: 'https://app.example/r', metadata: { tenantIdentifier: tenant } };
    const lost = await c.createPayment(settings, req, opts('p-retry'));
    expect(lost).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'error' }) });
    const created = must(await c.createPayment(settings, req, opts('p-retry')));
    const creates = lastCalls('POST', /^\/v1\/payment_intents$/).filter((r) => r.idempotencyKey === keys.hostedPayment(tenant, ref));
    expect(creates.map((r) => r.replayed)).toEqual([false, true]);
    expect(creates.every((r) => r.status === 200 || r.fault === 'reset-after-write')).toBe(true);

    const token = fake.createConfirmationToken({ paymentMethod: 'pm_card_visa' }) as { id: string };
    fake.injectFault({ path: `/v1/payment_intents/${created.id}/confirm`, kind: 'reset-after-write' });
    const first = await c.confirmPayment!(settings, created.id, { amount: 1000, clientData: { confirmationTokenId: token.id }, returnUrl: 'https://app.example/r' }, opts('p-retry'));
    expect(first.ok).toBe(false);
    expect(must(await c.confirmPayment!(settings, created.id, { amount: 1000, clientData: { confirmationTokenId: token.id }, returnUrl: 'https://app.example/r' }, opts('p-retry'))).state).toBe('authorized');
    expect(lastCalls('POST', new RegExp(`^/v1/payment_intents/${created.id}/confirm$`)).filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('reads the state back when Stripe replays a stored 5xx for the key (stripe.md 8)', async () => {
    const x = await authorized();
    const capId = uid('cap');
    fake.injectFault({ path: `/v1/payment_intents/${x.p.id}/capture`, kind: '500' });
    const first = await c.capture(settings, x.p.id, 400, opts(capId));
    expect(first).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'error' }) });
    const again = await c.capture(settings, x.p.id, 400, opts(capId)); // replayed 500; the PI was never captured
    expect(again.ok).toBe(false);
    expect((fake.get(x.p.id) as { amount_received: number }).amount_received).toBe(0);
    expect(lastCalls('POST', new RegExp(`^/v1/payment_intents/${x.p.id}/capture$`)).at(-1)!.replayed).toBe(true);
  });

  it('cancels: authorized → canceled, already canceled = success, captured → conflict; pre-order cancel uses its own key', async () => {
    const x = await authorized();
    const cancelId = uid('cancel');
    expect(must(await c.cancel(settings, x.p.id, { ...opts(cancelId), reason: 'requested_by_customer' }))).toEqual({ status: 'canceled', amountCaptured: 0 });
    const call = lastCalls('POST', /\/cancel$/).at(-1)!;
    expect(call).toMatchObject({ idempotencyKey: `oacp_cancel_${cancelId}`, params: { cancellation_reason: 'requested_by_customer' } });
    expect(must(await c.cancel(settings, x.p.id, opts(uid('cancel'))))).toEqual({ status: 'canceled', amountCaptured: 0 });
    const y = await authorized();
    must(await c.capture(settings, y.p.id, 1000, opts(uid('cap'))));
    expect(await c.cancel(settings, y.p.id, opts(uid('cancel')))).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'conflict', code: 'payment_intent_unexpected_state' }) });
    const pre = await newPayment(settings, 1000, 'EUR', null);
    must(await c.cancel(settings, pre.p.id, { ...opts('pre-key'), reason: 'abandoned' }));
    expect(lastCalls('POST', /\/cancel$/).at(-1)).toMatchObject({ idempotencyKey: 'oacp_pi_cancel_pre-key', params: { cancellation_reason: 'abandoned' } });
  });

  it('refunds partially and repeatedly, refuses over-refunds, survives a reset after the write and a forgotten key without refunding twice', async () => {
    const x = await authorized();
    must(await c.capture(settings, x.p.id, 1000, opts(uid('cap'))));
    const r1 = uid('ref');
    const a = must(await c.refund(settings, x.p.id, 300, { ...opts(r1), refundId: r1, orderReference: x.ref }));
    expect(a).toMatchObject({ status: 'succeeded' });
    expect(a.pspRefundId).toMatch(/^re_/);
    const call = lastCalls('POST', /^\/v1\/refunds$/).at(-1)!;
    expect(call).toMatchObject({ idempotencyKey: `oacp_ref_${r1}`, params: { payment_intent: x.p.id, amount: '300', reason: 'requested_by_customer', metadata: { refundId: r1, tenantIdentifier: tenant, orderReference: x.ref } } });
    const r2 = uid('ref');
    fake.injectFault({ path: '/v1/refunds', method: 'POST', kind: 'reset-after-write' });
    expect((await c.refund(settings, x.p.id, 200, { ...opts(r2), refundId: r2 })).ok).toBe(false);
    const b = must(await c.refund(settings, x.p.id, 200, { ...opts(r2), refundId: r2 }));
    fake.expireIdempotencyKeys(); // Stripe forgot the key (24 h): the lookup by metadata finds the refund
    const b2 = must(await c.refund(settings, x.p.id, 200, { ...opts(r2), refundId: r2 }));
    expect(b2.pspRefundId).toBe(b.pspRefundId);
    const refunds = (await new Stripe(fake.account.secretKey, fake.sdkOptions as Stripe.StripeConfig).refunds.list({ payment_intent: x.p.id })).data;
    expect(refunds.map((r) => r.amount).sort()).toEqual([200, 300]);
    expect(await c.refund(settings, x.p.id, 600, opts(uid('ref')))).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'declined' }) });
    expect(must(await c.getRefund!(settings, x.p.id, { pspRefundId: b.pspRefundId, refundId: r2 }, budget()))).toEqual({ pspRefundId: b.pspRefundId, status: 'succeeded' });
    expect(must(await c.getRefund!(settings, x.p.id, { refundId: r1 }, budget()))).toEqual({ pspRefundId: a.pspRefundId, status: 'succeeded' });
    expect(must(await c.getRefund!(settings, x.p.id, { refundId: 'unknown' }, budget()))).toBeNull();
  });

  it('reports a late refund failure (succeeded → failed) and pending refunds', async () => {
    const x = await authorized();
    must(await c.capture(settings, x.p.id, 1000, opts(uid('cap'))));
    const rid = uid('ref');
    const a = must(await c.refund(settings, x.p.id, 1000, { ...opts(rid), refundId: rid }));
    fake.failRefund(a.pspRefundId, 'expired_or_canceled_card');
    const ev = fake.events('refund.failed').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(ev)), ctx('captured'))).toMatchObject({ kind: 'refund', pspRefundId: a.pspRefundId, status: 'failed', refundId: rid, amount: 1000 });
    expect(must(await c.getRefund!(settings, x.p.id, { pspRefundId: a.pspRefundId, refundId: rid }, budget()))?.status).toBe('failed');
    fake.setRefundsPending(true);
    const y = await authorized();
    must(await c.capture(settings, y.p.id, 1000, opts(uid('cap'))));
    expect(must(await c.refund(settings, y.p.id, 100, opts(uid('ref')))).status).toBe('pending');
    fake.setRefundsPending(false);
  });

  it('maps the events of Dashboard captures, refunds and cancels (flows 8.11, 9.9, 10.12)', async () => {
    const x = await authorized();
    fake.dashboard.capture(x.p.id, 700);
    const succeeded = fake.events('payment_intent.succeeded').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(succeeded)), ctx('authorized'))).toEqual({ kind: 'capture', transactionId: x.p.id, amountCaptured: 700, succeeded: true, final: true });
    const captured = fake.events('charge.captured').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(captured)), ctx('authorized'))).toMatchObject({ kind: 'capture', transactionId: x.p.id, amountCaptured: 700 });
    fake.dashboard.refund(x.p.id, 200);
    const refund = fake.events('refund.created').at(-1)!;
    const out = c.webhookOutcome(Buffer.from(JSON.stringify(refund)), ctx('captured'));
    expect(out).toMatchObject({ kind: 'refund', transactionId: x.p.id, amount: 200 });
    expect(out).not.toHaveProperty('refundId');
    const y = await authorized();
    fake.dashboard.cancel(y.p.id);
    const canceled = fake.events('payment_intent.canceled').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(canceled)), ctx('authorized'))).toMatchObject({ kind: 'payment', transactionId: y.p.id, state: 'canceled' });
  });

  it('marketplace: creates Express accounts with the deterministic key, onboarding links, transfers with source_transaction and reversals, never twice', async () => {
    const s = { ...settings, businessModel: 'marketplace', onboardingCountry: 'DE' };
    const acct = must(await c.onboarding!.createAccount(s, { merchantReference: 'M-1', name: 'Merchant One', tenantIdentifier: tenant }, opts('ignored')));
    expect(acct.accountId).toMatch(/^acct_/);
    expect(acct.status).toBe('pending');
    const call = lastCalls('POST', /^\/v1\/accounts$/).at(-1)!;
    expect(call.idempotencyKey).toBe(keys.account(tenant, 'M-1'));
    expect(call.params).toMatchObject({ country: 'DE', controller: { stripe_dashboard: { type: 'express' }, fees: { payer: 'application' }, losses: { payments: 'application' }, requirement_collection: 'stripe' }, capabilities: { transfers: { requested: 'true' } }, metadata: { tenantIdentifier: tenant, merchantReference: 'M-1' } });
    const again = must(await c.onboarding!.createAccount(s, { merchantReference: 'M-1', name: 'Merchant One', tenantIdentifier: tenant }, opts('ignored')));
    expect(again.accountId).toBe(acct.accountId);
    const link = must(await c.onboarding!.onboardingLink(s, acct.accountId, { successUrl: 'https://mp.example/ok', refreshUrl: 'https://mp.example/refresh' }, budget()));
    expect(link.url).toMatch(/^http/);
    expect(lastCalls('POST', /^\/v1\/account_links$/).at(-1)!.params).toMatchObject({ account: acct.accountId, type: 'account_onboarding', return_url: 'https://mp.example/ok', refresh_url: 'https://mp.example/refresh', collection_options: { fields: 'eventually_due' } });
    fake.setAccountState(acct.accountId, 'enabled');
    const updated = fake.events('account.updated').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(updated)), ctx(null))).toEqual({ kind: 'account', accountId: acct.accountId, merchantStatus: 'enabled' });
    for (const st of ['restricted_soon', 'rejected'] as const) {
      fake.setAccountState(acct.accountId, st);
      expect(c.webhookOutcome(Buffer.from(JSON.stringify(fake.events('account.updated').at(-1)!)), ctx(null))).toMatchObject({ merchantStatus: st === 'restricted_soon' ? 'restricted soon' : 'rejected' });
    }

    const dest = fake.addConnectedAccount({ state: 'enabled' });
    const x = await authorized(s);
    must(await c.capture(s, x.p.id, 1000, opts(uid('cap'))));
    const payoutId = uid('payout');
    const req = { amount: 600, currency: 'EUR', destinationAccountId: dest, transferGroup: x.ref, sourceTransactionId: x.p.id, payoutId, tenantIdentifier: tenant, merchantReference: 'M-2' };
    fake.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'reset-after-write' });
    expect((await c.transfers!.createTransfer(s, req, opts(payoutId))).ok).toBe(false);
    const tr = must(await c.transfers!.createTransfer(s, req, opts(payoutId)));
    fake.expireIdempotencyKeys();
    expect(must(await c.transfers!.createTransfer(s, req, opts(payoutId))).pspTransferId).toBe(tr.pspTransferId);
    const trCalls = lastCalls('POST', /^\/v1\/transfers$/);
    expect(trCalls.at(-1)).toBeDefined();
    expect(trCalls.filter((r) => !r.replayed)).toHaveLength(1);
    expect(trCalls[0]!).toMatchObject({ idempotencyKey: `oacp_tr_${payoutId}`, params: { amount: '600', currency: 'eur', destination: dest, transfer_group: x.ref, metadata: { payoutId, tenantIdentifier: tenant, merchantReference: 'M-2' } } });
    expect(String(trCalls[0]!.params.source_transaction)).toMatch(/^(ch|py)_/);
    const reversalId = uid('rev');
    const rv = must(await c.transfers!.reverseTransfer(s, tr.pspTransferId, 200, { ...opts(reversalId), reversalId, tenantIdentifier: tenant }));
    expect(rv.pspReversalId).toMatch(/^trr_/);
    fake.expireIdempotencyKeys();
    expect(must(await c.transfers!.reverseTransfer(s, tr.pspTransferId, 200, { ...opts(reversalId), reversalId, tenantIdentifier: tenant })).pspReversalId).toBe(rv.pspReversalId);
    expect(lastCalls('POST', /\/reversals$/).filter((r) => !r.replayed)).toHaveLength(1);
    expect(lastCalls('POST', /\/reversals$/)[0]).toMatchObject({ idempotencyKey: `oacp_trr_${reversalId}`, params: { amount: '200', metadata: { reversalId, tenantIdentifier: tenant } } });
    const reversed = fake.events('transfer.reversed').at(-1)!;
    expect(c.webhookOutcome(Buffer.from(JSON.stringify(reversed)), ctx(null))).toEqual({ kind: 'transfer', pspTransferId: tr.pspTransferId, status: 'succeeded', reversalId: rv.pspReversalId });
    // direct tenants do not transfer
    expect(await c.transfers!.createTransfer(settings, req, opts(uid('p')))).toEqual({ ok: false, failure: expect.objectContaining({ kind: 'declined', code: 'transfers_unsupported' }) });
  });
});

// ---------------------------------------------------------------------------------------------
// Through the app (CONNECTOR=stripe): configure, hosted page, webhook, return, capture (a smoke test; the
// cross-connector contract suite runs every flow)
// ---------------------------------------------------------------------------------------------

import { startTestApp, type TestApp } from './helpers/app.js';
import { publish, until } from './helpers/commands.js';

describe('Stripe connector inside the app (CONNECTOR=stripe, the Stripe fake)', () => {
  let fake: StripeFake;
  let app: TestApp;
  const T = 'stripe-shop';

  beforeAll(async () => {
    fake = await startStripeFake({ webhookRetryDelaysMs: [50, 200] });
    app = await startTestApp({ CONNECTOR: 'stripe', STRIPE_API_BASE: fake.url, STRIPE_JS_URL: `${fake.url}/v3/` });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const configure = (values: Record<string, unknown>) =>
    app.request('/private/configure', { tenant: T, body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify(values) } } } });
  const payment = async (tx: string): Promise<any> => (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [T, tx])).rows[0];

  it('configures with a live credential check, registers the endpoint, pays on the Payment Element page, settles by webhook and captures', async () => {
    const bad = await configure({ secretKey: 'sk_test_unknownunknown1234', publishableKey: fake.account.publishableKey });
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.[0]?.code ?? bad.body.code).toBeDefined();
    expect(bad.text).toContain('secretKey');
    expect(bad.text).not.toContain('sk_test_unknownunknown1234');
    expect((await configure({ secretKey: fake.account.secretKey, publishableKey: fake.account.livePublishableKey })).text).toContain('publishableKey');

    const ok = await configure({ secretKey: fake.account.secretKey, publishableKey: fake.account.publishableKey });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).not.toContain(fake.account.secretKey);
    expect(ok.text).not.toMatch(/whsec_[A-Za-z0-9]/);
    const endpoints = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/webhook_endpoints');
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]!.params.url).toBe(`${app.url}/webhooks/test?endpoint=${T}`);

    const orderReference = uid('DE--');
    const init = await app.request('/private/initialize-payment', {
      tenant: T,
      body: {
        orderData: {
          orderReference,
          grandTotal: 10000,
          currencyCode: 'EUR',
          paymentMethod: 'Stripe',
          items: [1, 2].map((id) => ({ idSalesOrderItem: id, name: `Item ${id}`, sku: `SKU-${id}`, quantity: 1, unitPrice: id === 1 ? 6000 : 4000 })),
        },
        redirectSuccessUrl: 'https://shop.example/en/payment/order-success',
        redirectCancelUrl: 'https://shop.example/en/payment/order-cancel',
      },
    });
    expect(init.status, init.text).toBe(200);
    const order = { orderReference, transactionId: String(init.body.transactionId) };
    expect(order.transactionId).toMatch(/^pi_/);
    const page = await app.request(`/app-payment?transactionId=${order.transactionId}&tenantIdentifier=${T}`);
    expect(page.status, page.text).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(new RegExp(`script-src[^;]*'nonce-[^']+'[^;]*${fake.url.replace(/[.:/]/g, '\\$&')}`));
    expect(page.text).toContain(`src="${fake.url}/v3/"`);
    expect(page.text).toContain(`data-client-secret="${order.transactionId}_secret_`);
    expect(page.text).toContain('<noscript>');

    fake.confirm(order.transactionId, 'pm_card_visa');
    await fake.webhooks.flush();
    const authorized = await until(() => payment(order.transactionId), (p) => p.status === 'authorized', 10_000);
    expect(authorized.status).toBe('authorized');
    const delivered = fake.webhooks.delivered().filter((d) => d.type === 'payment_intent.amount_capturable_updated');
    expect(delivered.at(-1)).toMatchObject({ status: 200 });

    const back = await app.request(`/app-payment/redirect?payment_intent=${order.transactionId}&payment_intent_client_secret=x&redirect_status=succeeded`);
    expect(back.status).toBe(302);
    expect(back.headers.get('location')).toContain('order-success');

    await publish(app, T, 'CapturePayment', { orderReference: order.orderReference, orderItemIds: [1], amount: 6000, currencyIsoCode: 'EUR' });
    const captured = await until(() => payment(order.transactionId), (p) => p.status === 'captured', 10_000);
    expect([captured.status, Number(captured.captured_amount), Number(captured.released_amount)]).toEqual(['captured', 6000, 4000]);
    const out = await app.deps.db.query<any>('SELECT message_name, payload FROM outbox WHERE ordering_key = $1 ORDER BY seq', [`${T}/payment/${captured.id}`]);
    const status = out.rows.filter((r) => !['PaymentUpdated', 'PaymentCreated'].includes(r.message_name));
    expect(status.map((r) => [r.message_name, r.payload.orderItemIds, r.payload.amount])).toEqual([
      ['PaymentAuthorized', [1, 2], 10000],
      ['PaymentCaptured', [1], 6000],
      ['PaymentCanceled', [], 4000],
    ]);
    expect(JSON.stringify(out.rows)).not.toContain('_secret_');
    const capCall = fake.requests.find((r) => r.path === `/v1/payment_intents/${order.transactionId}/capture`)!;
    expect(capCall.idempotencyKey).toMatch(/^oacp_cap_[0-9a-f-]{36}$/);
  });
});

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
import { apiTarget, keys, sha256Key, STRIPE_API_VERSION } from '../src/connectors/stripe/client.js';
import { createStripeConnector } from '../src/connectors/stripe/connector.js';
import { fromStripeAmount, toStripeAmount } from '../src/connectors/stripe/currency.js';
import { merchantStatusOf, paymentState, splitName, toPspPayment } from '../src/connectors/stripe/mapping.js';
import { CONFIGURATION_KEYS, STRIPE_CAPABILITIES, stripeDeclineMessageKey, validateStripeFormats } from '../src/connectors/stripe/settings.js';
import type { Connector, WebhookContext, WebhookRequest } from '../src/connectors/types.js';
import { isMessageKey } from '../src/i18n/messages.js';

const log = pino({ level: 'silent' });
const connectorFor = (apiBase = 'https://api.stripe.com', jsUrl = 'https://js.stripe.com/v3/'): Connector =>
  createStripeConnector({ apiBase: () => apiBase, jsUrl: () => jsUrl, appIdentifier: () => 'open-acp-pay-test', log });

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

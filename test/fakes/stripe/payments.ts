/**
 * PaymentIntents, Charges, PaymentMethods, ConfirmationTokens and Refunds of the Stripe fake.
 */
import { type Ctx, type Json, type Rec, type State, bool, err, int, invalid, mergeMetadata, newId, now, rand, shipping, str, address } from './core.js';

export type PmBehavior = 'success' | 'decline' | '3ds';

export interface TestPm {
  brand: string;
  last4: string;
  behavior: PmBehavior;
  declineCode?: string;
  message?: string;
  refundFails?: boolean;
}

/** Stripe's test PaymentMethod tokens the fake understands (and the card numbers the stripe.js double maps to them). */
export const TEST_PMS: Record<string, TestPm> = {
  pm_card_visa: { brand: 'visa', last4: '4242', behavior: 'success' },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444', behavior: 'success' },
  pm_card_chargeDeclined: { brand: 'visa', last4: '0002', behavior: 'decline', declineCode: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: {
    brand: 'visa',
    last4: '9995',
    behavior: 'decline',
    declineCode: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  pm_card_threeDSecure2Required: { brand: 'visa', last4: '3220', behavior: '3ds' },
  pm_card_authenticationRequired: { brand: 'visa', last4: '3184', behavior: '3ds' },
  pm_card_refundFail: { brand: 'visa', last4: '5126', behavior: 'success', refundFails: true },
};

export const TEST_CARD_NUMBERS: Record<string, string> = {
  '4242424242424242': 'pm_card_visa',
  '5555555555554444': 'pm_card_mastercard',
  '4000000000000002': 'pm_card_chargeDeclined',
  '4000000000009995': 'pm_card_chargeDeclinedInsufficientFunds',
  '4000000000003220': 'pm_card_threeDSecure2Required',
  '4000002760003184': 'pm_card_authenticationRequired',
  '4000000000005126': 'pm_card_refundFail',
};

const MULTICAPTURE_BRANDS = new Set(['visa', 'mastercard', 'amex', 'discover']);
const PI_OPEN = ['requires_payment_method', 'requires_confirmation', 'requires_action'];

function unexpectedState(pi: Json, action: string): Error {
  return invalid(`This PaymentIntent's ${action} could not be performed because it has a status of ${pi.status}.`, {
    code: 'payment_intent_unexpected_state',
    payment_intent: structuredClone(pi),
  });
}

// ---------------------------------------------------------------------------------------------------------
// PaymentMethods and ConfirmationTokens

function billingDetails(b: Json | undefined): Json {
  return { address: address(b?.address), email: b?.email ?? null, name: b?.name ?? null, phone: b?.phone ?? null, tax_id: null };
}

function cardDetails(t: TestPm): Json {
  return {
    brand: t.brand,
    checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
    country: 'US',
    display_brand: t.brand,
    exp_month: 12,
    exp_year: new Date().getUTCFullYear() + 3,
    fingerprint: rand(16),
    funding: 'credit',
    last4: t.last4,
    networks: { available: [t.brand], preferred: null },
    wallet: null,
  };
}

/** Resolves a `pm_card_*` token (creates a PaymentMethod like Stripe does) or an existing `pm_` id. */
function resolvePm(state: State, ctx: Ctx, pmParam: string, billing?: Json, param = 'payment_method'): Rec {
  const test = TEST_PMS[pmParam];
  if (test) {
    const obj: Json = {
      id: newId('pm'),
      object: 'payment_method',
      allow_redisplay: 'unspecified',
      billing_details: billingDetails(billing),
      card: cardDetails(test),
      created: now(),
      customer: null,
      livemode: ctx.livemode,
      metadata: {},
      type: 'card',
    };
    return state.put('payment_method', ctx.acct, ctx.livemode, obj, { test });
  }
  return state.get(ctx, pmParam, 'payment_method', param);
}

export function createConfirmationToken(state: State, ctx: Ctx, params: Json): Json {
  const pmParam = str(params, 'payment_method') ?? (params.payment_method_data?.type === 'card' ? 'pm_card_visa' : undefined);
  if (!pmParam) throw invalid('Missing required param: payment_method.', { code: 'parameter_missing', param: 'payment_method' });
  const pm = resolvePm(state, ctx, pmParam, params.payment_method_data?.billing_details);
  const obj: Json = {
    id: newId('ctoken'),
    object: 'confirmation_token',
    created: now(),
    expires_at: now() + 12 * 3600,
    livemode: ctx.livemode,
    mandate_data: null,
    payment_intent: null,
    payment_method_options: null,
    payment_method_preview: { ...structuredClone(pm.obj), id: undefined, object: undefined, created: undefined, livemode: undefined, metadata: undefined },
    return_url: str(params, 'return_url') ?? null,
    setup_future_usage: str(params, 'setup_future_usage') ?? null,
    setup_intent: null,
    shipping: shipping(params.shipping),
    use_stripe_sdk: true,
  };
  for (const k of ['id', 'object', 'created', 'livemode', 'metadata']) delete obj.payment_method_preview[k];
  obj.payment_method_preview.customer = null;
  return state.put('confirmation_token', ctx.acct, ctx.livemode, obj, { pm: pm.id }).obj;
}

// ---------------------------------------------------------------------------------------------------------
// PaymentIntents

export function createPaymentIntent(state: State, ctx: Ctx, params: Json): Json {
  const amount = int(params, 'amount', { required: true, min: 1 })!;
  const currency = str(params, 'currency', { required: true })!.toLowerCase();
  if (!/^[a-z]{3}$/.test(currency)) throw invalid(`Invalid currency: ${currency}`, { param: 'currency' });
  if (params.payment_method_types !== undefined)
    throw invalid('Received unknown parameter: payment_method_types', { code: 'parameter_unknown', param: 'payment_method_types' });
  const captureMethod = str(params, 'capture_method', { oneOf: ['automatic', 'automatic_async', 'manual'] }) ?? 'automatic_async';
  const id = newId('pi');
  const card = params.payment_method_options?.card ?? {};
  const obj: Json = {
    id,
    object: 'payment_intent',
    amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: bool(params.automatic_payment_methods ?? {}, 'enabled') === false ? null : { allow_redirects: 'always', enabled: true },
    canceled_at: null,
    cancellation_reason: null,
    capture_method: captureMethod,
    client_secret: `${id}_secret_${rand(25)}`,
    confirmation_method: 'automatic',
    created: now(),
    currency,
    customer: str(params, 'customer') ?? null,
    description: str(params, 'description') ?? null,
    excluded_payment_method_types: Array.isArray(params.excluded_payment_method_types) ? params.excluded_payment_method_types : null,
    last_payment_error: null,
    latest_charge: null,
    livemode: ctx.livemode,
    metadata: mergeMetadata({}, params.metadata),
    next_action: null,
    on_behalf_of: str(params, 'on_behalf_of') ?? null,
    payment_method: null,
    payment_method_options: {
      card: {
        installments: null,
        mandate_options: null,
        network: null,
        request_three_d_secure: 'automatic',
        ...(card.request_multicapture ? { request_multicapture: String(card.request_multicapture) } : {}),
      },
    },
    payment_method_types: ['card'],
    processing: null,
    receipt_email: str(params, 'receipt_email') ?? null,
    review: null,
    setup_future_usage: str(params, 'setup_future_usage') ?? null,
    shipping: shipping(params.shipping),
    statement_descriptor: null,
    statement_descriptor_suffix: str(params, 'statement_descriptor_suffix') ?? null,
    status: 'requires_payment_method',
    transfer_data: null,
    transfer_group: str(params, 'transfer_group') ?? null,
  };
  if (obj.statement_descriptor_suffix && obj.statement_descriptor_suffix.length > 22)
    throw invalid('statement_descriptor_suffix can be at most 22 characters.', { param: 'statement_descriptor_suffix' });
  const rec = state.put('payment_intent', ctx.acct, ctx.livemode, obj);
  state.emit(ctx, 'payment_intent.created', obj);
  if (typeof params.payment_method === 'string') {
    obj.payment_method = resolvePm(state, ctx, params.payment_method).id;
    obj.status = 'requires_confirmation';
  }
  if (bool(params, 'confirm')) return confirmPaymentIntent(state, ctx, rec, params);
  return obj;
}

export function updatePaymentIntent(state: State, ctx: Ctx, rec: Rec, params: Json): Json {
  const pi = rec.obj;
  const amount = int(params, 'amount', { min: 1 });
  if (amount !== undefined && amount !== pi.amount) {
    // [unconfirmed] an amount change after an unfinished confirmation needs a new confirmation.
    if (!PI_OPEN.includes(pi.status)) throw unexpectedState(pi, 'amount');
    pi.amount = amount;
    if (pi.status === 'requires_action') {
      pi.status = 'requires_confirmation';
      pi.next_action = null;
    }
  }
  if (params.currency !== undefined) {
    if (!PI_OPEN.includes(pi.status)) throw unexpectedState(pi, 'currency');
    pi.currency = str(params, 'currency')!.toLowerCase();
  }
  if (params.payment_method_types !== undefined)
    throw invalid('Received unknown parameter: payment_method_types', { code: 'parameter_unknown', param: 'payment_method_types' });
  if (typeof params.payment_method === 'string') {
    if (!PI_OPEN.includes(pi.status)) throw unexpectedState(pi, 'payment_method');
    pi.payment_method = resolvePm(state, ctx, params.payment_method).id;
    pi.status = 'requires_confirmation';
    pi.next_action = null;
  }
  for (const k of ['description', 'receipt_email', 'statement_descriptor_suffix', 'transfer_group', 'setup_future_usage']) {
    if (params[k] !== undefined) pi[k] = params[k] === '' ? null : str(params, k);
  }
  if (params.shipping !== undefined) pi.shipping = params.shipping === '' ? null : shipping(params.shipping);
  if (params.capture_method !== undefined) {
    if (!PI_OPEN.includes(pi.status)) throw unexpectedState(pi, 'capture_method');
    pi.capture_method = str(params, 'capture_method', { oneOf: ['automatic', 'automatic_async', 'manual'] });
  }
  pi.metadata = mergeMetadata(pi.metadata, params.metadata);
  return pi;
}

/** Confirms with `payment_method` (test PM token or pm_ id) or `confirmation_token`, as the API and the browser do. */
export function confirmPaymentIntent(state: State, ctx: Ctx, rec: Rec, params: Json): Json {
  const pi = rec.obj;
  if (!PI_OPEN.includes(pi.status)) throw unexpectedState(pi, 'confirm');
  let pmId: string | null = null;
  const ctId = str(params, 'confirmation_token');
  if (ctId) {
    const ct = state.get(ctx, ctId, 'confirmation_token', 'confirmation_token');
    if (ct.obj.payment_intent && ct.obj.payment_intent !== pi.id)
      throw invalid('This ConfirmationToken has already been used.', { param: 'confirmation_token' });
    ct.obj.payment_intent = pi.id;
    pmId = ct.x.pm;
    if (ct.obj.shipping) pi.shipping = structuredClone(ct.obj.shipping);
    if (ct.obj.return_url) rec.x.returnUrl = ct.obj.return_url;
  }
  const pmParam = str(params, 'payment_method');
  if (pmParam) pmId = resolvePm(state, ctx, pmParam, params.payment_method_data?.billing_details).id;
  pmId ??= pi.payment_method;
  if (!pmId)
    throw invalid('You cannot confirm this PaymentIntent because it\'s missing a payment method.', {
      code: 'payment_intent_unexpected_state',
      payment_intent: structuredClone(pi),
    });
  const returnUrl = str(params, 'return_url');
  if (returnUrl) rec.x.returnUrl = returnUrl;
  if (params.shipping !== undefined) pi.shipping = shipping(params.shipping);
  if (params.receipt_email !== undefined) pi.receipt_email = str(params, 'receipt_email') ?? null;
  pi.payment_method = pmId;
  pi.last_payment_error = null;
  pi.next_action = null;
  const pm = state.recs.get(pmId)!;
  const test: TestPm = pm.x.test ?? TEST_PMS.pm_card_visa;
  if (test.behavior === 'decline') return decline(state, ctx, rec, pm, { code: 'card_declined', decline_code: test.declineCode!, message: test.message! });
  if (test.behavior === '3ds') {
    if (bool(params, 'off_session'))
      return decline(state, ctx, rec, pm, {
        code: 'authentication_required',
        decline_code: 'authentication_required',
        message: 'Your card was declined. This transaction requires authentication.',
      });
    const url = `${state.base}/challenge/${pi.id}?client_secret=${encodeURIComponent(pi.client_secret)}`;
    pi.status = 'requires_action';
    pi.next_action = rec.x.returnUrl
      ? { type: 'redirect_to_url', redirect_to_url: { return_url: rec.x.returnUrl, url } }
      : { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: url, source: `src_${rand(24)}` } };
    state.emit(ctx, 'payment_intent.requires_action', pi);
    return pi;
  }
  if (rec.x.processNext) {
    // fake-only: an asynchronous method (SEPA-like) stays `processing` until settleProcessing()
    rec.x.processNext = false;
    pi.status = 'processing';
    pi.processing = { type: 'card', card: {} };
    state.emit(ctx, 'payment_intent.processing', pi);
    return pi;
  }
  return authorize(state, ctx, rec, pm);
}

/** Ends `processing`: authorized/captured (ok) or declined back to `requires_payment_method`. */
export function settleProcessing(state: State, rec: Rec, ok: boolean): Json {
  const pi = rec.obj;
  if (pi.status !== 'processing') throw unexpectedState(pi, 'settlement');
  pi.processing = null;
  const pm = state.recs.get(pi.payment_method)!;
  if (ok) return authorize(state, state.ctxOf(rec), rec, pm);
  return recordDecline(state, state.ctxOf(rec), rec, pm, { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' });
}

/** Stripe cancels an uncaptured authorization when it expires (`cancellation_reason: automatic`). */
export function expireAuthorization(state: State, rec: Rec): Json {
  if (rec.obj.status !== 'requires_capture') throw unexpectedState(rec.obj, 'expiry');
  return cancelPaymentIntent(state, state.ctxOf(rec), rec, {}, 'automatic');
}

function newCharge(state: State, ctx: Ctx, pi: Json, pm: Rec, status: 'succeeded' | 'failed', failure?: Json): Rec {
  const test: TestPm = pm.x.test ?? TEST_PMS.pm_card_visa;
  const multicapture =
    pi.capture_method === 'manual' && pi.payment_method_options?.card?.request_multicapture === 'if_available' && MULTICAPTURE_BRANDS.has(test.brand);
  const obj: Json = {
    id: newId('ch'),
    object: 'charge',
    amount: pi.amount,
    amount_captured: 0,
    amount_refunded: 0,
    application_fee_amount: null,
    balance_transaction: null,
    billing_details: structuredClone(pm.obj.billing_details),
    captured: false,
    created: now(),
    currency: pi.currency,
    customer: pi.customer,
    description: pi.description,
    disputed: false,
    failure_code: failure?.code ?? null,
    failure_message: failure?.message ?? null,
    livemode: ctx.livemode,
    metadata: structuredClone(pi.metadata),
    outcome:
      status === 'succeeded'
        ? { network_status: 'approved_by_network', reason: null, risk_level: 'normal', seller_message: 'Payment complete.', type: 'authorized' }
        : { network_status: 'declined_by_network', reason: failure?.decline_code, risk_level: 'normal', seller_message: 'The bank did not return any further details with this decline.', type: 'issuer_declined' },
    paid: status === 'succeeded',
    payment_intent: pi.id,
    payment_method: pm.id,
    payment_method_details: {
      type: 'card',
      card: {
        ...cardDetails(test),
        fingerprint: pm.obj.card?.fingerprint ?? rand(16),
        amount_authorized: pi.amount,
        capture_before: now() + 7 * 86400,
        multicapture: { status: multicapture ? 'available' : 'unavailable' },
        overcapture: { maximum_amount_capturable: pi.amount, status: 'unavailable' },
        incremental_authorization: { status: 'unavailable' },
        three_d_secure: test.behavior === '3ds' ? { authentication_flow: 'challenge', result: 'authenticated', version: '2.2.0' } : null,
      },
    },
    receipt_email: pi.receipt_email,
    refunded: false,
    shipping: structuredClone(pi.shipping),
    status,
    transfer_group: pi.transfer_group,
  };
  return state.put('charge', ctx.acct, ctx.livemode, obj, { refundFails: !!test.refundFails, captures: 0 });
}

function decline(state: State, ctx: Ctx, rec: Rec, pm: Rec, e: { code: string; decline_code: string; message: string }): never {
  const pi = recordDecline(state, ctx, rec, pm, e);
  throw err(402, 'card_error', e.message, {
    code: e.code,
    decline_code: e.decline_code,
    charge: pi.latest_charge,
    payment_intent: structuredClone(pi),
    payment_method: structuredClone(pm.obj),
  });
}

function recordDecline(state: State, ctx: Ctx, rec: Rec, pm: Rec, e: { code: string; decline_code: string; message: string }): Json {
  const pi = rec.obj;
  const ch = newCharge(state, ctx, pi, pm, 'failed', e);
  pi.latest_charge = ch.id;
  pi.status = 'requires_payment_method';
  pi.payment_method = null;
  pi.last_payment_error = {
    type: 'card_error',
    charge: ch.id,
    code: e.code,
    decline_code: e.decline_code,
    doc_url: `https://stripe.com/docs/error-codes/${e.code.replace(/_/g, '-')}`,
    message: e.message,
    payment_method: structuredClone(pm.obj),
  };
  state.emit(ctx, 'charge.failed', ch.obj);
  state.emit(ctx, 'payment_intent.payment_failed', pi);
  return pi;
}

function authorize(state: State, ctx: Ctx, rec: Rec, pm: Rec): Json {
  const pi = rec.obj;
  const ch = newCharge(state, ctx, pi, pm, 'succeeded');
  pi.latest_charge = ch.id;
  pi.next_action = null;
  pi.last_payment_error = null;
  if (pi.capture_method === 'manual') {
    pi.status = 'requires_capture';
    pi.amount_capturable = pi.amount;
    state.emit(ctx, 'charge.succeeded', ch.obj);
    state.emit(ctx, 'payment_intent.amount_capturable_updated', pi);
  } else {
    pi.status = 'succeeded';
    pi.amount_received = pi.amount;
    ch.obj.captured = true;
    ch.obj.amount_captured = pi.amount;
    state.balance(ctx.acct, ctx.livemode, pi.currency).pending += pi.amount;
    state.emit(ctx, 'charge.succeeded', ch.obj);
    state.emit(ctx, 'payment_intent.succeeded', pi);
  }
  return pi;
}

/** Completes (ok) or fails the 3DS challenge of a PaymentIntent in `requires_action`. */
export function completeChallenge(state: State, rec: Rec, ok: boolean): Json {
  const pi = rec.obj;
  const ctx = state.ctxOf(rec);
  if (pi.status !== 'requires_action') throw unexpectedState(pi, 'authentication');
  const pm = state.recs.get(pi.payment_method)!;
  if (ok) return authorize(state, ctx, rec, pm);
  pi.status = 'requires_payment_method';
  pi.next_action = null;
  pi.payment_method = null;
  pi.last_payment_error = {
    type: 'invalid_request_error',
    code: 'payment_intent_authentication_failure',
    doc_url: 'https://stripe.com/docs/error-codes/payment-intent-authentication-failure',
    message: 'We are unable to authenticate your payment method. Please choose a different payment method and try again.',
    payment_method: structuredClone(pm.obj),
  };
  state.emit(ctx, 'payment_intent.payment_failed', pi);
  return pi;
}

export function capturePaymentIntent(state: State, ctx: Ctx, rec: Rec, params: Json): Json {
  const pi = rec.obj;
  if (pi.status !== 'requires_capture') throw unexpectedState(pi, 'capture');
  const ch = state.recs.get(pi.latest_charge)!;
  const multicapture = ch.obj.payment_method_details.card.multicapture.status === 'available';
  const amount = int(params, 'amount_to_capture', { min: 1 }) ?? pi.amount_capturable;
  if (amount > pi.amount_capturable)
    throw invalid(`The amount_to_capture (${amount}) is greater than the amount capturable (${pi.amount_capturable}).`, {
      code: 'amount_too_large',
      param: 'amount_to_capture',
      payment_intent: structuredClone(pi),
    });
  const finalParam = bool(params, 'final_capture');
  if (finalParam === false && !multicapture)
    throw invalid('final_capture=false is only supported for PaymentIntents with multicapture available.', { param: 'final_capture' });
  if (multicapture && ch.x.captures >= 50) throw invalid('This PaymentIntent has reached the maximum number of captures (50).', { param: 'amount_to_capture' });
  const final = !multicapture || finalParam !== false || amount === pi.amount_capturable;
  ch.x.captures++;
  pi.amount_received += amount;
  pi.amount_capturable = final ? 0 : pi.amount_capturable - amount;
  pi.metadata = mergeMetadata(pi.metadata, params.metadata);
  ch.obj.amount_captured += amount;
  ch.obj.captured = true;
  state.balance(ctx.acct, ctx.livemode, pi.currency).pending += amount;
  state.emit(ctx, 'charge.captured', ch.obj);
  if (final) {
    pi.status = 'succeeded';
    state.emit(ctx, 'payment_intent.succeeded', pi);
  }
  return pi;
}

export function cancelPaymentIntent(state: State, ctx: Ctx, rec: Rec, params: Json, byStripe?: 'automatic'): Json {
  const pi = rec.obj;
  if (!['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing'].includes(pi.status))
    throw unexpectedState(pi, 'cancel');
  const reason = str(params, 'cancellation_reason', { oneOf: ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'] });
  pi.amount_capturable = 0;
  pi.next_action = null;
  pi.canceled_at = now();
  pi.cancellation_reason = byStripe ?? reason ?? null;
  // [unconfirmed] end status of a partially captured multicapture PI: configurable, default canceled.
  pi.status = pi.amount_received > 0 ? state.multicaptureCancelStatus : 'canceled';
  state.emit(ctx, pi.status === 'canceled' ? 'payment_intent.canceled' : 'payment_intent.succeeded', pi);
  return pi;
}

/** GET /v1/payment_intents/search: supports `metadata['k']:'v'`, `status:'x'`, `currency:'x'` joined by AND. */
export function searchPaymentIntents(state: State, ctx: Ctx, params: Json): Json {
  const query = str(params, 'query', { required: true })!;
  const clauses = query.split(/\s+AND\s+/i).map((c) => {
    const m = /^(metadata\[['"]([^'"]+)['"]\]|status|currency)\s*:\s*['"]([^'"]*)['"]$/.exec(c.trim());
    if (!m) throw invalid(`Unsupported search query: ${c}`, { param: 'query' });
    return m[2] ? (o: Json) => o.metadata?.[m[2]] === m[3] : (o: Json) => String(o[m[1]]) === m[3];
  });
  const data = [...state.recs.values()]
    .filter((r) => r.type === 'payment_intent' && r.acct === ctx.acct && r.livemode === ctx.livemode && clauses.every((f) => f(r.obj)))
    .sort((a, b) => b.seq - a.seq)
    .map((r) => r.obj);
  const limit = Math.min(Number(params.limit ?? 10) || 10, 100);
  return { object: 'search_result', data: data.slice(0, limit), has_more: data.length > limit, next_page: null, url: '/v1/payment_intents/search' };
}

// ---------------------------------------------------------------------------------------------------------
// Refunds

export function createRefund(state: State, ctx: Ctx, params: Json): Json {
  let pi: Rec | undefined;
  let ch: Rec;
  const piId = str(params, 'payment_intent');
  const chId = str(params, 'charge');
  if (piId) {
    pi = state.get(ctx, piId, 'payment_intent', 'payment_intent');
    if (!pi.obj.latest_charge || !['succeeded', 'canceled'].includes(pi.obj.status) || pi.obj.amount_received === 0)
      throw invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, { code: 'charge_not_refundable', param: 'payment_intent' });
    ch = state.recs.get(pi.obj.latest_charge)!;
  } else if (chId) {
    ch = state.get(ctx, chId, 'charge', 'charge');
    pi = ch.obj.payment_intent ? state.recs.get(ch.obj.payment_intent) : undefined;
  } else throw invalid('One of the following params should be provided for this request: payment_intent or charge.', { code: 'parameter_missing' });
  const available = ch.obj.amount_captured - ch.obj.amount_refunded;
  if (available <= 0) throw invalid(`Charge ${ch.id} has already been refunded.`, { code: 'charge_already_refunded', charge: ch.id });
  const amount = int(params, 'amount', { min: 1 }) ?? available;
  if (amount > available)
    throw invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${available})`, { code: 'amount_too_large', param: 'amount' });
  const pending = state.refundsPending || ch.x.refundFails;
  const obj: Json = {
    id: newId('re'),
    object: 'refund',
    amount,
    balance_transaction: null,
    charge: ch.id,
    created: now(),
    currency: ch.obj.currency,
    destination_details: { card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' }, type: 'card' },
    metadata: mergeMetadata({}, params.metadata),
    payment_intent: pi?.id ?? null,
    reason: str(params, 'reason', { oneOf: ['duplicate', 'fraudulent', 'requested_by_customer'] }) ?? null,
    receipt_number: null,
    source_transfer_reversal: null,
    status: pending ? 'pending' : 'succeeded',
    transfer_reversal: null,
  };
  const rec = state.put('refund', ctx.acct, ctx.livemode, obj, { failLater: !!ch.x.refundFails });
  ch.obj.amount_refunded += amount;
  ch.obj.refunded = ch.obj.amount_refunded >= ch.obj.amount_captured;
  state.emit(ctx, 'refund.created', obj);
  state.emit(ctx, 'charge.refunded', ch.obj);
  return rec.obj;
}

function setRefundStatus(state: State, rec: Rec, status: 'succeeded' | 'failed' | 'canceled', failureReason?: string): void {
  const r = rec.obj;
  if (r.status === status) return;
  const ctx = state.ctxOf(rec);
  const previous = { status: r.status };
  r.status = status;
  if (status !== 'succeeded') {
    r.failure_reason = failureReason ?? 'unknown';
    r.failure_balance_transaction = `txn_${rand(24)}`;
    const ch = state.recs.get(r.charge)!;
    ch.obj.amount_refunded -= r.amount;
    ch.obj.refunded = false;
    if (status === 'failed') state.emit(ctx, 'refund.failed', r);
  }
  state.emit(ctx, 'refund.updated', r, previous);
  state.emit(ctx, 'charge.refund.updated', r, previous);
}

/** Settles every pending refund: refunds of the refund-fail card fail, the others succeed. */
export function settleRefunds(state: State): Json[] {
  const done: Json[] = [];
  for (const rec of [...state.recs.values()].filter((r) => r.type === 'refund' && r.obj.status === 'pending')) {
    setRefundStatus(state, rec, rec.x.failLater ? 'failed' : 'succeeded', rec.x.failLater ? 'expired_or_canceled_card' : undefined);
    done.push(rec.obj);
  }
  return done;
}

/** Fails a refund (pending or already succeeded: Stripe's late failure). */
export function failRefund(state: State, id: string, reason = 'expired_or_canceled_card'): Json {
  const rec = state.must(id, 'refund');
  setRefundStatus(state, rec, 'failed', reason);
  return rec.obj;
}

export function listRefunds(state: State, ctx: Ctx, params: Json): Json {
  const pi = str(params, 'payment_intent');
  const ch = str(params, 'charge');
  return state.list(ctx, 'refund', params, '/v1/refunds', (r) => (!pi || r.obj.payment_intent === pi) && (!ch || r.obj.charge === ch));
}

/**
 * The Stripe fake (test/fakes/stripe) driven through the real `stripe` SDK, as the connector will drive it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PINNED_API_VERSION, type StripeFake, startStripeFake } from './fakes/stripe/index.js';
import { browserAvailable, launchChromium } from './helpers/services.js';

/** stripe.md 4.4 pins this API version. */
const API_VERSION = '2026-10-28.endive';

let fake: StripeFake;
let stripe: Stripe;

const client = (key: string, extra: Partial<Stripe.StripeConfig> = {}): Stripe =>
  new Stripe(key, { host: '127.0.0.1', port: fake.port, protocol: 'http', apiVersion: API_VERSION as Stripe.LatestApiVersion, maxNetworkRetries: 0, ...extra });

async function stripeError(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected a Stripe error');
}

/** A webhook receiver collecting raw bodies and signatures; answers `status` (default 200). */
async function receiver(): Promise<{ url: string; got: { body: string; signature: string }[]; status: number; close(): Promise<void> }> {
  const r = {
    url: '',
    got: [] as { body: string; signature: string }[],
    status: 200,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.got.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(req.headers['stripe-signature']) });
      res.writeHead(r.status).end(r.status === 200 ? '{"received":true}' : 'nope');
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
  return r;
}

beforeAll(async () => {
  fake = await startStripeFake();
  stripe = client(fake.account.secretKey);
});

afterAll(async () => {
  await fake.close();
});

afterEach(() => {
  fake.clearFaults();
  fake.webhooks.setMode({ duplicate: false, outOfOrder: false, delayMs: 0 });
  fake.webhooks.resume();
  fake.setRefundsPending(false);
});

const createPi = (params: Partial<Stripe.PaymentIntentCreateParams> = {}, opts?: Stripe.RequestOptions) =>
  stripe.paymentIntents.create({ amount: 1000, currency: 'eur', capture_method: 'manual', automatic_payment_methods: { enabled: true }, ...params }, opts);

describe('wire format', () => {
  it('pins the same API version as stripe.md 4.4 and echoes Stripe-Version and Request-Id', async () => {
    expect(PINNED_API_VERSION).toBe(API_VERSION);
    const pi = await createPi({ metadata: { paymentId: 'p-1', tenantIdentifier: 't1' } });
    expect(pi.id).toMatch(/^pi_/);
    expect(pi.object).toBe('payment_intent');
    expect(pi.client_secret).toMatch(new RegExp(`^${pi.id}_secret_`));
    expect(pi.livemode).toBe(false);
    expect(pi.metadata).toEqual({ paymentId: 'p-1', tenantIdentifier: 't1' });
    expect(pi.lastResponse.headers['stripe-version']).toBe(API_VERSION);
    expect(pi.lastResponse.requestId).toMatch(/^req_/);
    const logged = fake.requests.find((r) => r.requestId === pi.lastResponse.requestId)!;
    expect(logged).toMatchObject({ method: 'POST', path: '/v1/payment_intents', stripeVersion: API_VERSION, account: null, keyAccount: fake.account.id });
    expect(logged.params).toMatchObject({ amount: '1000', capture_method: 'manual', metadata: { paymentId: 'p-1' } });
  });

  it('refuses unknown keys (401), restricted keys without permission (403) and answers 404 for unknown objects', async () => {
    const bad = await stripeError(client('sk_test_unknownkey1234567890').paymentIntents.list({ limit: 1 }));
    expect(bad.statusCode).toBe(401);
    expect(bad.type).toBe('StripeAuthenticationError');
    const rk = fake.addKey({ kind: 'restricted', permissions: ['refunds'] });
    const denied = await stripeError(client(rk).paymentIntents.list({ limit: 1 }));
    expect(denied.statusCode).toBe(403);
    expect(denied.type).toBe('StripePermissionError');
    expect((await client(fake.account.restrictedKey).paymentIntents.list({ limit: 1 })).object).toBe('list');
    const noAccount = await stripeError(client(fake.account.restrictedKey).accounts.retrieveCurrent());
    expect(noAccount.statusCode).toBe(403);
    expect((await stripe.accounts.retrieveCurrent()).id).toBe(fake.account.id);
    const pk = await stripeError(client(fake.account.publishableKey).paymentIntents.list({ limit: 1 }));
    expect(pk.statusCode).toBe(401);
    const fixed = fake.addKey({ key: 'sk_test_fixedKeyForFixtures0001', kind: 'secret' });
    expect((await client(fixed).paymentIntents.list({ limit: 1 })).object).toBe('list');
    const missing = await stripeError(stripe.paymentIntents.retrieve('pi_doesnotexist'));
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe('resource_missing');
  });

  it('separates test and live mode objects', async () => {
    const live = client(fake.account.liveSecretKey);
    const pi = await live.paymentIntents.create({ amount: 500, currency: 'eur' });
    expect(pi.livemode).toBe(true);
    expect((await stripeError(stripe.paymentIntents.retrieve(pi.id))).statusCode).toBe(404);
    expect((await live.paymentIntents.retrieve(pi.id)).id).toBe(pi.id);
  });

  it('replays an idempotent request and refuses the same key with other parameters', async () => {
    const key = `oacp_pi_${Date.now()}`;
    const a = await createPi({ amount: 1200 }, { idempotencyKey: key });
    const b = await createPi({ amount: 1200 }, { idempotencyKey: key });
    expect(b.id).toBe(a.id);
    expect(b.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(a.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    const e = await stripeError(createPi({ amount: 1300 }, { idempotencyKey: key }));
    expect(e.statusCode).toBe(400);
    expect(e.type).toBe('StripeIdempotencyError');
    expect(e.raw).toMatchObject({ type: 'idempotency_error' });
    // keys are per account: the same key on a connected account is a new request
    const acct = fake.addConnectedAccount();
    const other = await createPi({ amount: 1300 }, { idempotencyKey: key, stripeAccount: acct });
    expect(other.id).not.toBe(a.id);
    expect(fake.requests.at(-1)?.account).toBe(acct);
    // after Stripe pruned the key, the same request creates again
    fake.expireIdempotencyKeys();
    expect((await createPi({ amount: 1200 }, { idempotencyKey: key })).id).not.toBe(a.id);
  });

  it('expands latest_charge and payment_method', async () => {
    const pi = await createPi();
    fake.confirm(pi.id, 'pm_card_visa');
    const got = await stripe.paymentIntents.retrieve(pi.id, { expand: ['latest_charge', 'payment_method'] });
    const ch = got.latest_charge as Stripe.Charge;
    expect(ch.object).toBe('charge');
    expect(ch.id).toMatch(/^ch_/);
    expect(ch.payment_method_details?.card).toMatchObject({ brand: 'visa', last4: '4242', multicapture: { status: 'unavailable' } });
    expect((got.payment_method as Stripe.PaymentMethod).card?.last4).toBe('4242');
  });
});

describe('PaymentIntents', () => {
  it('authorizes with pm_card_visa (manual capture) and captures in full', async () => {
    const pi = await createPi();
    expect(pi.status).toBe('requires_payment_method');
    const c = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa', return_url: 'https://shop.example/return' });
    expect(c).toMatchObject({ status: 'requires_capture', amount_capturable: 1000, amount_received: 0 });
    const cap = await stripe.paymentIntents.capture(pi.id, {}, { idempotencyKey: `cap-${pi.id}` });
    expect(cap).toMatchObject({ status: 'succeeded', amount_capturable: 0, amount_received: 1000 });
    const e = await stripeError(stripe.paymentIntents.cancel(pi.id));
    expect(e.code).toBe('payment_intent_unexpected_state');
  });

  it('captures automatically with capture_method automatic', async () => {
    const pi = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true, return_url: 'https://shop.example/r' });
    expect(pi).toMatchObject({ status: 'succeeded', amount_received: 1000 });
  });

  it('declines pm_card_chargeDeclined and pm_card_chargeDeclinedInsufficientFunds with 402 and last_payment_error', async () => {
    for (const [pm, decline] of [
      ['pm_card_chargeDeclined', 'generic_decline'],
      ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds'],
    ]) {
      const pi = await createPi();
      const e = await stripeError(stripe.paymentIntents.confirm(pi.id, { payment_method: pm }));
      expect(e.statusCode).toBe(402);
      expect(e.type).toBe('StripeCardError');
      expect(e.code).toBe('card_declined');
      expect(e.decline_code).toBe(decline);
      expect(e.payment_intent?.id).toBe(pi.id);
      const after = await stripe.paymentIntents.retrieve(pi.id);
      expect(after.status).toBe('requires_payment_method');
      expect(after.last_payment_error).toMatchObject({ type: 'card_error', code: 'card_declined', decline_code: decline });
      // a declined PI can be retried
      expect((await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' })).status).toBe('requires_capture');
    }
  });

  it('requires 3DS for pm_card_threeDSecure2Required and pm_card_authenticationRequired; the challenge completes or fails', async () => {
    const pi = await createPi();
    const c = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_threeDSecure2Required', return_url: 'https://shop.example/return?x=1' });
    expect(c.status).toBe('requires_action');
    expect(c.next_action?.type).toBe('redirect_to_url');
    const challenge = c.next_action!.redirect_to_url!.url!;
    expect(challenge.startsWith(`${fake.url}/challenge/${pi.id}`)).toBe(true);
    expect((await fetch(challenge)).status).toBe(200);
    const res = await fetch(challenge, { method: 'POST', body: new URLSearchParams({ action: 'complete', client_secret: pi.client_secret! }), redirect: 'manual' });
    expect(res.status).toBe(303);
    const back = new URL(res.headers.get('location')!);
    expect(back.origin + back.pathname).toBe('https://shop.example/return');
    expect(Object.fromEntries(back.searchParams)).toEqual({ x: '1', payment_intent: pi.id, payment_intent_client_secret: pi.client_secret, redirect_status: 'succeeded' });
    expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('requires_capture');

    const pi2 = await createPi();
    await stripe.paymentIntents.confirm(pi2.id, { payment_method: 'pm_card_authenticationRequired', return_url: 'https://shop.example/return' });
    const failed = fake.completeChallenge(pi2.id, false);
    expect(failed.status).toBe('requires_payment_method');
    expect(failed.last_payment_error.code).toBe('payment_intent_authentication_failure');

    const pi3 = await createPi();
    const off = await stripeError(stripe.paymentIntents.confirm(pi3.id, { payment_method: 'pm_card_authenticationRequired', off_session: true }));
    expect(off.code).toBe('authentication_required');
  });

  it('updates the amount before authorization only', async () => {
    const pi = await createPi();
    expect((await stripe.paymentIntents.update(pi.id, { amount: 1500 })).amount).toBe(1500);
    fake.confirm(pi.id, 'pm_card_visa');
    const e = await stripeError(stripe.paymentIntents.update(pi.id, { amount: 1600 }));
    expect(e.code).toBe('payment_intent_unexpected_state');
    expect(e.statusCode).toBe(400);
  });

  it('captures partially (single capture releases the rest) and refuses more than capturable', async () => {
    const pi = await createPi();
    fake.confirm(pi.id, 'pm_card_visa');
    const tooMuch = await stripeError(stripe.paymentIntents.capture(pi.id, { amount_to_capture: 1001 }));
    expect(tooMuch.code).toBe('amount_too_large');
    const noMulti = await stripeError(stripe.paymentIntents.capture(pi.id, { amount_to_capture: 300, final_capture: false }));
    expect(noMulti.statusCode).toBe(400);
    const cap = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 300 });
    expect(cap).toMatchObject({ status: 'succeeded', amount_received: 300, amount_capturable: 0 });
  });

  it('multicaptures with request_multicapture=if_available, then a final capture', async () => {
    const pi = await createPi({ payment_method_options: { card: { request_multicapture: 'if_available' } } });
    fake.confirm(pi.id, 'pm_card_visa');
    const ch = await stripe.charges.retrieve((await stripe.paymentIntents.retrieve(pi.id)).latest_charge as string);
    expect(ch.payment_method_details?.card?.multicapture?.status).toBe('available');
    const a = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 200, final_capture: false });
    expect(a).toMatchObject({ status: 'requires_capture', amount_received: 200, amount_capturable: 800 });
    const b = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 300, final_capture: false });
    expect(b).toMatchObject({ status: 'requires_capture', amount_received: 500, amount_capturable: 500 });
    const c = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 100, final_capture: true });
    expect(c).toMatchObject({ status: 'succeeded', amount_received: 600, amount_capturable: 0 });
    expect((await stripe.charges.retrieve(ch.id)).amount_captured).toBe(600);
  });

  it('releases the remainder of a partially captured multicapture PI by cancel (end status switchable)', async () => {
    for (const end of ['canceled', 'succeeded'] as const) {
      fake.setMulticaptureCancelStatus(end);
      const pi = await createPi({ payment_method_options: { card: { request_multicapture: 'if_available' } } });
      fake.confirm(pi.id, 'pm_card_visa');
      await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 250, final_capture: false });
      const c = await stripe.paymentIntents.cancel(pi.id);
      expect(c).toMatchObject({ status: end, amount_received: 250, amount_capturable: 0 });
    }
    fake.setMulticaptureCancelStatus('canceled');
  });

  it('cancels, and refuses to cancel twice', async () => {
    const pi = await createPi();
    fake.confirm(pi.id, 'pm_card_visa');
    const c = await stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'requested_by_customer' });
    expect(c).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer', amount_capturable: 0 });
    expect((await stripeError(stripe.paymentIntents.cancel(pi.id))).code).toBe('payment_intent_unexpected_state');
  });

  it('holds a confirmation in processing until settled, and expires an uncaptured authorization', async () => {
    const pi = await createPi();
    expect(fake.confirm(pi.id, 'pm_card_visa', { processing: true }).status).toBe('processing');
    expect(fake.settleProcessing(pi.id, true).status).toBe('requires_capture');
    const pi2 = await createPi();
    fake.confirm(pi2.id, 'pm_card_visa', { processing: true });
    const failed = fake.settleProcessing(pi2.id, false);
    expect(failed.status).toBe('requires_payment_method');
    expect(failed.last_payment_error.code).toBe('card_declined');
    const expired = fake.expireAuthorization(pi.id);
    expect(expired).toMatchObject({ status: 'canceled', cancellation_reason: 'automatic' });
    const ev = fake.events('payment_intent.canceled').at(-1)!;
    expect(ev.data.object).toMatchObject({ id: pi.id, cancellation_reason: 'automatic' });
    expect(fake.events('payment_intent.processing').map((e) => e.data.object.id)).toEqual([pi.id, pi2.id]);
  });

  it('lists and searches PaymentIntents by metadata', async () => {
    const tag = `pay-${Date.now()}`;
    const pi = await createPi({ metadata: { paymentId: tag } });
    const found = await stripe.paymentIntents.search({ query: `metadata['paymentId']:'${tag}'` });
    expect(found.data.map((p) => p.id)).toEqual([pi.id]);
    const list = await stripe.paymentIntents.list({ limit: 2 });
    expect(list.data[0].id).toBe(pi.id);
    expect(list.has_more).toBe(true);
  });
});

describe('webhooks', () => {
  it('registers endpoints (secret only on creation) and delivers signed events that constructEvent accepts', async () => {
    const r = await receiver();
    try {
      const we = await stripe.webhookEndpoints.create({
        url: r.url,
        enabled_events: ['payment_intent.amount_capturable_updated', 'payment_intent.succeeded', 'charge.captured'],
        api_version: API_VERSION,
        metadata: { openAcpTenant: 't1' },
      });
      expect(we.id).toMatch(/^we_/);
      expect(we.secret).toMatch(/^whsec_/);
      expect((await stripe.webhookEndpoints.retrieve(we.id)).secret).toBeUndefined();
      expect((await stripe.webhookEndpoints.list()).data.some((e) => e.id === we.id && e.metadata.openAcpTenant === 't1')).toBe(true);

      const pi = await createPi();
      fake.confirm(pi.id, 'pm_card_visa');
      await stripe.paymentIntents.capture(pi.id);
      await fake.webhooks.flush();
      const types = r.got.map((g) => stripe.webhooks.constructEvent(g.body, g.signature, we.secret!, 300)).map((e) => [e.type, e.data.object]);
      expect(types.map((t) => t[0])).toEqual(['payment_intent.amount_capturable_updated', 'charge.captured', 'payment_intent.succeeded']);
      const ev = stripe.webhooks.constructEvent(r.got[0].body, r.got[0].signature, we.secret!, 300);
      expect(ev).toMatchObject({ object: 'event', livemode: false, api_version: API_VERSION, data: { object: { id: pi.id, status: 'requires_capture' } } });
      expect(ev.id).toMatch(/^evt_/);
      expect(() => stripe.webhooks.constructEvent(r.got[0].body, r.got[0].signature, 'whsec_wrongsecret00000000', 300)).toThrow();
      const log = fake.webhooks.delivered().filter((d) => d.endpointId === we.id);
      expect(log.every((d) => d.ok && d.status === 200 && d.responseBody === '{"received":true}')).toBe(true);

      await stripe.webhookEndpoints.del(we.id);
      const pi2 = await createPi();
      fake.confirm(pi2.id, 'pm_card_visa');
      await fake.webhooks.flush();
      expect(r.got.length).toBe(3);
    } finally {
      await r.close();
    }
  });
});

describe('refunds', () => {
  it('refunds partially up to the captured amount, refuses more, and lists by PaymentIntent', async () => {
    const pi = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true });
    const r1 = await stripe.refunds.create({ payment_intent: pi.id, amount: 400, reason: 'requested_by_customer', metadata: { refundId: 'r-1' } }, { idempotencyKey: `oacp_ref_${pi.id}` });
    expect(r1).toMatchObject({ object: 'refund', amount: 400, status: 'succeeded', payment_intent: pi.id, metadata: { refundId: 'r-1' } });
    expect(r1.id).toMatch(/^re_/);
    const tooMuch = await stripeError(stripe.refunds.create({ payment_intent: pi.id, amount: 601 }));
    expect(tooMuch.code).toBe('amount_too_large');
    await stripe.refunds.create({ payment_intent: pi.id, amount: 600 });
    expect((await stripeError(stripe.refunds.create({ payment_intent: pi.id, amount: 1 }))).code).toBe('charge_already_refunded');
    const list = await stripe.refunds.list({ payment_intent: pi.id });
    expect(list.data.map((r) => r.amount)).toEqual([600, 400]);
    expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(1000);
  });

  it('keeps refunds pending until settled, and fails the refund-fail card later (also after success)', async () => {
    fake.setRefundsPending(true);
    const pi = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true });
    const r = await stripe.refunds.create({ payment_intent: pi.id, amount: 100 });
    expect(r.status).toBe('pending');
    fake.setRefundsPending(false);
    const failCard = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_refundFail', confirm: true });
    const rf = await stripe.refunds.create({ payment_intent: failCard.id });
    expect(rf.status).toBe('pending');
    const settled = fake.settleRefunds().map((x) => x.id);
    expect(settled).toEqual(expect.arrayContaining([r.id, rf.id]));
    expect((await stripe.refunds.retrieve(r.id)).status).toBe('succeeded');
    expect(await stripe.refunds.retrieve(rf.id)).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
    expect((await stripe.charges.retrieve(failCard.latest_charge as string)).amount_refunded).toBe(0);
    // late failure of a refund that had succeeded
    const r2 = await stripe.refunds.create({ payment_intent: pi.id, amount: 50 });
    expect(r2.status).toBe('succeeded');
    fake.failRefund(r2.id);
    expect((await stripe.refunds.retrieve(r2.id)).status).toBe('failed');
    const types = fake.events().filter((e) => e.data.object.id === r2.id).map((e) => e.type);
    expect(types).toEqual(['refund.created', 'refund.failed', 'refund.updated', 'charge.refund.updated']);
    expect(fake.events('charge.refunded').some((e) => e.data.object.id === pi.latest_charge)).toBe(true);
  });
});

describe('dashboard actions and confirmation tokens', () => {
  it('captures, refunds and cancels "in the dashboard" with events that carry no idempotency key', async () => {
    const a = await createPi();
    fake.confirm(a.id, 'pm_card_visa');
    expect(fake.dashboard.capture(a.id, 700)).toMatchObject({ status: 'succeeded', amount_received: 700 });
    const refund = fake.dashboard.refund(a.id, 200);
    expect(refund.status).toBe('succeeded');
    const b = await createPi();
    fake.confirm(b.id, 'pm_card_visa');
    expect(fake.dashboard.cancel(b.id).status).toBe('canceled');
    const evs = fake.events().filter((e) => [a.id, b.id, refund.id].includes(e.data.object.id) && e.type !== 'payment_intent.created');
    expect(evs.map((e) => e.type)).toEqual([
      'payment_intent.amount_capturable_updated',
      'payment_intent.succeeded',
      'refund.created',
      'payment_intent.amount_capturable_updated',
      'payment_intent.canceled',
    ]);
    const dash = evs.filter((e) => ['payment_intent.succeeded', 'refund.created', 'payment_intent.canceled'].includes(e.type));
    expect(dash.every((e) => e.request.idempotency_key === null && e.request.id === null)).toBe(true);
    expect(() => fake.dashboard.cancel(a.id)).toThrow(/status of succeeded/);
  });

  it('serves ConfirmationTokens (test helper) and confirms a PaymentIntent with one', async () => {
    const ct = await stripe.testHelpers.confirmationTokens.create({
      payment_method: 'pm_card_visa',
      shipping: { name: 'Jenny Rosen', address: { line1: 'Unter den Linden 1', city: 'Berlin', postal_code: '10117', country: 'DE' } },
    });
    expect(ct.id).toMatch(/^ctoken_/);
    const got = await stripe.confirmationTokens.retrieve(ct.id);
    expect(got.shipping?.address?.city).toBe('Berlin');
    expect(got.payment_method_preview?.card?.last4).toBe('4242');
    const fromFake = fake.createConfirmationToken({ billingDetails: { name: 'Max Mustermann', email: 'max@example.com' } });
    expect((await stripe.confirmationTokens.retrieve(fromFake.id)).payment_method_preview?.billing_details?.email).toBe('max@example.com');
    const pi = await createPi();
    await stripe.paymentIntents.update(pi.id, { amount: 1234 }, { idempotencyKey: `oacp_piu_${pi.id}_2` });
    const c = await stripe.paymentIntents.confirm(pi.id, { confirmation_token: ct.id, return_url: 'https://shop.example/r' }, { idempotencyKey: `oacp_pic_${pi.id}` });
    expect(c).toMatchObject({ status: 'requires_capture', amount_capturable: 1234 });
    expect((await stripe.paymentIntents.retrieve(pi.id, { expand: ['payment_method'] })).shipping?.name).toBe('Jenny Rosen');
    const declined = fake.createConfirmationToken({ paymentMethod: 'pm_card_chargeDeclined' });
    const pi2 = await createPi();
    expect((await stripeError(stripe.paymentIntents.confirm(pi2.id, { confirmation_token: declined.id }))).decline_code).toBe('generic_decline');
  });
});

describe('webhook endpoints of tenants sharing one Stripe account', () => {
  it('updates an endpoint and sends every event to every endpoint, each signed with its own secret', async () => {
    const a = await receiver();
    const b = await receiver();
    try {
      const wa = await stripe.webhookEndpoints.create({ url: `${a.url}?endpoint=t-a`, enabled_events: ['payment_intent.succeeded'], metadata: { openAcpTenant: 't-a' } });
      const wb = await stripe.webhookEndpoints.create({ url: 'https://old.example/hook', enabled_events: ['refund.created'], metadata: { openAcpTenant: 't-b' } });
      const upd = await stripe.webhookEndpoints.update(wb.id, { url: `${b.url}?endpoint=t-b`, enabled_events: ['payment_intent.succeeded', 'refund.created'] });
      expect(upd).toMatchObject({ url: `${b.url}?endpoint=t-b`, enabled_events: ['payment_intent.succeeded', 'refund.created'] });
      expect(upd.secret).toBeUndefined();
      expect(fake.webhooks.secretOf(wb.id)).toBe(wb.secret);
      const pi = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true });
      await fake.webhooks.flush();
      const ea = stripe.webhooks.constructEvent(a.got[0].body, a.got[0].signature, wa.secret!, 300);
      const eb = stripe.webhooks.constructEvent(b.got[0].body, b.got[0].signature, wb.secret!, 300);
      expect(ea.id).toBe(eb.id);
      expect((ea.data.object as Stripe.PaymentIntent).id).toBe(pi.id);
      expect(() => stripe.webhooks.constructEvent(a.got[0].body, a.got[0].signature, wb.secret!, 300)).toThrow();
      // a live-mode endpoint gets only live events
      const live = client(fake.account.liveSecretKey);
      const wl = await live.webhookEndpoints.create({ url: `${a.url}?endpoint=live`, enabled_events: ['*'] });
      await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true });
      await live.paymentIntents.create({ amount: 100, currency: 'eur' });
      await fake.webhooks.flush();
      const liveGot = fake.webhooks.delivered().filter((d) => d.endpointId === wl.id);
      expect(liveGot.map((d) => [d.type, d.livemode])).toEqual([['payment_intent.created', true]]);
      await live.webhookEndpoints.del(wl.id);
      await stripe.webhookEndpoints.del(wa.id);
      await stripe.webhookEndpoints.del(wb.id);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('webhook delivery controls', () => {
  let r: Awaited<ReturnType<typeof receiver>>;
  let secret: string;
  let endpoint: string;
  beforeAll(async () => {
    r = await receiver();
    const we = await stripe.webhookEndpoints.create({ url: r.url, enabled_events: ['payment_intent.canceled'], api_version: API_VERSION });
    secret = we.secret!;
    endpoint = we.id;
  });
  afterAll(async () => {
    await stripe.webhookEndpoints.del(endpoint);
    await r.close();
  });
  const canceled = async (): Promise<string> => {
    const pi = await createPi();
    await stripe.paymentIntents.cancel(pi.id);
    return pi.id;
  };
  const received = () => r.got.map((g) => stripe.webhooks.constructEvent(g.body, g.signature, secret, 300));

  it('pauses, resumes, delivers out of order, twice and after a delay', async () => {
    await fake.webhooks.flush();
    r.got.length = 0;
    fake.webhooks.pause();
    const ids = [await canceled(), await canceled()];
    await new Promise((res) => setTimeout(res, 50));
    expect(r.got).toHaveLength(0);
    expect(fake.webhooks.pending()).toHaveLength(2);
    fake.webhooks.setMode({ outOfOrder: true });
    fake.webhooks.resume();
    await fake.webhooks.flush();
    expect(received().map((e) => (e.data.object as Stripe.PaymentIntent).id)).toEqual([ids[1], ids[0]]);

    r.got.length = 0;
    fake.webhooks.setMode({ outOfOrder: false, duplicate: true });
    const dup = await canceled();
    await fake.webhooks.flush();
    const evs = received();
    expect(evs).toHaveLength(2);
    expect(evs[0].id).toBe(evs[1].id);
    expect((evs[0].data.object as Stripe.PaymentIntent).id).toBe(dup);

    r.got.length = 0;
    fake.webhooks.setMode({ duplicate: false, delayMs: 600_000 });
    await canceled();
    await canceled();
    expect(r.got).toHaveLength(0);
    await fake.webhooks.flush();
    expect(r.got).toHaveLength(2);
  });

  it('retries failed deliveries and logs every attempt with the answer', async () => {
    await fake.webhooks.flush();
    r.status = 500;
    const id = await canceled();
    await fake.webhooks.flush();
    r.status = 200;
    await fake.webhooks.flush({ retries: true });
    const attempts = fake.webhooks.delivered().filter((d) => d.endpointId === endpoint && JSON.parse(d.payload).data.object.id === id);
    expect(attempts.map((a) => [a.attempt, a.status, a.ok])).toEqual([
      [1, 500, false],
      [2, 200, true],
    ]);
    expect(attempts[0].responseBody).toBe('nope');
  });
});

describe('Connect: accounts, onboarding, transfers, reversals', () => {
  it('creates an Express account, onboards it through the account link page and sends account.updated to the Connect endpoint', async () => {
    const r = await receiver();
    try {
      const we = await stripe.webhookEndpoints.create({ url: r.url, enabled_events: ['account.updated'], connect: true, api_version: API_VERSION });
      const own = await receiver();
      const plain = await stripe.webhookEndpoints.create({ url: own.url, enabled_events: ['*'] });
      const acct = await stripe.accounts.create(
        {
          controller: { stripe_dashboard: { type: 'express' }, fees: { payer: 'application' }, losses: { payments: 'application' }, requirement_collection: 'stripe' },
          country: 'DE',
          business_profile: { name: 'Merchant One' },
          capabilities: { transfers: { requested: true } },
          metadata: { tenantIdentifier: 't1', merchantReference: 'MER-1' },
        },
        { idempotencyKey: `oacp_acct_${Date.now()}` },
      );
      expect(acct.id).toMatch(/^acct_/);
      expect(acct).toMatchObject({ type: 'express', details_submitted: false, payouts_enabled: false, capabilities: { transfers: 'inactive' } });
      expect((await stripe.accounts.retrieve(acct.id)).metadata?.merchantReference).toBe('MER-1');
      expect((await stripe.accounts.list({ limit: 100 })).data.some((a) => a.id === acct.id)).toBe(true);
      const link = await stripe.accountLinks.create({
        account: acct.id,
        type: 'account_onboarding',
        return_url: 'https://merchant.example/done',
        refresh_url: 'https://merchant.example/refresh',
        collection_options: { fields: 'eventually_due' },
      });
      expect(link.object).toBe('account_link');
      expect(link.expires_at).toBeGreaterThan(Date.now() / 1000);
      expect(await (await fetch(link.url)).text()).toContain(acct.id);
      const done = await fetch(link.url, { method: 'POST', body: new URLSearchParams({ action: 'enabled' }), redirect: 'manual' });
      expect(done.headers.get('location')).toBe('https://merchant.example/done');
      expect((await fetch(link.url, { redirect: 'manual' })).headers.get('location')).toBe('https://merchant.example/refresh');
      const enabled = await stripe.accounts.retrieve(acct.id);
      expect(enabled).toMatchObject({ details_submitted: true, payouts_enabled: true, capabilities: { transfers: 'active' }, requirements: { currently_due: [], past_due: [] } });
      // the connected account acts through Stripe-Account
      expect((await stripe.accounts.retrieveCurrent({}, { stripeAccount: acct.id })).id).toBe(acct.id);
      const foreign = fake.addAccount();
      expect((await stripeError(stripe.balance.retrieve({}, { stripeAccount: foreign.id }))).statusCode).toBe(403);

      expect(await stripe.accounts.retrieveCapability(acct.id, 'transfers')).toMatchObject({ object: 'capability', status: 'active', account: acct.id });
      fake.setAccountState(acct.id, 'rejected');
      expect(fake.events('capability.updated').at(-1)?.data.object).toMatchObject({ account: acct.id, status: 'inactive' });
      await fake.webhooks.flush();
      const evs = r.got.map((g) => stripe.webhooks.constructEvent(g.body, g.signature, we.secret!, 300));
      expect(evs.map((e) => [e.type, e.account, (e.data.object as Stripe.Account).requirements?.disabled_reason])).toEqual([
        ['account.updated', acct.id, null],
        ['account.updated', acct.id, 'rejected.fraud'],
      ]);
      expect(evs[0].data.previous_attributes).toHaveProperty('capabilities');
      expect(own.got.filter((g) => g.body.includes('account.updated'))).toHaveLength(0);
      await stripe.webhookEndpoints.del(we.id);
      await stripe.webhookEndpoints.del(plain.id);
      await own.close();
    } finally {
      await r.close();
    }
  });

  it('transfers with source_transaction up to the charge, without it from the available balance, and reverses', async () => {
    const dest = fake.addConnectedAccount({ state: 'enabled' });
    const pending = fake.addConnectedAccount();
    const pi = await createPi({ amount: 5000, capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true, transfer_group: 'ORDER-9' });
    const charge = pi.latest_charge as string;
    const notReady = await stripeError(stripe.transfers.create({ amount: 100, currency: 'eur', destination: pending, source_transaction: charge }));
    expect(notReady.code).toBe('insufficient_capabilities_for_transfer');
    const tr = await stripe.transfers.create(
      { amount: 3000, currency: 'eur', destination: dest, source_transaction: charge, transfer_group: 'ORDER-9', metadata: { payoutId: 'po-1' } },
      { idempotencyKey: 'oacp_tr_po-1' },
    );
    expect(tr).toMatchObject({ object: 'transfer', amount: 3000, destination: dest, source_transaction: charge, amount_reversed: 0, reversed: false });
    expect(tr.id).toMatch(/^tr_/);
    const over = await stripeError(stripe.transfers.create({ amount: 2001, currency: 'eur', destination: dest, source_transaction: charge }));
    expect(over.code).toBe('amount_too_large');
    fake.setBalance(fake.account.id, { currency: 'eur', available: 100 });
    const poor = await stripeError(stripe.transfers.create({ amount: 101, currency: 'eur', destination: dest }));
    expect(poor.code).toBe('balance_insufficient');
    expect((await stripe.transfers.create({ amount: 100, currency: 'eur', destination: dest })).amount).toBe(100);
    const bal = await stripe.balance.retrieve({}, { stripeAccount: dest });
    expect(bal.available.find((b) => b.currency === 'eur')?.amount).toBe(3100);
    expect((await stripe.transfers.list({ transfer_group: 'ORDER-9' })).data.map((t) => t.id)).toEqual([tr.id]);

    const rev = await stripe.transfers.createReversal(tr.id, { amount: 1000, metadata: { reversalId: 'rv-1' } }, { idempotencyKey: 'oacp_trr_rv-1' });
    expect(rev).toMatchObject({ object: 'transfer_reversal', amount: 1000, transfer: tr.id });
    expect(rev.id).toMatch(/^trr_/);
    expect((await stripe.transfers.retrieve(tr.id)).amount_reversed).toBe(1000);
    expect((await stripe.transfers.listReversals(tr.id)).data.map((x) => x.metadata?.reversalId)).toEqual(['rv-1']);
    expect((await stripeError(stripe.transfers.createReversal(tr.id, { amount: 2001 }))).code).toBe('amount_too_large');
    fake.setBalance(dest, { currency: 'eur', available: 10 });
    expect((await stripeError(stripe.transfers.createReversal(tr.id, { amount: 11 }))).code).toBe('balance_insufficient');
    expect(fake.events('transfer.reversed').at(-1)?.data.object.id).toBe(tr.id);
  });
});

describe('fault injection', () => {
  it('timeout: the request is held and not executed; a retry with the same key then creates once', async () => {
    fake.injectFault({ method: 'POST', path: '/v1/payment_intents', kind: 'timeout' });
    const tag = `timeout-${Date.now()}`;
    const key = `oacp_pi_${tag}`;
    const e = await stripeError(createPi({ metadata: { paymentId: tag } }, { idempotencyKey: key, timeout: 300 }));
    expect(e.type).toBe('StripeConnectionError');
    expect((await stripe.paymentIntents.search({ query: `metadata['paymentId']:'${tag}'` })).data).toHaveLength(0);
    const pi = await createPi({ metadata: { paymentId: tag } }, { idempotencyKey: key });
    expect(pi.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(fake.requests.filter((r) => r.idempotencyKey === key).map((r) => r.fault)).toEqual(['timeout', null]);
  });

  it('timeout: a hung request keeps its key busy (409) until aborted', async () => {
    fake.injectFault({ path: /^\/v1\/refunds$/, kind: 'timeout' });
    const pi = await createPi({ capture_method: 'automatic', payment_method: 'pm_card_visa', confirm: true });
    const hung = stripe.refunds.create({ payment_intent: pi.id }, { idempotencyKey: `ref-${pi.id}` });
    while (!fake.requests.some((r) => r.idempotencyKey === `ref-${pi.id}`)) await new Promise((res) => setTimeout(res, 10));
    const busy = await stripeError(stripe.refunds.create({ payment_intent: pi.id }, { idempotencyKey: `ref-${pi.id}` }));
    expect(busy.statusCode).toBe(409);
    expect(busy.code).toBe('idempotency_key_in_use');
    fake.abortHungRequests();
    // the SDK repeats a request once on a closed connection (same key), which now executes
    const refund = await hung;
    expect(refund.status).toBe('succeeded');
    const again = await stripe.refunds.create({ payment_intent: pi.id }, { idempotencyKey: `ref-${pi.id}` });
    expect(again.id).toBe(refund.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(fake.requests.filter((r) => r.idempotencyKey === `ref-${pi.id}`).map((r) => [r.fault, r.status])).toEqual([
      ['timeout', null],
      [null, 409],
      [null, 200],
      [null, 200],
    ]);
  });

  it('reset-after-write: the write happened; the SDK\'s own repeat or a later retry with the same key replays it', async () => {
    const pi = await createPi();
    fake.confirm(pi.id, 'pm_card_visa');
    const path = `/v1/payment_intents/${pi.id}/capture`;
    // once: the SDK repeats a request on a closed connection (stripe.md 8) and gets the stored answer
    fake.injectFault({ method: 'POST', path, kind: 'reset-after-write' });
    const key = `oacp_cap_${pi.id}`;
    const first = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 400, final_capture: true }, { idempotencyKey: key });
    expect(first.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(first).toMatchObject({ status: 'succeeded', amount_received: 400 });
    // twice: the caller sees a connection error although the write happened; its own retry replays
    const pi2 = await createPi();
    fake.confirm(pi2.id, 'pm_card_visa');
    fake.injectFault({ method: 'POST', path: `/v1/payment_intents/${pi2.id}/capture`, kind: 'reset-after-write', times: 2 });
    const key2 = `oacp_cap_${pi2.id}`;
    const e = await stripeError(stripe.paymentIntents.capture(pi2.id, { amount_to_capture: 400 }, { idempotencyKey: key2 }));
    expect(e.type).toBe('StripeConnectionError');
    expect(fake.get(pi2.id)).toMatchObject({ status: 'succeeded', amount_received: 400 });
    const again = await stripe.paymentIntents.capture(pi2.id, { amount_to_capture: 400 }, { idempotencyKey: key2 });
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(again).toMatchObject({ status: 'succeeded', amount_received: 400 });
    expect(fake.requests.filter((r) => r.idempotencyKey === key2).map((r) => [r.fault, r.replayed])).toEqual([
      ['reset-after-write', false],
      ['reset-after-write', true],
      [null, true],
    ]);
    expect(fake.events('charge.captured').filter((ev) => ev.data.object.payment_intent === pi2.id)).toHaveLength(1);
  });

  it('500 is stored under the key and replayed; 429 is not stored', async () => {
    fake.injectFault({ path: '/v1/payment_intents', kind: '500' });
    const e500 = await stripeError(createPi({}, { idempotencyKey: 'k-500' }));
    expect(e500.statusCode).toBe(500);
    expect(e500.type).toBe('StripeAPIError');
    const replay = await stripeError(createPi({}, { idempotencyKey: 'k-500' }));
    expect(replay.statusCode).toBe(500);
    expect(fake.requests.at(-1)?.replayed).toBe(true);

    fake.injectFault({ path: '/v1/payment_intents', kind: '429', times: 2 });
    for (let i = 0; i < 2; i++) {
      const e429 = await stripeError(createPi({}, { idempotencyKey: 'k-429' }));
      expect(e429.statusCode).toBe(429);
      expect(e429.type).toBe('StripeRateLimitError');
    }
    const ok = await createPi({}, { idempotencyKey: 'k-429' });
    expect(ok.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(ok.status).toBe('requires_payment_method');
  });
});

const chromium = await browserAvailable();

describe.skipIf(!chromium)('stripe.js double in Chromium', () => {
  let shop: http.Server;
  let shopUrl = '';
  let context: import('playwright-core').BrowserContext;

  /** A shop page on its own origin under a nonce CSP (like /app-payment) that loads the double from the fake. */
  const page = (pk: string, clientSecret: string, mode: 'payment' | 'express' | 'next-action'): string => `<!doctype html><html><head><title>Pay</title>
<script nonce="n0nce" src="${fake.url}/v3/"></script></head><body>
<form id="f"><div id="el"></div><button id="pay" type="submit">Pay</button></form><p id="out"></p>
<script nonce="n0nce">
  const stripe = Stripe(${JSON.stringify(pk)});
  const elements = stripe.elements({ clientSecret: ${JSON.stringify(clientSecret)}, appearance: { variables: { colorPrimary: '#123456' } } });
  const out = document.getElementById('out');
  if (${JSON.stringify(mode)} === 'payment') {
    elements.create('payment').mount('#el');
    document.getElementById('f').addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await stripe.confirmPayment({ elements, confirmParams: { return_url: location.origin + '/return?order=1' } });
      if (r.error) out.textContent = 'error:' + r.error.code;
    });
  } else if (${JSON.stringify(mode)} === 'next-action') {
    stripe.retrievePaymentIntent(${JSON.stringify(clientSecret)}).then((r) => {
      out.textContent = 'status:' + r.paymentIntent.status;
      if (r.paymentIntent.status === 'requires_action') stripe.handleNextAction({ clientSecret: ${JSON.stringify(clientSecret)} });
    });
  } else {
    const ex = elements.create('expressCheckout');
    ex.on('confirm', async () => {
      const r = await stripe.createConfirmationToken({ elements });
      out.textContent = r.error ? 'error:' + r.error.message : 'token:' + r.confirmationToken.id;
    });
    ex.mount('#el');
  }
</script></body></html>`;

  let current = '';
  beforeAll(async () => {
    shop = http.createServer((req, res) => {
      if (req.url?.startsWith('/return')) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>Return</title><h1 id="returned">returned</h1>`);
        return;
      }
      res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': `default-src 'self'; script-src 'nonce-n0nce' ${fake.url}; connect-src ${fake.url}; frame-src ${fake.url}; style-src 'self'`,
        })
        .end(current);
    });
    await new Promise<void>((r) => shop.listen(0, '127.0.0.1', () => r()));
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
    context = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await new Promise<void>((r) => (shop ? shop.close(() => r()) : r()));
  });

  it('pays with typed test cards: 4242 redirects back, 0002 shows the decline, 3220 goes through the challenge', async () => {
    const tab = await context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    tab.on('console', (m) => {
      // script errors and CSP refusals; the 402 of the decline and a missing favicon are expected network errors
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    });
    try {
      // success
      const pi = await createPi();
      current = page(fake.account.publishableKey, pi.client_secret!, 'payment');
      await tab.goto(`${shopUrl}/pay`);
      await tab.fill('[data-testid="card-number"]', '4242 4242 4242 4242');
      await Promise.all([tab.waitForURL(/\/return/), tab.click('#pay')]);
      const back = new URL(tab.url());
      expect(Object.fromEntries(back.searchParams)).toEqual({ order: '1', payment_intent: pi.id, payment_intent_client_secret: pi.client_secret, redirect_status: 'succeeded' });
      expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('requires_capture');
      expect(fake.requests.find((r) => r.path === `/v1/payment_intents/${pi.id}/confirm`)?.params).toMatchObject({ payment_method: 'pm_card_visa' });

      // decline: stays on the page with the error
      const pi2 = await createPi();
      current = page(fake.account.publishableKey, pi2.client_secret!, 'payment');
      await tab.goto(`${shopUrl}/pay`);
      await tab.fill('[data-testid="card-number"]', '4000000000000002');
      await tab.click('#pay');
      await tab.waitForSelector('#out:has-text("error:card_declined")');
      expect(await tab.textContent('[data-testid="stripe-error"]')).toBe('Your card was declined.');
      expect((await stripe.paymentIntents.retrieve(pi2.id)).last_payment_error?.decline_code).toBe('generic_decline');

      // 3DS challenge, completed
      const pi3 = await createPi();
      current = page(fake.account.publishableKey, pi3.client_secret!, 'payment');
      await tab.goto(`${shopUrl}/pay`);
      await tab.fill('[data-testid="card-number"]', '4000000000003220');
      await Promise.all([tab.waitForURL(/\/challenge\//), tab.click('#pay')]);
      await Promise.all([tab.waitForURL(/\/return/), tab.click('[data-testid="challenge-complete"]')]);
      expect(new URL(tab.url()).searchParams.get('redirect_status')).toBe('succeeded');
      expect((await stripe.paymentIntents.retrieve(pi3.id)).status).toBe('requires_capture');
      expect(errors).toEqual([]);
    } finally {
      await tab.close();
    }
  });

  it('finishes a server-side 3DS confirmation with handleNextAction and returns to the page', async () => {
    const tab = await context.newPage();
    try {
      const pi = await createPi();
      const c = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_threeDSecure2Required' });
      expect(c.next_action?.type).toBe('use_stripe_sdk');
      current = page(fake.account.publishableKey, pi.client_secret!, 'next-action');
      await Promise.all([tab.waitForURL(/\/challenge\//), tab.goto(`${shopUrl}/app-payment`)]);
      await Promise.all([tab.waitForURL(/\/app-payment\?.*redirect_status=succeeded/), tab.click('[data-testid="challenge-complete"]')]);
      await tab.waitForSelector('#out:has-text("status:requires_capture")');
    } finally {
      await tab.close();
    }
  });

  it('creates a ConfirmationToken from the express element with the fake wallet payer', async () => {
    const tab = await context.newPage();
    try {
      const pi = await createPi();
      current = page(fake.account.publishableKey, pi.client_secret!, 'express');
      await tab.goto(`${shopUrl}/pay`);
      await tab.click('[data-testid="express-pay"]');
      await tab.waitForSelector('#out:has-text("token:")');
      const id = (await tab.textContent('#out'))!.slice('token:'.length);
      const ct = await stripe.confirmationTokens.retrieve(id);
      expect(ct.shipping?.address?.city).toBe('Berlin');
      expect(ct.payment_method_preview?.billing_details?.email).toBe('jenny.rosen@example.com');
    } finally {
      await tab.close();
    }
  });
});

/**
 * The Stripe fake (test/fakes/stripe) driven through the real `stripe` SDK, as the connector will drive it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PINNED_API_VERSION, type StripeFake, startStripeFake } from './fakes/stripe/index.js';

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

  it('cancels, and refuses to cancel twice', async () => {
    const pi = await createPi();
    fake.confirm(pi.id, 'pm_card_visa');
    const c = await stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'requested_by_customer' });
    expect(c).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer', amount_capturable: 0 });
    expect((await stripeError(stripe.paymentIntents.cancel(pi.id))).code).toBe('payment_intent_unexpected_state');
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

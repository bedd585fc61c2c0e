/**
 * The contract suite's driver for Stripe against the project's Stripe fake (stripe.md 4.2; test/fakes/stripe/README.md).
 * Each tenant gets its own fake Stripe account (restricted key, as stripe.md 1.1 recommends). The shopper does what the
 * payment page's script and Stripe.js do: confirm the PaymentIntent with a test payment method and the page's return
 * URL, pass the 3DS challenge page, and come back to `/app-payment/redirect` (with Stripe's parameters on success, plain
 * after a decline, as the page script's fallback does). Webhooks are the fake's signed deliveries.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { stripeModule } from '../../src/connectors/stripe/index.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { browse, parseForm } from '../helpers/hosted-flow.js';
import { startStripeFake, type FakeAccount, type StripeFake } from '../fakes/stripe/index.js';
import { moduleCapabilities, type ConnectorDriver, type PayOutcome } from './driver.js';
import { postWebhook, shopperResult, until } from './harness.js';

const PMS: Partial<Record<PayOutcome, string>> = {
  success: 'pm_card_visa',
  decline: 'pm_card_chargeDeclined',
  'challenge-complete': 'pm_card_threeDSecure2Required',
  'challenge-fail': 'pm_card_threeDSecure2Required',
  'refund-fails': 'pm_card_refundFail',
};

const attr = (html: string, name: string): string => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} on the page: ${html.slice(0, 300)}`);
  return m[1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
};

export function stripeDriver(): ConnectorDriver {
  let fake: StripeFake | undefined;
  let app: TestApp | undefined;
  let held = false;
  const accounts = new Map<string, FakeAccount>();
  const f = (): StripeFake => fake!;
  const accountOf = (tenant: string): FakeAccount => {
    let a = accounts.get(tenant);
    if (!a) {
      a = f().addAccount({ businessName: tenant });
      accounts.set(tenant, a);
    }
    return a;
  };
  const ofTenant = (tenant: string) => (d: { url: string }) => new URL(d.url).searchParams.get('endpoint') === tenant;

  /** Opens the page, confirms like the page's script with `pm`, and follows the browser from there. */
  async function pay(a: TestApp, pageUrl: string, pm: string, challengeAnswer: 'complete' | 'fail' = 'complete') {
    const page = await browse(a, pageUrl);
    expect(page.final.status, page.final.html.slice(0, 300)).toBe(200);
    const returnUrl = attr(page.final.html, 'data-return-url');
    const clientSecret = attr(page.final.html, 'data-client-secret');
    const tx = new URL(pageUrl, a.url).searchParams.get('transactionId')!;
    const pi = f().confirm(tx, pm, { returnUrl });
    if (pi.status === 'requires_action') {
      const challenge = pi.next_action?.redirect_to_url?.url ?? pi.next_action?.use_stripe_sdk?.stripe_js;
      expect(challenge, JSON.stringify(pi.next_action)).toEqual(expect.any(String));
      const shown = await browse(a, challenge);
      expect(shown.final.status).toBe(200);
      const { hidden } = parseForm(shown.final.html);
      expect(hidden.action).toBe('complete');
      const done = await browse(a, challenge, { ...hidden, action: challengeAnswer });
      return { hops: [...page.hops, ...shown.hops, ...done.hops], finalUrl: done.finalUrl, final: done.final };
    }
    // Stripe.js navigates to the return URL with its parameters on success; the page script goes back plainly otherwise.
    const back = new URL(returnUrl);
    if (pi.status === 'requires_capture' || pi.status === 'succeeded') {
      back.searchParams.set('payment_intent', tx);
      back.searchParams.set('payment_intent_client_secret', clientSecret);
      back.searchParams.set('redirect_status', 'succeeded');
    }
    const r = await browse(a, back.toString());
    return { hops: [...page.hops, ...r.hops], finalUrl: r.finalUrl, final: r.final };
  }

  return {
    id: 'stripe',
    providerName: 'Stripe',
    methods: { card: 'Stripe', express: 'Stripe Express' },
    transactionIdPattern: /^pi_/,
    unsupported: { 'capture-fails': 'Stripe has no card whose captures fail (stripe.md 4.2: "always-fail-on-capture is not a Stripe behaviour")' },
    refundFailsAfterSuccess: false,
    multicaptureOption: true,

    async start() {
      fake = await startStripeFake();
      app = await startTestApp({ CONNECTOR: 'stripe', STRIPE_API_BASE: fake.url, STRIPE_JS_URL: `${fake.url}/v3/` });
      return app;
    },
    async stop() {
      await app?.close();
      await fake?.close();
    },
    capabilities: () => moduleCapabilities(stripeModule),

    configuration(tenant, o = {}) {
      const acct = accountOf(tenant);
      return {
        secretKey: acct.restrictedKey,
        publishableKey: acct.publishableKey,
        paymentMethods: o.express ? ['stripe', 'stripe-express'] : ['stripe'],
        ...(o.captureMode ? { captureMode: o.captureMode } : {}),
        ...(o.marketplace ? { businessModel: 'marketplace', onboardingCountry: 'DE' } : {}),
        ...(o.multicapture ? { multicapture: true } : {}),
      };
    },
    refusedConfiguration(tenant) {
      const secret = `sk_test_${randomBytes(12).toString('hex')}`;
      return { values: { secretKey: secret, publishableKey: accountOf(tenant).publishableKey }, field: 'secretKey', secret };
    },

    async payOnPage(a, pageUrl, outcome) {
      const r = await pay(a, pageUrl, PMS[outcome]!, outcome === 'challenge-fail' ? 'fail' : 'complete');
      return shopperResult(r);
    },
    async failForGood(a, pageUrl) {
      // finalDeclines = false: the app cancels after STRIPE_MAX_DECLINED_ATTEMPTS declined attempts (stripe.md 3.4).
      let r = await pay(a, pageUrl, PMS.decline!);
      for (let i = 1; i < a.deps.config.stripeMaxDeclinedAttempts && new URL(r.finalUrl).pathname === '/app-payment'; i++) r = await pay(a, r.finalUrl, PMS.decline!);
      return shopperResult(r);
    },
    async payPreOrder(_a, _tenant, pod, outcome) {
      const pi = f().confirm(String(pod.transactionId), PMS[outcome]!);
      expect(pi.status).toBe(outcome === 'decline' ? 'requires_payment_method' : 'requires_capture');
    },
    async approveExpress(_a, tenant, pod, payer) {
      const name = `${payer.firstName} ${payer.lastName}`;
      const address = { line1: payer.shipping.address1, postal_code: payer.shipping.zipCode, city: payer.shipping.city, country: payer.shipping.iso2Code };
      const token = f().createConfirmationToken({
        account: accountOf(tenant).id,
        paymentMethod: 'pm_card_visa',
        shipping: { name, address },
        billingDetails: { name, email: payer.email, address },
      });
      return { ...pod, confirmationTokenId: token.id };
    },
    async declineExpress(_a, tenant, pod) {
      const token = f().createConfirmationToken({ account: accountOf(tenant).id, paymentMethod: PMS.decline });
      return { ...pod, confirmationTokenId: token.id };
    },
    async pspAmounts(_a, _tenant, transactionId) {
      const pi = f().get(transactionId);
      const charge = pi?.latest_charge ? f().get(pi.latest_charge) : null;
      return { captured: pi?.amount_received ?? 0, refunded: charge?.amount_refunded ?? 0 };
    },

    async settle(a, tenant, objectId) {
      const queued = () => f().webhooks.pending().filter((e) => JSON.stringify(e).includes(objectId));
      const open = async () =>
        (await a.deps.db.query(`SELECT 1 FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2 AND state IN ('received', 'retrying')`, [tenant, objectId])).rows.length;
      await until(
        async () => {
          f().settleRefunds();
          if (!held) await f().webhooks.flush();
          return (held || queued().length === 0) && (await open()) === 0;
        },
        (done) => done,
        20_000,
      );
    },
    async holdWebhooks() {
      f().webhooks.pause();
      held = true;
    },
    async releaseWebhooksReversedTwice(_a, tenant) {
      const eventIds = f()
        .webhooks.pending()
        .map((e) => String(e.id));
      const mark = f().webhooks.delivered().length;
      f().webhooks.setMode({ duplicate: true, outOfOrder: true });
      held = false;
      f().webhooks.resume();
      await f().webhooks.flush();
      f().webhooks.setMode({ duplicate: false, outOfOrder: false });
      const statuses = f().webhooks.delivered().slice(mark).filter(ofTenant(tenant)).map((d) => d.status ?? 0);
      return { statuses, eventIds };
    },
    async redeliver(a, tenant, objectId) {
      const d = f()
        .webhooks.delivered()
        .find((x) => x.ok && ofTenant(tenant)(x) && x.payload.includes(objectId));
      expect(d, `a delivered event about ${objectId}`).toBeDefined();
      const u = new URL(d!.url);
      return postWebhook(a, u.pathname + u.search, d!.payload, { 'stripe-signature': d!.signature });
    },

    async loseNextAnswer(_a, op) {
      const path = op === 'capture' ? /^\/v1\/payment_intents\/[^/]+\/capture$/ : /^\/v1\/refunds$/;
      f().injectFault({ method: 'POST', path, kind: 'reset-after-write' });
      const mark = f().requests.length;
      return () => f().requests.slice(mark).some((r) => r.fault === 'reset-after-write' && path.test(r.path));
    },
    async dashboard(_a, _tenant, transactionId, op) {
      f().dashboard[op](transactionId);
    },

    async completeOnboarding(a, _tenant, url, outcome) {
      const r = await browse(a, url, { action: outcome === 'complete' ? 'enabled' : 'rejected' });
      expect(r.final.status).toBeLessThan(400);
    },
  };
}

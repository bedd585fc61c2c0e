/**
 * The contract suite's driver for the built-in sandbox PSP (sandbox-psp.md), in-process under `/sandbox`. The shopper
 * posts the sandbox card form (test cards), a storefront confirms with the payment's clientSecret, the merchant submits
 * the sandbox onboarding page, and webhooks are held by pointing the account's endpoint elsewhere.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { sandboxModule } from '../../src/connectors/sandbox/index.js';
import { signatureHeader } from '../../src/sandbox/util.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CARD_YEAR, answerChallenge, browse, payOnPage } from '../helpers/hosted-flow.js';
import { moduleCapabilities, type ConnectorDriver, type PayOutcome } from './driver.js';
import { postWebhook, shopperResult, until } from './harness.js';

const WEBHOOK_SECRET = 'whsec_contract0123456789';
const CARDS: Record<PayOutcome, string> = {
  success: '4242424242424242',
  decline: '4000000000000002',
  'challenge-complete': '4000002500003155',
  'challenge-fail': '4000002500003155',
  'refund-fails': '4000000000005126',
  'capture-fails': '4000000000000341',
};
const BLOCKED = '4100000000000019';
/** Nobody listens here: deliveries fail and stay queued at the sandbox. */
const NOWHERE = 'http://127.0.0.1:9/webhooks/test';

/** One sandbox account (secret key) per tenant, so holding one tenant's webhooks touches no other tenant. */
const secretKeyOf = (tenant: string): string => `sk_sandbox_${createHash('sha256').update(tenant).digest('hex').slice(0, 16)}`;

export function sandboxDriver(): ConnectorDriver {
  let app: TestApp | undefined;
  const api = async (a: TestApp, tenant: string, path: string, body?: unknown) => {
    const r = await a.request(`/sandbox/v1${path}`, { headers: { authorization: `Bearer ${secretKeyOf(tenant)}` }, ...(body !== undefined ? { body } : {}) });
    return r;
  };
  const events = async (a: TestApp, tenant: string, where: string, params: unknown[] = []) => {
    const acct = (await api(a, tenant, '/account')).body.id as string;
    return (await a.deps.db.query<{ id: string; body: string; state: string }>(`SELECT id, body, state FROM sandbox_events WHERE account_id = $1 ${where} ORDER BY seq`, [acct, ...params])).rows;
  };
  const confirmCard = async (a: TestApp, tenant: string, transactionId: string, card: string, payer?: Record<string, unknown>) => {
    const p = await api(a, tenant, `/payments/${encodeURIComponent(transactionId)}`);
    expect(p.status, p.text).toBe(200);
    return a.request(`/sandbox/v1/payments/${encodeURIComponent(transactionId)}/confirm`, {
      body: { clientSecret: p.body.clientSecret, card: { number: card, expMonth: 12, expYear: Number(CARD_YEAR), cvc: '123' }, ...(payer ? { payer } : {}) },
    });
  };

  return {
    id: 'sandbox',
    providerName: 'Sandbox',
    methods: { card: 'Credit Card', express: 'Sandbox Express' },
    transactionIdPattern: /^sbx_pay_/,
    unsupported: {},
    refundFailsAfterSuccess: false,
    multicaptureOption: false,

    async start() {
      app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
      return app;
    },
    async stop() {
      await app?.close();
    },
    capabilities: () => moduleCapabilities(sandboxModule),

    configuration(tenant, o = {}) {
      return {
        secretKey: secretKeyOf(tenant),
        webhookSecret: WEBHOOK_SECRET,
        paymentMethods: o.express ? ['credit-card', 'sandbox-express'] : ['credit-card'],
        ...(o.captureMode ? { captureMode: o.captureMode } : {}),
      };
    },
    refusedConfiguration() {
      const secret = 'sk_sandbox_contractrevoked';
      return { values: { secretKey: secret, webhookSecret: WEBHOOK_SECRET }, field: 'secretKey', secret };
    },

    async payOnPage(a, pageUrl, outcome) {
      const r = await payOnPage(a, pageUrl, CARDS[outcome]);
      if (outcome !== 'challenge-complete' && outcome !== 'challenge-fail') return shopperResult(r);
      expect(r.finalUrl).toMatch(/\/sandbox\/checkout\/[^/]+\/challenge(\?|$)/);
      const answered = await answerChallenge(a, r.final.html, outcome === 'challenge-complete' ? 'complete' : 'fail');
      return { hops: [...r.hops, ...answered.hops], finalUrl: answered.finalUrl, html: answered.final.html };
    },
    async failForGood(a, pageUrl) {
      return shopperResult(await payOnPage(a, pageUrl, BLOCKED));
    },
    async payPreOrder(a, tenant, pod, outcome) {
      const r = await confirmCard(a, tenant, String(pod.transactionId), CARDS[outcome]);
      expect(r.status, r.text).toBe(outcome === 'decline' ? 402 : 200);
    },
    async approveExpress(a, tenant, pod, payer) {
      const r = await confirmCard(a, tenant, String(pod.transactionId), CARDS.success, {
        firstName: payer.firstName,
        lastName: payer.lastName,
        email: payer.email,
        billingAddress: { firstName: payer.firstName, lastName: payer.lastName, ...payer.shipping },
        shippingAddress: { firstName: payer.firstName, lastName: payer.lastName, ...payer.shipping },
      });
      expect(r.status, r.text).toBe(200);
      return pod;
    },
    async declineExpress(a, tenant, pod) {
      const r = await confirmCard(a, tenant, String(pod.transactionId), BLOCKED);
      expect(r.status, r.text).toBe(402);
      return pod;
    },
    async pspAmounts(a, tenant, transactionId) {
      const r = await api(a, tenant, `/payments/${encodeURIComponent(transactionId)}`);
      expect(r.status, r.text).toBe(200);
      return { captured: r.body.amountCaptured, refunded: r.body.amountRefunded };
    },

    async settle(a, tenant, objectId) {
      await until(
        async () => {
          const queued = await events(a, tenant, `AND state = 'pending' AND body LIKE $2`, [`%${objectId}%`]);
          const open = await a.deps.db.query(`SELECT 1 FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2 AND state IN ('received', 'retrying')`, [tenant, objectId]);
          return queued.length === 0 && open.rows.length === 0;
        },
        (done) => done,
        20_000,
      );
    },
    async holdWebhooks(a, tenant) {
      const r = await api(a, tenant, '/webhook-endpoints', { url: NOWHERE, secret: WEBHOOK_SECRET, livemode: false });
      expect(r.status, r.text).toBe(200);
    },
    async releaseWebhooksReversedTwice(a, tenant) {
      const held = (await events(a, tenant, `AND state = 'pending'`)).reverse();
      const statuses: number[] = [];
      for (const ev of held) {
        for (let i = 0; i < 2; i++) statuses.push(await postWebhook(a, '/webhooks/test', ev.body, { 'sandbox-signature': signatureHeader(WEBHOOK_SECRET, ev.body, Math.floor(Date.now() / 1000)) }));
      }
      // Point the endpoint back at the app: the sandbox's own retries now arrive as third deliveries.
      const back = await api(a, tenant, '/webhook-endpoints', { url: `${a.deps.config.appBaseUrl}/webhooks/test`, secret: WEBHOOK_SECRET, livemode: false });
      expect(back.status, back.text).toBe(200);
      return { statuses, eventIds: held.map((e) => e.id) };
    },
    async redeliver(a, tenant, objectId) {
      const ev = (await events(a, tenant, `AND state = 'delivered' AND body LIKE $2`, [`%${objectId}%`]))[0];
      expect(ev, `a delivered event about ${objectId}`).toBeDefined();
      return postWebhook(a, '/webhooks/test', ev!.body, { 'sandbox-signature': signatureHeader(WEBHOOK_SECRET, ev!.body, Math.floor(Date.now() / 1000)) });
    },

    async loseNextAnswer(a, op) {
      // The in-process sandbox has no fault switch: the PSP call runs, then the answer is lost at the port boundary.
      const real = a.deps.connectors.get('sandbox')!;
      let fired = false;
      const lost = async (...args: unknown[]) => {
        fired = true;
        restore();
        await (real[op] as (...x: unknown[]) => Promise<unknown>)(...args);
        return { ok: false, failure: { kind: 'error', message: 'connection reset after the write' } };
      };
      const restore = a.deps.connectors.use({ ...real, [op]: lost });
      return () => fired;
    },
    async dashboard() {
      throw new Error('the sandbox has no dashboard (capabilities.dashboardOperations = [])');
    },

    async completeOnboarding(a, _tenant, url, outcome) {
      const r = await browse(a, new URL(url).pathname, { outcome });
      expect(r.final.status).toBeLessThan(400);
    },
  };
}

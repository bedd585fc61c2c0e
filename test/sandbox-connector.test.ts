/**
 * The sandbox connector against the in-process sandbox PSP of a running app: every operation's mapping onto the
 * connector port, webhook parsing/verification/outcomes, the payment page form, timeouts and failures.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxConnector } from '../src/connectors/sandbox/connector.js';
import type { CallOptions, Connector, CreatePaymentRequest, PspPayment, TenantSettings } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;
let connector: Connector;

const newSettings = (extra: TenantSettings = {}): TenantSettings => ({
  secretKey: `sk_sandbox_${randomBytes(8).toString('hex')}`,
  webhookSecret: `whsec_${randomBytes(12).toString('hex')}`,
  isLive: false,
  captureMode: 'manual',
  ...extra,
});
const opts = (key = randomBytes(8).toString('hex')): CallOptions => ({ idempotencyKey: key, signal: AbortSignal.timeout(15_000) });
const sig = (): AbortSignal => AbortSignal.timeout(15_000);
const req = (extra: Partial<CreatePaymentRequest> = {}): CreatePaymentRequest => ({
  tenantIdentifier: 'tenant-c',
  amount: 1000,
  currency: 'EUR',
  orderReference: 'DE--1',
  captureMode: 'manual',
  returnUrl: 'https://shop.example/app-payment/redirect?tenantIdentifier=tenant-c',
  metadata: { orderReference: 'DE--1' },
  ...extra,
});

async function created(settings: TenantSettings, extra: Partial<CreatePaymentRequest> = {}) {
  const r = await connector.createPayment(settings, req(extra), opts());
  if (!r.ok) throw new Error(JSON.stringify(r.failure));
  return r.value;
}

/** Pays like a storefront/browser would: the sandbox's confirm API with the clientSecret. */
async function pay(p: { id: string; preOrderPaymentData: Record<string, unknown> }, number: string, payer?: unknown) {
  return app.request(`/sandbox/v1/payments/${p.id}/confirm`, {
    body: { clientSecret: p.preOrderPaymentData.clientSecret, card: { number, expMonth: 12, expYear: new Date().getUTCFullYear() + 1, cvc: '123' }, ...(payer ? { payer } : {}) },
  });
}

async function state(settings: TenantSettings, id: string) {
  const r = await connector.getPayment(settings, id, sig());
  if (!r.ok) throw new Error(JSON.stringify(r.failure));
  return r.value;
}

// Port v2 adapters: the webhook calls take the whole request / a context; the page form is a checkout view.
type Headers = Record<string, string | string[] | undefined>;
const asRequest = (raw: Buffer, headers: Headers) => ({ method: 'POST', headers, query: {}, rawBody: raw });
const verifyWebhook = (raw: Buffer, headers: Headers, secrets: string[], now: Date): boolean => connector.verifyWebhook(asRequest(raw, headers), secrets, now);
const parseWebhook = (raw: Buffer, headers: Headers) => {
  const r = connector.parseWebhook(asRequest(raw, headers));
  if (!r) return null;
  const { payload: _payload, ...event } = r.events[0]!;
  return event;
};
const webhookOutcome = (raw: Buffer) => connector.webhookOutcome(raw, { payment: null });
function checkoutOf(c: Connector, s: Record<string, unknown>, p: PspPayment, locale: string) {
  const v = c.checkout(s, p, { locale, returnUrl: 'http://shop.test/return', pageUrl: 'http://shop.test/page', cancelUrl: null, amountLabel: '10,00 €', pspData: {} });
  if (v.kind !== 'page') throw new Error(`expected a page form, got ${v.kind}`);
  return v;
}

function signed(body: string, secret: string, t = Math.floor(Date.now() / 1000)): Record<string, string> {
  return { 'sandbox-signature': `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}` };
}

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
  connector = app.deps.connectors.default;
});
afterAll(async () => {
  await app?.close();
});

describe('configuration hooks', () => {
  it('validateFormats returns message keys per field', () => {
    expect(connector.validateFormats(newSettings())).toEqual({});
    expect(connector.validateFormats({ secretKey: 'sk_live_123', webhookSecret: 'whsec_short' })).toEqual({
      secretKey: 'invalid_secret_key_format',
      webhookSecret: 'invalid_webhook_secret_format',
    });
    expect(connector.validateFormats({ secretKey: 42, webhookSecret: 'whsec_0123456789abcdef' })).toEqual({ secretKey: 'invalid_secret_key_format' });
  });

  it('checkCredentials: ok, refused (401 → secretKey), unreachable', async () => {
    expect(await connector.checkCredentials(newSettings(), sig())).toEqual({ ok: true });
    expect(await connector.checkCredentials({ ...newSettings(), secretKey: 'sk_sandbox_abcdefghrevoked' }, sig())).toEqual({
      ok: false,
      kind: 'refused',
      field: 'secretKey',
      message: 'credentials_refused',
    });
    const down = createSandboxConnector({ pspBaseUrl: () => 'http://127.0.0.1:1/sandbox', publicBaseUrl: () => 'http://127.0.0.1:1/sandbox', log: pino({ level: 'silent' }) });
    expect(await down.checkCredentials(newSettings(), sig())).toEqual({ ok: false, kind: 'unreachable' });
  });

  it('afterConfigured registers the webhook endpoint for the mode', async () => {
    const s = newSettings();
    const account = (await app.request('/sandbox/v1/account', { headers: { authorization: `Bearer ${s.secretKey}` } })).body.id;
    await connector.afterConfigured(s, { tenantIdentifier: 'tenant-c', appBaseUrl: 'https://pay.example.com' }, sig());
    const row = async () => (await app.deps.db.query('SELECT url, secret, livemode FROM sandbox_webhook_endpoints WHERE account_id=$1', [account])).rows[0];
    expect(await row()).toEqual({ url: 'https://pay.example.com/webhooks/test', secret: s.webhookSecret, livemode: false });
    await connector.afterConfigured({ ...s, isLive: true }, { tenantIdentifier: 'tenant-c', appBaseUrl: 'https://pay.example.com/' }, sig());
    expect(await row()).toEqual({ url: 'https://pay.example.com/webhooks', secret: s.webhookSecret, livemode: true });
  });

  it('paymentMethods: credit card by default, express announced with script and isLive', () => {
    expect(connector.paymentMethods({})).toEqual([{ name: 'Credit Card', strategy: 'hosted-payment-page' }]);
    const both = connector.paymentMethods({ paymentMethods: ['sandbox-express', 'credit-card'], isLive: true });
    expect(both).toEqual([
      { name: 'Credit Card', strategy: 'hosted-payment-page' },
      {
        name: 'Sandbox Express',
        strategy: 'express-checkout',
        scripts: [{ url: `${app.url}/sandbox/express.js`, queryParams: { currency: 'currencyName', locale: 'localeName' } }],
        paymentServiceProviderData: { isLive: true },
      },
    ]);
    expect(connector.providerName).toBe('Sandbox');
    expect(connector.settings.webhookSecretFields).toEqual(['webhookSecret']);
  });
});

describe('payment operations', () => {
  const s = newSettings();

  it('createPayment: pending, with clientSecret/checkoutUrl, tenant in metadata, idempotent by key', async () => {
    const o = opts('create-once');
    const r = await connector.createPayment(s, req(), o);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ state: 'pending', amount: 1000, currency: 'EUR', amountCapturable: 0, amountCaptured: 0, amountRefunded: 0 });
    expect(r.value.id).toMatch(/^sbx_pay_/);
    expect(r.value.preOrderPaymentData).toEqual({ clientSecret: expect.stringMatching(/_secret_/), checkoutUrl: `${app.url}/sandbox/checkout/${r.value.id}` });
    const again = await connector.createPayment(s, req(), opts('create-once'));
    expect(again.ok && again.value.id).toBe(r.value.id);
    const raw = await app.request(`/sandbox/v1/payments/${r.value.id}`, { headers: { authorization: `Bearer ${s.secretKey}` } });
    expect(raw.body.metadata).toEqual({ orderReference: 'DE--1', tenantIdentifier: 'tenant-c' });
    expect(raw.body.reference).toBe('DE--1');
    const conflict = await connector.createPayment(s, req({ amount: 999 }), opts('create-once'));
    expect(conflict).toMatchObject({ ok: false, failure: { kind: 'conflict' } });
  });

  it('getPayment maps every sandbox status', async () => {
    const a = await created(s);
    await pay(a, '4242424242424242');
    expect(await state(s, a.id)).toMatchObject({ state: 'authorized', amountCapturable: 1000, publicDetails: { cardBrand: 'visa', cardLast4: '4242' } });

    const d = await created(s);
    await pay(d, '4000000000009995');
    expect(await state(s, d.id)).toMatchObject({ state: 'pending', lastDecline: { code: 'insufficient_funds' } });

    const c = await created(s);
    await pay(c, '4000002500003155');
    expect(await state(s, c.id)).toMatchObject({ state: 'requires_action', actionUrl: `${app.url}/sandbox/checkout/${c.id}/challenge` });

    const f = await created(s);
    await pay(f, '4100000000000019');
    expect(await state(s, f.id)).toMatchObject({ state: 'failed', lastDecline: { code: 'card_blocked' } });

    const auto = await created(s, { captureMode: 'automatic' });
    await pay(auto, '4242424242424242');
    expect(await state(s, auto.id)).toMatchObject({ state: 'captured', amountCaptured: 1000 });

    const autoFail = await created(s, { captureMode: 'automatic' });
    await pay(autoFail, '4000000000000341');
    expect((await state(s, autoFail.id)).state).toBe('capture_failed');

    expect(await connector.getPayment(s, 'sbx_pay_unknown', sig())).toMatchObject({ ok: false, failure: { kind: 'error' } });
  });

  it('updatePaymentAmount works before payment, conflicts after', async () => {
    const p = await created(s);
    const u = await connector.updatePaymentAmount(s, p.id, 1500, opts());
    expect(u.ok && u.value).toMatchObject({ id: p.id, amount: 1500, state: 'pending' });
    await pay(p, '4242424242424242');
    expect(await connector.updatePaymentAmount(s, p.id, 2000, opts())).toMatchObject({ ok: false, failure: { kind: 'conflict' } });
  });

  it('capture: partial and repeated; too much → declined; capture failure card → declined capture_failed', async () => {
    const p = await created(s);
    await pay(p, '4242424242424242');
    const c1 = await connector.capture(s, p.id, 400, opts());
    expect(c1).toMatchObject({ ok: true, value: { status: 'succeeded', pspReference: expect.stringMatching(/^sbx_cap_/) } });
    expect(await connector.capture(s, p.id, 601, opts())).toMatchObject({ ok: false, failure: { kind: 'declined', code: 'amount_too_large' } });
    expect((await connector.capture(s, p.id, 600, opts())).ok).toBe(true);
    expect(await state(s, p.id)).toMatchObject({ state: 'captured', amountCaptured: 1000 });
    expect(await connector.capture(s, p.id, 1, opts())).toMatchObject({ ok: false, failure: { kind: 'conflict' } });

    const f = await created(s);
    await pay(f, '4000000000000341');
    expect(await connector.capture(s, f.id, 1000, opts())).toMatchObject({ ok: false, failure: { kind: 'declined', code: 'capture_failed' } });
  });

  it('cancel: ok for authorized, conflict once captured', async () => {
    const p = await created(s);
    await pay(p, '4242424242424242');
    expect(await connector.cancel(s, p.id, opts())).toEqual({ ok: true, value: { status: 'canceled', amountCaptured: 0 } });
    expect((await state(s, p.id)).state).toBe('canceled');
    const c = await created(s, { captureMode: 'automatic' });
    await pay(c, '4242424242424242');
    expect(await connector.cancel(s, c.id, opts())).toMatchObject({ ok: false, failure: { kind: 'conflict' } });
  });

  it('refund: pending with the sandbox refund id; above captured-minus-refunded → declined', async () => {
    const p = await created(s, { captureMode: 'automatic' });
    await pay(p, '4242424242424242');
    const r = await connector.refund(s, p.id, 600, opts());
    expect(r).toMatchObject({ ok: true, value: { status: 'pending', pspRefundId: expect.stringMatching(/^sbx_re_/) } });
    expect(await connector.refund(s, p.id, 401, opts())).toMatchObject({ ok: false, failure: { kind: 'declined', code: 'amount_too_large' } });
  });

  it('paymentPageForm posts the card straight to the sandbox, and that post returns to the shop', async () => {
    const p = await created(s);
    const form = checkoutOf(connector, s, p, 'de_DE');
    const action = `${app.url}/sandbox/checkout/${p.id}/confirm`;
    expect(form.html).toContain(`action="${action}"`);
    expect(form.html).toContain(`name="clientSecret" value="${String(p.preOrderPaymentData.clientSecret)}"`);
    expect(form.html).toContain('Kartennummer');
    expect(form.html).not.toContain('<script');
    expect(form.csp.formAction).toEqual([new URL(app.url).origin]);
    for (const f of ['cardNumber', 'expMonth', 'expYear', 'cvc']) expect(form.html).toContain(`name="${f}"`);
    const res = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ clientSecret: String(p.preOrderPaymentData.clientSecret), cardNumber: '4242424242424242', expMonth: '12', expYear: '2099', cvc: '123' }),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${req().returnUrl}&transactionId=${p.id}`);
    expect((await state(s, p.id)).state).toBe('authorized');
  });
});

describe('capabilities: customer, onboarding, transfers', () => {
  const s = newSettings();

  it('getPayer: null before the express confirmation, then the payer', async () => {
    const p = await created(s);
    expect(await connector.customer!.getPayer(s, p.id, {}, sig())).toEqual({ ok: true, value: null });
    const addr = { firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', zipCode: '10115', city: 'Berlin', iso2Code: 'DE' };
    await pay(p, '4242424242424242', { email: 'sonia@example.com', firstName: 'Sonia', lastName: 'Wagner', phone: '+49301234567', billingAddress: addr, shippingAddress: addr });
    const r = await connector.customer!.getPayer(s, p.id, {}, sig());
    expect(r).toEqual({
      ok: true,
      value: {
        salutation: null,
        firstName: 'Sonia',
        lastName: 'Wagner',
        email: 'sonia@example.com',
        phone: '+49301234567',
        company: null,
        gender: null,
        dateOfBirth: null,
        billingAddress: { salutation: null, firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', address3: null, zipCode: '10115', city: 'Berlin', state: null, region: null, iso2Code: 'DE', company: null, email: null, phone: null, cellPhone: null },
        shippingAddress: expect.objectContaining({ city: 'Berlin', iso2Code: 'DE' }),
      },
    });
    expect(await connector.customer!.getPayer(s, 'sbx_pay_nope', {}, sig())).toMatchObject({ ok: false, failure: { kind: 'error' } });
  });

  it('account, onboarding link, transfer and reversal', async () => {
    const acc = await connector.onboarding!.createAccount(s, { merchantReference: 'MER000001', name: 'Spryker', tenantIdentifier: 'tenant-c' }, opts());
    expect(acc).toMatchObject({ ok: true, value: { status: 'pending', accountId: expect.stringMatching(/^sbx_acct_/) } });
    if (!acc.ok) return;
    const link = await connector.onboarding!.onboardingLink(s, acc.value.accountId, { successUrl: 'https://portal.example/ok', refreshUrl: 'https://portal.example/again' }, sig());
    expect(link.ok).toBe(true);
    if (!link.ok) return;
    expect(link.value.url).toBe(`${app.url}/sandbox/onboarding/${acc.value.accountId}?returnUrl=${encodeURIComponent('https://portal.example/ok')}`);

    const early = await connector.transfers!.createTransfer(s, { amount: 500, currency: 'EUR', destinationAccountId: acc.value.accountId }, opts());
    expect(early).toMatchObject({ ok: false, failure: { kind: 'declined', code: 'account_not_active' } });

    const done = await fetch(link.value.url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=complete' });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('https://portal.example/ok');

    const tr = await connector.transfers!.createTransfer(s, { amount: 500, currency: 'EUR', destinationAccountId: acc.value.accountId, transferGroup: 'DE--1' }, opts('tr-1'));
    expect(tr).toMatchObject({ ok: true, value: { pspTransferId: expect.stringMatching(/^sbx_tr_/) } });
    if (!tr.ok) return;
    const again = await connector.transfers!.createTransfer(s, { amount: 500, currency: 'EUR', destinationAccountId: acc.value.accountId, transferGroup: 'DE--1' }, opts('tr-1'));
    expect(again.ok && again.value.pspTransferId).toBe(tr.value.pspTransferId);
    const rv = await connector.transfers!.reverseTransfer(s, tr.value.pspTransferId, 500, opts());
    expect(rv).toMatchObject({ ok: true, value: { pspReversalId: expect.stringMatching(/^sbx_trr_/) } });
    expect(await connector.transfers!.reverseTransfer(s, tr.value.pspTransferId, 1, opts())).toMatchObject({ ok: false, failure: { kind: 'declined' } });
  });
});

describe('webhooks', () => {
  const secret = 'whsec_0123456789abcdefABCD';
  const body = JSON.stringify({ id: 'evt_1', type: 'payment.authorized', created: 1700000000, livemode: false, data: { object: { id: 'sbx_pay_1', status: 'authorized', captureMethod: 'manual', amount: 1000, amountCaptured: 0, metadata: { tenantIdentifier: 't1' } } } });
  const raw = Buffer.from(body);

  it('verifyWebhook: good, wrong secret, tampered, old or future timestamp, missing header', () => {
    const now = new Date();
    expect(verifyWebhook(raw, signed(body, secret), [secret], now)).toBe(true);
    expect(verifyWebhook(raw, { 'Sandbox-Signature': signed(body, secret)['sandbox-signature']! }, [secret], now)).toBe(true);
    expect(verifyWebhook(raw, signed(body, 'whsec_wrongwrongwrongwrong'), [secret], now)).toBe(false);
    expect(verifyWebhook(Buffer.from(body.replace('1000', '1001')), signed(body, secret), [secret], now)).toBe(false);
    const t = Math.floor(now.getTime() / 1000);
    expect(verifyWebhook(raw, signed(body, secret, t - 301), [secret], now)).toBe(false);
    expect(verifyWebhook(raw, signed(body, secret, t - 299), [secret], now)).toBe(true);
    expect(verifyWebhook(raw, signed(body, secret, t + 301), [secret], now)).toBe(false);
    expect(verifyWebhook(raw, {}, [secret], now)).toBe(false);
    expect(verifyWebhook(raw, { 'sandbox-signature': 'garbage' }, [secret], now)).toBe(false);
    expect(verifyWebhook(raw, signed(body, secret), [], now)).toBe(false);
  });

  it('verifyWebhook: rotated secrets and several v1 entries', () => {
    const now = new Date();
    const old = 'whsec_oldoldoldoldoldold';
    expect(verifyWebhook(raw, signed(body, old), [secret, old], now)).toBe(true);
    expect(verifyWebhook(raw, signed(body, old), [secret], now)).toBe(false);
    const t = Math.floor(now.getTime() / 1000);
    const good = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    const bad = createHmac('sha256', old).update(`${t}.${body}`).digest('hex');
    expect(verifyWebhook(raw, { 'sandbox-signature': `t=${t},v1=${bad},v1=${good}` }, [secret], now)).toBe(true);
    expect(verifyWebhook(raw, { 'sandbox-signature': `t=${t},v1=${bad}` }, [secret], now)).toBe(false);
  });

  it('parseWebhook: ids, mode, tenant hint; null when unparseable', () => {
    expect(parseWebhook(raw, {})).toEqual({ eventId: 'evt_1', eventType: 'payment.authorized', mode: 'test', objectIds: ['sbx_pay_1'], tenantHint: 't1', createdAt: new Date(1700000000 * 1000) });
    const refund = Buffer.from(JSON.stringify({ id: 'evt_2', type: 'refund.succeeded', created: 1, livemode: true, data: { object: { id: 'sbx_re_1', payment: 'sbx_pay_1', amount: 5, status: 'succeeded', metadata: {} } } }));
    expect(parseWebhook(refund, {})).toMatchObject({ mode: 'live', objectIds: ['sbx_re_1', 'sbx_pay_1'], tenantHint: undefined });
    for (const bad of ['', 'nope', '{}', '[]', JSON.stringify({ id: 'x', type: 't', created: 1, data: { object: { id: 'a' } } }), JSON.stringify({ id: 'evt_1', type: 'x', created: 1, data: {} })]) {
      expect(parseWebhook(Buffer.from(bad), {}), bad).toBeNull();
    }
  });

  it('webhookOutcome maps real sandbox events end to end', async () => {
    const s = newSettings();
    const received: Array<{ body: string; headers: Record<string, string | string[] | undefined> }> = [];
    const server: Server = createServer((rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: rq.headers });
        rs.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/test`;
      await app.request('/sandbox/v1/webhook-endpoints', { headers: { authorization: `Bearer ${s.secretKey}` }, body: { url, secret: s.webhookSecret, livemode: false } });
      const wait = async (pred: (b: any) => boolean) => {
        for (let i = 0; i < 400; i++) {
          const hit = received.find((r) => pred(JSON.parse(r.body)));
          if (hit) return hit;
          await new Promise((r) => setTimeout(r, 25));
        }
        throw new Error('event not received');
      };
      const outcome = async (type: string, id: string) => {
        const hit = await wait((b) => b.type === type && b.data.object.id === id);
        expect(verifyWebhook(Buffer.from(hit.body), hit.headers, [s.webhookSecret as string], new Date())).toBe(true);
        expect(parseWebhook(Buffer.from(hit.body), hit.headers)).toMatchObject({ eventType: type, mode: 'test', tenantHint: type.startsWith('transfer') ? undefined : 'tenant-c' });
        return webhookOutcome(Buffer.from(hit.body));
      };

      const p = await created(s);
      await pay(p, '4000000000000002');
      expect(await outcome('payment.attempt_failed', p.id)).toMatchObject({ kind: 'payment', transactionId: p.id, state: 'pending', decline: { code: 'card_declined' } });
      await pay(p, '4242424242424242');
      expect(await outcome('payment.authorized', p.id)).toMatchObject({ kind: 'payment', state: 'authorized', publicDetails: { cardLast4: '4242' } });
      await connector.capture(s, p.id, 300, opts());
      expect(await outcome('payment.captured', p.id)).toEqual({ kind: 'capture', transactionId: p.id, amountCaptured: 300, succeeded: true });
      const rf = await connector.refund(s, p.id, 200, opts());
      const refundId = rf.ok ? rf.value.pspRefundId : '';
      expect(await outcome('refund.succeeded', refundId)).toEqual({ kind: 'refund', transactionId: p.id, pspRefundId: refundId, amount: 200, status: 'succeeded' });
      await connector.cancel(s, p.id, opts());
      expect(await outcome('payment.canceled', p.id)).toMatchObject({ kind: 'payment', state: 'captured', amountCaptured: 300 });

      const f = await created(s);
      await pay(f, '4100000000000019');
      expect(await outcome('payment.failed', f.id)).toMatchObject({ kind: 'payment', state: 'failed', decline: { code: 'card_blocked' } });

      const auto = await created(s, { captureMode: 'automatic' });
      await pay(auto, '4242424242424242');
      expect(await outcome('payment.captured', auto.id)).toMatchObject({ kind: 'payment', state: 'captured', amountCaptured: 1000 });

      const autoFail = await created(s, { captureMode: 'automatic' });
      await pay(autoFail, '4000000000000341');
      expect(await outcome('payment.capture_failed', autoFail.id)).toMatchObject({ kind: 'payment', state: 'capture_failed' });

      const manualFail = await created(s);
      await pay(manualFail, '4000000000000341');
      await connector.capture(s, manualFail.id, 1000, opts());
      expect(await outcome('payment.capture_failed', manualFail.id)).toEqual({ kind: 'capture', transactionId: manualFail.id, amountCaptured: 0, succeeded: false, reason: 'capture_failed' });

      const rfail = await created(s, { captureMode: 'automatic' });
      await pay(rfail, '4000000000005126');
      const r2 = await connector.refund(s, rfail.id, 1000, opts());
      const r2id = r2.ok ? r2.value.pspRefundId : '';
      expect(await outcome('refund.failed', r2id)).toEqual({ kind: 'refund', transactionId: rfail.id, pspRefundId: r2id, amount: 1000, status: 'failed', reason: 'refund_failed' });

      const acc = await connector.onboarding!.createAccount(s, { merchantReference: 'MER1', tenantIdentifier: 'tenant-c' }, opts());
      const accountId = acc.ok ? acc.value.accountId : '';
      await fetch(`${app.url}/sandbox/onboarding/${accountId}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=complete' });
      expect(await outcome('account.updated', accountId)).toEqual({ kind: 'account', accountId, merchantStatus: 'enabled' });
      const tr = await connector.transfers!.createTransfer(s, { amount: 100, currency: 'EUR', destinationAccountId: accountId }, opts());
      const trId = tr.ok ? tr.value.pspTransferId : '';
      expect(await outcome('transfer.created', trId)).toEqual({ kind: 'transfer', pspTransferId: trId, status: 'succeeded' });
      const rv = await connector.transfers!.reverseTransfer(s, trId, 100, opts());
      expect(await outcome('transfer.reversed', trId)).toEqual({ kind: 'transfer', pspTransferId: trId, status: 'succeeded', reversalId: rv.ok ? rv.value.pspReversalId : 'x' });

      expect(webhookOutcome(Buffer.from(JSON.stringify({ id: 'evt_9', type: 'payment.something_else', created: 1, livemode: false, data: { object: { id: 'sbx_pay_1' } } })))).toMatchObject({ kind: 'ignored' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('timeouts and PSP failures', () => {
  let hang: Server;
  let broken: Server;
  let hangUrl = '';
  let brokenUrl = '';
  beforeAll(async () => {
    hang = createServer(() => {
      /* never answers */
    });
    broken = createServer((_rq, rs) => rs.writeHead(503, { 'content-type': 'text/plain' }).end('down'));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
    hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/sandbox`;
    brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/sandbox`;
  });
  afterAll(async () => {
    hang.closeAllConnections();
    await new Promise<void>((r) => hang.close(() => r()));
    await new Promise<void>((r) => broken.close(() => r()));
  });
  const make = (url: string) => createSandboxConnector({ pspBaseUrl: () => url, publicBaseUrl: () => url, log: pino({ level: 'silent' }) });

  it('an aborted call maps to {kind: timeout}', async () => {
    const c = make(hangUrl);
    const s = newSettings();
    const short = (): CallOptions => ({ idempotencyKey: 'k', signal: AbortSignal.timeout(100) });
    expect(await c.createPayment(s, req(), short())).toEqual({ ok: false, failure: { kind: 'timeout' } });
    expect(await c.getPayment(s, 'sbx_pay_1', AbortSignal.timeout(100))).toEqual({ ok: false, failure: { kind: 'timeout' } });
    expect(await c.capture(s, 'sbx_pay_1', 1, short())).toEqual({ ok: false, failure: { kind: 'timeout' } });
    expect(await c.refund(s, 'sbx_pay_1', 1, short())).toEqual({ ok: false, failure: { kind: 'timeout' } });
    expect(await c.checkCredentials(s, AbortSignal.timeout(100))).toEqual({ ok: false, kind: 'unreachable' });
  });

  it('5xx and unreachable map to {kind: error}', async () => {
    const s = newSettings();
    expect(await make(brokenUrl).cancel(s, 'sbx_pay_1', opts())).toMatchObject({ ok: false, failure: { kind: 'error' } });
    expect(await make('http://127.0.0.1:1/sandbox').getPayment(s, 'sbx_pay_1', sig())).toMatchObject({ ok: false, failure: { kind: 'error' } });
    expect(await make(brokenUrl).checkCredentials(s, sig())).toEqual({ ok: false, kind: 'unreachable' });
  });
});

describe('in-process sandbox: requests dispatched in memory', () => {
  it('the app calls its own /sandbox routes without a request over its socket', async () => {
    const overHttp: string[] = [];
    const seen = (req: { url?: string }): void => {
      overHttp.push(req.url ?? '');
    };
    app.app.server.on('request', seen);
    try {
      const s = newSettings();
      const p = await created(s);
      expect(await state(s, p.id)).toMatchObject({ id: p.id, amount: 1000, amountCaptured: 0 });
      expect(await connector.capture(s, p.id, 1000, opts())).toMatchObject({ ok: false, failure: { kind: 'conflict' } });
      await app.request('/health'); // the listener sees what does come over HTTP
      expect(overHttp).toEqual(['/health']);
      // the same routes answered: the payment is in the sandbox's tables
      expect((await app.deps.db.query('SELECT count(*)::int AS n FROM sandbox_payments WHERE id = $1', [p.id])).rows[0].n).toBe(1);
    } finally {
      app.app.server.off('request', seen);
    }
  });

  it('a dispatch that does not answer in time is a timeout; one that fails is an error', async () => {
    const silent = pino({ level: 'silent' });
    const hanging = createSandboxConnector({ pspBaseUrl: () => 'http://127.0.0.1:1/sandbox', inProcess: { dispatch: () => () => new Promise(() => undefined), path: '/sandbox' }, publicBaseUrl: () => 'http://127.0.0.1:1/sandbox', log: silent });
    const s = newSettings();
    expect(await hanging.createPayment(s, req(), { idempotencyKey: 'k', signal: AbortSignal.timeout(100) })).toEqual({ ok: false, failure: { kind: 'timeout' } });
    const failing = createSandboxConnector({ pspBaseUrl: () => 'http://127.0.0.1:1/sandbox', inProcess: { dispatch: () => () => Promise.reject(new Error('server closed')), path: '/sandbox' }, publicBaseUrl: () => 'http://127.0.0.1:1/sandbox', log: silent });
    expect(await failing.getPayment(s, 'sbx_pay_1', sig())).toEqual({ ok: false, failure: { kind: 'error', message: 'sandbox unreachable: server closed' } });
  });
});

describe('standalone sandbox (SANDBOX_PSP_URL)', () => {
  it('the app talks to a separately running sandbox and does not mount its own', async () => {
    const { startStandaloneSandbox } = await import('../src/sandbox/standalone.js');
    const sbx = await startStandaloneSandbox({ PORT: '0', DATABASE_URL: 'memory://', LOG_LEVEL: 'silent' });
    let other: TestApp | undefined;
    try {
      other = await startTestApp({ SANDBOX_PSP_URL: `${sbx.url}/sandbox` });
      const own = await other.request('/sandbox/v1/account', { headers: { authorization: 'Bearer sk_sandbox_abcdefgh' } });
      expect(own.status).toBe(404);
      expect(own.body.errors).toBeDefined(); // the app's error format: no sandbox here
      const s = newSettings();
      expect(await other.deps.connectors.default.checkCredentials(s, sig())).toEqual({ ok: true });
      const r = await other.deps.connectors.default.createPayment(s, req(), opts());
      expect(r.ok && r.value.preOrderPaymentData.checkoutUrl).toBe(`${sbx.url}/sandbox/checkout/${r.ok ? r.value.id : ''}`);
      const form = checkoutOf(other.deps.connectors.default, s, r.ok ? r.value : (undefined as never), 'en_US');
      expect(form.csp.formAction).toEqual([new URL(sbx.url).origin]);
      const health = await fetch(`${sbx.url}/health`);
      expect(health.status).toBe(200);
    } finally {
      await other?.close();
      await sbx.close();
    }
  });
});

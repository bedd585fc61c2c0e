/**
 * The sandbox PSP through HTTP against a running app (sandbox-psp.md): API, test cards, captures, cancels, refunds,
 * idempotency, hosted checkout and challenge, signed webhooks with retries, accounts/onboarding/transfers, customers.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountForKey, newId } from '../src/sandbox/util.js';
import { startTestApp, statementsOf, type TestApp } from './helpers/app.js';

let app: TestApp;

const newKey = (): string => `sk_sandbox_${randomBytes(8).toString('hex')}`;
const CARD = (number: string) => ({ number, expMonth: 12, expYear: new Date().getUTCFullYear() + 2, cvc: '123' });

async function api(key: string, path: string, init: { body?: unknown; method?: string; idem?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (init.idem) headers['idempotency-key'] = init.idem;
  return app.request(`/sandbox${path}`, { method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'), body: init.body, headers });
}

async function createPayment(key: string, extra: Record<string, unknown> = {}) {
  const r = await api(key, '/v1/payments', { body: { amount: 1000, currency: 'EUR', captureMethod: 'manual', metadata: { tenantIdentifier: 'tenant-a' }, ...extra } });
  expect(r.status).toBe(200);
  return r.body as { id: string; clientSecret: string; checkoutUrl: string; status: string };
}

async function confirm(p: { id: string; clientSecret: string }, number: string, payer?: unknown) {
  return app.request(`/sandbox/v1/payments/${p.id}/confirm`, { body: { clientSecret: p.clientSecret, card: CARD(number), ...(payer ? { payer } : {}) } });
}

async function authorizedPayment(key: string, number = '4242424242424242', extra: Record<string, unknown> = {}) {
  const p = await createPayment(key, extra);
  const r = await confirm(p, number);
  expect(r.status).toBe(200);
  return p;
}

/** A local webhook endpoint that records what it receives; answers `failFirst` times with 500 first. */
class Receiver {
  server!: Server;
  url = '';
  received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
  failFirst = 0;
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (this.failFirst > 0) {
          this.failFirst -= 1;
          res.writeHead(500).end('nope');
        } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  events(): Array<{ id: string; type: string; livemode: boolean; data: { object: any } }> {
    return this.received.map((r) => JSON.parse(r.body));
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Independent check of `Sandbox-Signature` (not using the app's or the sandbox's code). */
function signatureValid(header: string, body: string, secret: string): boolean {
  const parts = header.split(',').map((p) => p.split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  const v1 = parts.filter(([k]) => k === 'v1').map(([, v]) => v);
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return !!t && Math.abs(Date.now() / 1000 - Number(t)) < 300 && v1.includes(expected);
}

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
});
afterAll(async () => {
  await app?.close();
});

describe('ids', () => {
  it('are the prefix and 24 hex digits, distinct across many draws of the random pool', () => {
    const ids = Array.from({ length: 5_000 }, () => newId('sbx_pay_'));
    for (const id of ids) expect(id).toMatch(/^sbx_pay_[0-9a-f]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('account and authentication', () => {
  it('answers the account for a valid key, the same id for the same key', async () => {
    const key = newKey();
    const a = await api(key, '/v1/account');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ livemode: false });
    expect(a.body.id).toMatch(/^sbx_acct_/);
    expect((await api(key, '/v1/account')).body.id).toBe(a.body.id);
    expect((await api(newKey(), '/v1/account')).body.id).not.toBe(a.body.id);
  });

  it('refuses revoked, malformed and missing keys with 401 in the sandbox error format', async () => {
    for (const key of ['sk_sandbox_abcdefghrevoked', 'sk_sandbox_short', 'sk_live_abcdefghijkl', 'sk_sandbox_abc-defghij']) {
      const r = await api(key, '/v1/account');
      expect(r.status, key).toBe(401);
      expect(r.body.error).toMatchObject({ type: 'authentication', code: 'invalid_api_key' });
    }
    const none = await app.request('/sandbox/v1/account');
    expect(none.status).toBe(401);
  });

  it('keeps accounts apart: another key cannot see a payment', async () => {
    const p = await createPayment(newKey());
    const r = await api(newKey(), `/v1/payments/${p.id}`);
    expect(r.status).toBe(404);
    expect(r.body.error.type).toBe('not_found');
  });

  it('answers client mistakes with 400 invalid_request naming the parameter', async () => {
    const key = newKey();
    const r = await api(key, '/v1/payments', { body: { amount: -5, currency: 'EUR' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request', param: 'amount' });
    expect((await api(key, '/v1/payments', { body: { amount: 5, currency: 'EURO' } })).body.error.param).toBe('currency');
    expect((await api(key, '/v1/payments', { body: { amount: 5, currency: 'EUR', returnUrl: 'javascript:alert(1)' } })).status).toBe(400);
    const unknown = await api(key, '/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.type).toBe('not_found');
    const bad = await app.request('/sandbox/v1/payments', { raw: '{nope', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.type).toBe('invalid_request');
  });

  it('creates payments in the documented shape', async () => {
    const p = await createPayment(newKey(), { reference: 'DE--1', returnUrl: 'https://shop.example/back' });
    expect(p).toMatchObject({ status: 'requires_payment_method', amount: 1000, currency: 'EUR', amountCapturable: 0, amountCaptured: 0, amountRefunded: 0, reference: 'DE--1' });
    expect(p.id).toMatch(/^sbx_pay_/);
    expect(p.clientSecret).toMatch(new RegExp(`^${p.id}_secret_`));
    expect(p.checkoutUrl).toBe(`${app.url}/sandbox/checkout/${p.id}`);
  });
});

describe('test cards through the API confirm', () => {
  const key = newKey();

  it('4242424242424242 authorizes', async () => {
    const p = await createPayment(key);
    const r = await confirm(p, '4242424242424242');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'authorized', amountCapturable: 1000, card: { brand: 'visa', last4: '4242' } });
    expect(JSON.stringify(r.body)).not.toContain('4242424242424242');
  });

  it.each([
    ['4000000000000002', 'card_declined'],
    ['4000000000009995', 'insufficient_funds'],
  ])('%s is a retryable decline (%s): 402 and back to requires_payment_method', async (number, code) => {
    const p = await createPayment(key);
    const r = await confirm(p, number);
    expect(r.status).toBe(402);
    expect(r.body.error).toMatchObject({ type: 'card_error', code });
    const g = await api(key, `/v1/payments/${p.id}`);
    expect(g.body).toMatchObject({ status: 'requires_payment_method', declineCount: 1, lastDecline: { code } });
    // another card may follow
    expect((await confirm(p, '4242424242424242')).body.status).toBe('authorized');
  });

  it('4100000000000019 fails for good (card_blocked)', async () => {
    const p = await createPayment(key);
    const r = await confirm(p, '4100000000000019');
    expect(r.status).toBe(402);
    expect(r.body.error).toMatchObject({ type: 'card_error', code: 'card_blocked' });
    expect((await api(key, `/v1/payments/${p.id}`)).body.status).toBe('failed');
    const again = await confirm(p, '4242424242424242');
    expect(again.status).toBe(409);
    expect(again.body.error.type).toBe('conflict');
  });

  it('4000002500003155 requires action with a challenge URL', async () => {
    const p = await createPayment(key);
    const r = await confirm(p, '4000002500003155');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'requires_action', nextAction: { type: 'challenge', url: `${app.url}/sandbox/checkout/${p.id}/challenge` } });
  });

  it('4000000000000341 authorizes but every capture fails', async () => {
    const p = await authorizedPayment(key, '4000000000000341');
    for (let i = 0; i < 2; i++) {
      const c = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 100 } });
      expect(c.status).toBe(402);
      expect(c.body.error).toMatchObject({ type: 'card_error', code: 'capture_failed' });
    }
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'authorized', amountCaptured: 0, amountCapturable: 1000 });
  });

  it('another Luhn-valid number behaves like 4242; a Luhn-invalid one is rejected with invalid_number', async () => {
    const p = await createPayment(key);
    const bad = await confirm(p, '4242424242424241');
    expect(bad.status).toBe(402);
    expect(bad.body.error.code).toBe('invalid_number');
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'requires_payment_method', declineCount: 0 });
    expect((await confirm(p, '5555555555554444')).body).toMatchObject({ status: 'authorized', card: { brand: 'mastercard' } });
  });

  it('fails the payment for good after 5 retryable declines', async () => {
    const p = await createPayment(key);
    for (let i = 1; i <= 4; i++) expect((await confirm(p, '4000000000000002')).body.error.payment.status).toBe('requires_payment_method');
    const fifth = await confirm(p, '4000000000009995');
    expect(fifth.status).toBe(402);
    expect(fifth.body.error.payment).toMatchObject({ status: 'failed', declineCount: 5 });
  });

  it('automatic capture captures at confirmation', async () => {
    const p = await authorizedPayment(key, '4242424242424242', { captureMethod: 'automatic' });
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'captured', amountCaptured: 1000, amountCapturable: 0 });
  });

  it('confirm needs the clientSecret of the payment', async () => {
    const p = await createPayment(key);
    const r = await app.request(`/sandbox/v1/payments/${p.id}/confirm`, { body: { clientSecret: 'sbx_pay_x_secret_y', card: CARD('4242424242424242') } });
    expect(r.status).toBe(401);
    expect(r.body.error.type).toBe('authentication');
    expect((await api(key, `/v1/payments/${p.id}`)).body.status).toBe('requires_payment_method');
  });

  it('update changes the amount only before payment', async () => {
    const p = await createPayment(key);
    expect((await api(key, `/v1/payments/${p.id}/update`, { body: { amount: 1500 } })).body.amount).toBe(1500);
    await confirm(p, '4242424242424242');
    expect((await api(key, `/v1/payments/${p.id}/update`, { body: { amount: 2000 } })).status).toBe(409);
  });
});

describe('captures and cancels', () => {
  const key = newKey();

  it('captures partially and repeatedly until nothing is capturable', async () => {
    const p = await authorizedPayment(key);
    const c1 = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 300 } });
    expect(c1.body).toMatchObject({ status: 'authorized', amountCaptured: 300, amountCapturable: 700, capture: { amount: 300 } });
    const tooMuch = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 701 } });
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.body.error.code).toBe('amount_too_large');
    expect((await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 200 } })).body).toMatchObject({ amountCaptured: 500, amountCapturable: 500 });
    const rest = await api(key, `/v1/payments/${p.id}/capture`, { body: {} });
    expect(rest.body).toMatchObject({ status: 'captured', amountCaptured: 1000, amountCapturable: 0 });
    const more = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 1 } });
    expect(more.status).toBe(409);
    const cancel = await api(key, `/v1/payments/${p.id}/cancel`, { body: {} });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.type).toBe('conflict');
  });

  it('cannot capture before authorization', async () => {
    const p = await createPayment(key);
    expect((await api(key, `/v1/payments/${p.id}/capture`, { body: {} })).status).toBe(409);
  });

  it('cancels requires_payment_method, requires_action and authorized payments; repeats are no-ops; failed answers 409', async () => {
    const open = await createPayment(key);
    expect((await api(key, `/v1/payments/${open.id}/cancel`, { body: {} })).body.status).toBe('canceled');
    expect((await api(key, `/v1/payments/${open.id}/cancel`, { body: {} })).body.status).toBe('canceled');
    expect((await confirm(open, '4242424242424242')).status).toBe(409);

    const challenged = await createPayment(key);
    await confirm(challenged, '4000002500003155');
    expect((await api(key, `/v1/payments/${challenged.id}/cancel`, { body: {} })).body.status).toBe('canceled');

    const auth = await authorizedPayment(key);
    expect((await api(key, `/v1/payments/${auth.id}/cancel`, { body: {} })).body).toMatchObject({ status: 'canceled', amountCapturable: 0 });

    const failed = await createPayment(key);
    await confirm(failed, '4100000000000019');
    expect((await api(key, `/v1/payments/${failed.id}/cancel`, { body: {} })).status).toBe(409);
  });

  it('cancel after a partial capture releases only the remainder', async () => {
    const p = await authorizedPayment(key);
    await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 400 } });
    const r = await api(key, `/v1/payments/${p.id}/cancel`, { body: {} });
    expect(r.body).toMatchObject({ status: 'captured', amountCaptured: 400, amountCapturable: 0 });
  });
});

describe('idempotency keys', () => {
  const key = newKey();

  it('same key and body return the first result; a different body answers 409', async () => {
    const body = { amount: 700, currency: 'EUR', metadata: { a: '1', b: '2' } };
    const a = await api(key, '/v1/payments', { body, idem: 'create-1' });
    const b = await api(key, '/v1/payments', { body: { metadata: { b: '2', a: '1' }, currency: 'EUR', amount: 700 }, idem: 'create-1' });
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    const c = await api(key, '/v1/payments', { body: { ...body, amount: 701 }, idem: 'create-1' });
    expect(c.status).toBe(409);
    expect(c.body.error).toMatchObject({ type: 'conflict', code: 'idempotency_key_reused' });
    // keys belong to one account
    expect((await api(newKey(), '/v1/payments', { body: { ...body, amount: 701 }, idem: 'create-1' })).status).toBe(200);
  });

  it('concurrent creations share statements: each its own payment, a repeated key its first payment, a reused key 409', async () => {
    const k = newKey();
    const body = (amount: number) => ({ amount, currency: 'EUR', captureMethod: 'manual', metadata: { n: String(amount) } });
    let answers: Array<Awaited<ReturnType<typeof api>>> = [];
    const sql = await statementsOf(app, async () => {
      answers = await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => api(k, '/v1/payments', { body: body(100 + i), idem: `distinct-${i}` })),
        ...Array.from({ length: 4 }, () => api(k, '/v1/payments', { body: body(500), idem: 'repeated' })),
        api(k, '/v1/payments', { body: body(501), idem: 'repeated' }),
      ]);
    });
    const distinct = answers.slice(0, 20);
    for (const [i, a] of distinct.entries()) expect([a.status, a.body.amount]).toEqual([200, 100 + i]);
    expect(new Set(distinct.map((a) => a.body.id)).size).toBe(20);
    const repeated = answers.slice(20, 24);
    for (const a of repeated) expect([a.status, a.body.amount]).toEqual([200, 500]);
    expect(new Set(repeated.map((a) => a.body.id)).size).toBe(1);
    expect(repeated.map((a) => a.body)).toEqual(repeated.map(() => repeated[0]!.body));
    expect([answers[24]!.status, answers[24]!.body.error?.code]).toEqual([409, 'idempotency_key_reused']);
    // every answered payment exists, with the amount answered; nothing else was stored
    const stored = (await app.deps.db.query<{ id: string; amount: string | number }>('SELECT id, amount FROM sandbox_payments WHERE account_id = $1', [accountForKey(k)])).rows;
    expect(stored.map((r) => `${r.id}:${Number(r.amount)}`).sort()).toEqual([...distinct, repeated[0]!].map((a) => `${a.body.id}:${a.body.amount}`).sort());
    expect(sql.filter((s) => s.includes('INSERT INTO sandbox_payments')).length).toBeLessThan(21);
  });

  it('a repeated capture with the same key captures once', async () => {
    const p = await authorizedPayment(key);
    const first = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 250 }, idem: 'cap-1' });
    const again = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 250 }, idem: 'cap-1' });
    expect(again.body).toEqual(first.body);
    expect((await api(key, `/v1/payments/${p.id}`)).body.amountCaptured).toBe(250);
  });

  it('replays a decline too instead of confirming again', async () => {
    const p = await createPayment(key);
    const body = { clientSecret: p.clientSecret, card: CARD('4000000000000002') };
    const h = { 'idempotency-key': 'confirm-1' };
    const a = await app.request(`/sandbox/v1/payments/${p.id}/confirm`, { body, headers: h });
    const b = await app.request(`/sandbox/v1/payments/${p.id}/confirm`, { body, headers: h });
    expect(b.status).toBe(402);
    expect(b.body).toEqual(a.body);
    expect((await api(key, `/v1/payments/${p.id}`)).body.declineCount).toBe(1);
  });
});

describe('idempotent captures, cancels and refunds (two statements each)', () => {
  const key = newKey();
  const rows = async (sql: string, params: unknown[]) => (await app.deps.db.query<Record<string, any>>(sql, params)).rows;
  const eventsFor = (id: string) => rows(`SELECT type, body FROM sandbox_events WHERE body LIKE $1 ORDER BY seq`, [`%"id":"${id}"%`]);
  const idemRow = (k: string) => rows('SELECT status, response FROM sandbox_idempotency WHERE key=$1', [k]);

  /** The statements of `fn` on the sandbox's payments and idempotency keys (not the dispatcher's). */
  async function paymentStatements(fn: () => Promise<unknown>): Promise<string[]> {
    return (await statementsOf(app, fn)).filter((s) => /sandbox_payments|sandbox_idempotency/.test(s) && !/^\s*DELETE/.test(s));
  }

  it('a capture with a key locks and writes in two statements; its replay answers the first result and writes no second event', async () => {
    const p = await authorizedPayment(key);
    let first!: Awaited<ReturnType<typeof api>>;
    const stmts = await paymentStatements(async () => {
      first = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 300 }, idem: 'cap-2' });
    });
    expect(first.status).toBe(200);
    expect(stmts).toHaveLength(2);
    const again = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 300 }, idem: 'cap-2' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await eventsFor(p.id)).map((e) => e.type)).toEqual(['payment.authorized', 'payment.captured']);
    expect((await idemRow('cap-2'))[0]).toEqual({ status: 200, response: first.body });
    const other = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 301 }, idem: 'cap-2' });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ amountCaptured: 300, amountCapturable: 700 });
  });

  it('a capture that fails with an error stores no key: the same key works for a valid request afterwards', async () => {
    const p = await authorizedPayment(key);
    const tooMuch = await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 5000 }, idem: 'cap-3' });
    expect(tooMuch.status).toBe(400);
    expect(await idemRow('cap-3')).toEqual([]);
    const missing = await api(key, '/v1/payments/sbx_pay_missing/capture', { body: {}, idem: 'cap-4' });
    expect(missing.status).toBe(404);
    expect(await idemRow('cap-4')).toEqual([]);
    const foreign = await api(newKey(), `/v1/payments/${p.id}/capture`, { body: {}, idem: 'cap-5' });
    expect(foreign.status).toBe(404);
    expect((await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 100 }, idem: 'cap-3' })).body).toMatchObject({ amountCaptured: 100 });
    expect((await eventsFor(p.id)).map((e) => e.type)).toEqual(['payment.authorized', 'payment.captured']);
  });

  it('a failed capture (402, payment changed) is stored and replayed with its one capture_failed event', async () => {
    const p = await authorizedPayment(key, '4000000000000341');
    const a = await api(key, `/v1/payments/${p.id}/capture`, { body: {}, idem: 'cap-6' });
    expect(a.status).toBe(402);
    const b = await api(key, `/v1/payments/${p.id}/capture`, { body: {}, idem: 'cap-6' });
    expect(b.status).toBe(402);
    expect(b.body).toEqual(a.body);
    expect((await eventsFor(p.id)).map((e) => e.type)).toEqual(['payment.authorized', 'payment.capture_failed']);
  });

  it('event bodies keep their exact shape; livemode is false without an endpoint', async () => {
    const p = await authorizedPayment(key);
    await api(key, `/v1/payments/${p.id}/capture`, { body: {}, idem: 'cap-7' });
    const [, cap] = await eventsFor(p.id);
    const body = JSON.parse(cap!.body);
    expect(Object.keys(body)).toEqual(['id', 'type', 'created', 'livemode', 'data']);
    expect(cap!.body).toBe(JSON.stringify(body));
    expect(body).toMatchObject({ type: 'payment.captured', livemode: false, data: { object: { id: p.id, status: 'captured', amountCaptured: 1000 } } });
  });

  it('cancel and refund with a key: two statements each, replayed without a second write', async () => {
    const c = await authorizedPayment(key);
    let cancel!: Awaited<ReturnType<typeof api>>;
    expect(await paymentStatements(async () => (cancel = await api(key, `/v1/payments/${c.id}/cancel`, { body: {}, idem: 'can-1' })))).toHaveLength(2);
    expect(cancel.body.status).toBe('canceled');
    expect((await api(key, `/v1/payments/${c.id}/cancel`, { body: {}, idem: 'can-1' })).body).toEqual(cancel.body);
    expect((await eventsFor(c.id)).map((e) => e.type)).toEqual(['payment.authorized', 'payment.canceled']);

    const p = await authorizedPayment(key);
    await api(key, `/v1/payments/${p.id}/capture`, { body: {} });
    let refund!: Awaited<ReturnType<typeof api>>;
    expect(await paymentStatements(async () => (refund = await api(key, '/v1/refunds', { body: { payment: p.id, amount: 400 }, idem: 'ref-1' })))).toHaveLength(2);
    expect(refund.body).toMatchObject({ status: 'pending', amount: 400, payment: p.id });
    expect((await api(key, '/v1/refunds', { body: { payment: p.id, amount: 400 }, idem: 'ref-1' })).body).toEqual(refund.body);
    expect(await rows('SELECT id FROM sandbox_refunds WHERE payment_id=$1', [p.id])).toEqual([{ id: refund.body.id }]);
    expect((await api(key, `/v1/payments/${p.id}`)).body.amountRefunded).toBe(400);
    const over = await api(key, '/v1/refunds', { body: { payment: p.id, amount: 601 }, idem: 'ref-2' });
    expect(over.status).toBe(400);
    expect(await idemRow('ref-2')).toEqual([]);
  });
});

describe('hosted checkout and challenge', () => {
  const key = newKey();
  const form = (p: { id: string; clientSecret: string }, cardNumber: string, extra: Record<string, string> = {}) =>
    app.request(`/sandbox/checkout/${p.id}/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      raw: new URLSearchParams({ clientSecret: p.clientSecret, cardNumber, expMonth: '12', expYear: String(new Date().getUTCFullYear() + 1), cvc: '123', ...extra }).toString(),
    });

  it('shows a standalone, script-free checkout page with a restrictive CSP', async () => {
    const p = await createPayment(key, { reference: '<b>DE--9</b>', returnUrl: 'https://shop.example/return' });
    const r = await app.request(`/sandbox/checkout/${p.id}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('https://shop.example');
    expect(r.text).not.toContain('<script');
    expect(r.text).toContain('name="viewport"');
    expect(r.text).toContain('&lt;b&gt;DE--9&lt;/b&gt;');
    expect(r.text).toContain(`action="${app.url}/sandbox/checkout/${p.id}/confirm"`);
    expect(r.text).toMatch(/name="cardNumber"/);
    expect((await app.request('/sandbox/checkout/sbx_pay_unknown')).status).toBe(404);
  });

  it('a form post redirects to the returnUrl with transactionId appended', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/app-payment/redirect?tenantIdentifier=t1' });
    const r = await form(p, '4242 4242 4242 4242');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`https://shop.example/app-payment/redirect?tenantIdentifier=t1&transactionId=${p.id}`);
    expect((await api(key, `/v1/payments/${p.id}`)).body.status).toBe('authorized');
    // a second post (double submit) just goes back
    expect((await form(p, '4242424242424242')).status).toBe(303);
  });

  it('keeps an existing transactionId in the returnUrl', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/r?transactionId=given' });
    expect((await form(p, '4242424242424242')).headers.get('location')).toBe('https://shop.example/r?transactionId=given');
  });

  it('a decline also returns to the shop (which asks the status); from the standalone page it shows the error', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/r' });
    expect((await form(p, '4000000000000002')).status).toBe(303);
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'requires_payment_method', lastDecline: { code: 'card_declined' } });
    const standalone = await form(p, '4000000000009995', { origin: 'checkout' });
    expect(standalone.status).toBe(200);
    expect(standalone.text).toContain('insufficient funds');
  });

  it('rejects a form without the payment\'s clientSecret', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/r' });
    const r = await form({ id: p.id, clientSecret: 'wrong' }, '4242424242424242');
    expect(r.status).toBe(400);
    expect((await api(key, `/v1/payments/${p.id}`)).body.status).toBe('requires_payment_method');
  });

  it('requires_action goes through the challenge page: Complete authorizes', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/r' });
    const r = await form(p, '4000002500003155');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`${app.url}/sandbox/checkout/${p.id}/challenge`);
    const page = await app.request(`/sandbox/checkout/${p.id}/challenge`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="outcome" value="complete"');
    expect(page.text).toContain('name="outcome" value="fail"');
    const done = await app.request(`/sandbox/checkout/${p.id}/challenge`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'outcome=complete' });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`https://shop.example/r?transactionId=${p.id}`);
    expect((await api(key, `/v1/payments/${p.id}`)).body.status).toBe('authorized');
  });

  it('challenge Fail is a retryable decline', async () => {
    const p = await createPayment(key, { returnUrl: 'https://shop.example/r' });
    await confirm(p, '4000002500003155');
    const done = await app.request(`/sandbox/checkout/${p.id}/challenge`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'outcome=fail' });
    expect(done.status).toBe(303);
    expect((await api(key, `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'requires_payment_method', lastDecline: { code: 'authentication_failed' }, declineCount: 1 });
    const bad = await app.request(`/sandbox/checkout/${p.id}/challenge`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'outcome=maybe' });
    expect(bad.status).toBe(400);
  });
});

describe('webhooks, refunds, accounts and transfers', () => {
  const key = newKey();
  const secret = `whsec_${randomBytes(12).toString('hex')}`;
  const rx = new Receiver();

  beforeAll(async () => {
    await rx.start();
    const r = await api(key, '/v1/webhook-endpoints', { body: { url: rx.url, secret, livemode: false } });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).not.toContain(secret);
  });
  afterAll(async () => {
    await rx.close();
  });

  const eventsOf = (type: string, objectId: string) => rx.events().filter((e) => e.type === type && e.data.object.id === objectId);

  it('sends signed events for payment changes, carrying the metadata', async () => {
    const p = await authorizedPayment(key);
    const ev = await waitFor(() => eventsOf('payment.authorized', p.id)[0], 'payment.authorized');
    expect(ev.id).toMatch(/^evt_/);
    expect(ev.livemode).toBe(false);
    expect(ev.data.object).toMatchObject({ id: p.id, status: 'authorized', metadata: { tenantIdentifier: 'tenant-a' } });
    expect(ev.data.object.clientSecret).toBeUndefined();
    const raw = rx.received.find((r) => r.body.includes(ev.id))!;
    expect(signatureValid(String(raw.headers['sandbox-signature']), raw.body, secret)).toBe(true);
    expect(signatureValid(String(raw.headers['sandbox-signature']), raw.body, 'whsec_other')).toBe(false);

    const d = await createPayment(key);
    await confirm(d, '4000000000000002');
    await waitFor(() => eventsOf('payment.attempt_failed', d.id)[0], 'payment.attempt_failed');
    await confirm(d, '4100000000000019');
    await waitFor(() => eventsOf('payment.failed', d.id)[0], 'payment.failed');
  });

  it('refunds never exceed captured minus refunded and settle by signed webhook', async () => {
    const p = await authorizedPayment(key);
    await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 800 } });
    const r1 = await api(key, '/v1/refunds', { body: { payment: p.id, amount: 500 } });
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ status: 'pending', payment: p.id, amount: 500 });
    expect(r1.body.id).toMatch(/^sbx_re_/);
    const over = await api(key, '/v1/refunds', { body: { payment: p.id, amount: 301 } });
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('amount_too_large');
    expect((await api(key, '/v1/refunds', { body: { payment: p.id, amount: 300 } })).status).toBe(200);
    expect((await api(key, '/v1/refunds', { body: { payment: p.id, amount: 1 } })).status).toBe(400);

    const ev = await waitFor(() => eventsOf('refund.succeeded', r1.body.id)[0], 'refund.succeeded');
    expect(ev.data.object).toMatchObject({ status: 'succeeded', payment: p.id, amount: 500, metadata: { tenantIdentifier: 'tenant-a' } });
    const raw = rx.received.find((r) => r.body.includes(ev.id))!;
    expect(signatureValid(String(raw.headers['sandbox-signature']), raw.body, secret)).toBe(true);
    expect((await api(key, `/v1/refunds/${r1.body.id}`)).body.status).toBe('succeeded');
  });

  it('refunds of 4000000000005126 fail by webhook and free the amount again', async () => {
    const p = await authorizedPayment(key, '4000000000005126');
    await api(key, `/v1/payments/${p.id}/capture`, { body: {} });
    const r = await api(key, '/v1/refunds', { body: { payment: p.id, amount: 1000 } });
    expect(r.body.status).toBe('pending');
    const ev = await waitFor(() => eventsOf('refund.failed', r.body.id)[0], 'refund.failed');
    expect(ev.data.object).toMatchObject({ status: 'failed', failureReason: 'refund_failed' });
    expect((await api(key, `/v1/payments/${p.id}`)).body.amountRefunded).toBe(0);
  });

  it('emits payment.captured for each partial capture and payment.capture_failed / payment.canceled', async () => {
    const p = await authorizedPayment(key);
    await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 100 } });
    await api(key, `/v1/payments/${p.id}/capture`, { body: { amount: 200 } });
    const caps = await waitFor(() => (eventsOf('payment.captured', p.id).length === 2 ? eventsOf('payment.captured', p.id) : undefined), 'two captures');
    expect(caps.map((e) => e.data.object.amountCaptured).sort()).toEqual([100, 300]);
    const f = await authorizedPayment(key, '4000000000000341');
    await api(key, `/v1/payments/${f.id}/capture`, { body: {} });
    await waitFor(() => eventsOf('payment.capture_failed', f.id)[0], 'payment.capture_failed');
    await api(key, `/v1/payments/${f.id}/cancel`, { body: {} });
    await waitFor(() => eventsOf('payment.canceled', f.id)[0], 'payment.canceled');
  });

  it('retries an event after the endpoint failed twice', async () => {
    const before = rx.received.length;
    rx.failFirst = 2;
    const p = await authorizedPayment(key);
    const deliveries = await waitFor(() => {
      const d = rx.received.slice(before).filter((r) => r.body.includes(p.id) && r.body.includes('payment.authorized'));
      return d.length >= 3 ? d : undefined;
    }, 'third delivery');
    expect(new Set(deliveries.map((d) => JSON.parse(d.body).id)).size).toBe(1);
    for (const d of deliveries) expect(signatureValid(String(d.headers['sandbox-signature']), d.body, secret)).toBe(true);
    const row = await waitFor(async () => {
      const r = await app.deps.db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM sandbox_events WHERE type='payment.authorized' AND body LIKE $1`, [`%${p.id}%`]);
      return r.rows[0]?.state === 'delivered' ? r.rows[0] : undefined;
    }, 'delivered row');
    expect(row.attempts).toBe(3);
  });

  it('keeps undelivered events in its table while the dispatcher is stopped and delivers them after a restart', async () => {
    const worker = app.workers.find((w) => w.name === 'sandbox-webhooks')!;
    await worker.stop();
    let p: { id: string };
    try {
      p = await authorizedPayment(key);
      await new Promise((r) => setTimeout(r, 100));
      const row = await app.deps.db.query<{ state: string }>(`SELECT state FROM sandbox_events WHERE type='payment.authorized' AND body LIKE $1`, [`%${p.id}%`]);
      expect(row.rows).toEqual([{ state: 'pending' }]);
      expect(eventsOf('payment.authorized', p.id)).toEqual([]);
    } finally {
      worker.start();
    }
    await waitFor(() => eventsOf('payment.authorized', p.id)[0], 'delivery after restart');
  });

  it('re-registering the endpoint replaces it (livemode travels in events)', async () => {
    const other = new Receiver();
    await other.start();
    const k2 = newKey();
    await api(k2, '/v1/webhook-endpoints', { body: { url: rx.url, secret, livemode: false } });
    await api(k2, '/v1/webhook-endpoints', { body: { url: other.url, secret, livemode: true } });
    const p = await authorizedPayment(k2);
    await waitFor(() => other.events().find((e) => e.data.object.id === p.id), 'event at the new endpoint');
    expect(other.events()[0]!.livemode).toBe(true);
    expect(rx.events().some((e) => e.data.object.id === p.id)).toBe(false);
    await other.close();
  });

  it('merchant accounts: onboarding page completes them; transfers need an active account; reversals up to the amount', async () => {
    const acc = await api(key, '/v1/accounts', { body: { reference: 'MER000001', name: 'Spryker <Shop>' } });
    expect(acc.body).toMatchObject({ status: 'pending', reference: 'MER000001' });
    expect(acc.body.id).toMatch(/^sbx_acct_/);
    expect(acc.body.onboardingUrl).toBe(`${app.url}/sandbox/onboarding/${acc.body.id}`);

    const pending = await api(key, '/v1/transfers', { body: { amount: 500, currency: 'EUR', destination: acc.body.id } });
    expect(pending.status).toBe(400);
    expect(pending.body.error.code).toBe('account_not_active');
    expect((await api(key, '/v1/transfers', { body: { amount: 500, currency: 'EUR', destination: 'sbx_acct_nope' } })).status).toBe(400);

    const page = await app.request(`/sandbox/onboarding/${acc.body.id}?returnUrl=${encodeURIComponent('https://portal.example/done')}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Spryker &lt;Shop&gt;');
    expect(page.text).toContain('value="complete"');
    const done = await app.request(`/sandbox/onboarding/${acc.body.id}?returnUrl=${encodeURIComponent('https://portal.example/done')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      raw: 'outcome=complete',
    });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('https://portal.example/done');
    expect((await api(key, `/v1/accounts/${acc.body.id}`)).body.status).toBe('active');
    const upd = await waitFor(() => eventsOf('account.updated', acc.body.id)[0], 'account.updated');
    expect(upd.data.object.status).toBe('active');

    const tr = await api(key, '/v1/transfers', { body: { amount: 500, currency: 'EUR', destination: acc.body.id, transferGroup: 'DE--1' } }, );
    expect(tr.status).toBe(200);
    expect(tr.body).toMatchObject({ amount: 500, destination: acc.body.id, transferGroup: 'DE--1', amountReversed: 0 });
    expect(tr.body.id).toMatch(/^sbx_tr_/);
    await waitFor(() => eventsOf('transfer.created', tr.body.id)[0], 'transfer.created');

    const rv = await api(key, `/v1/transfers/${tr.body.id}/reversals`, { body: { amount: 300 } });
    expect(rv.status).toBe(200);
    expect(rv.body.id).toMatch(/^sbx_trr_/);
    const tooMuch = await api(key, `/v1/transfers/${tr.body.id}/reversals`, { body: { amount: 201 } });
    expect(tooMuch.status).toBe(400);
    expect((await api(key, `/v1/transfers/${tr.body.id}/reversals`, { body: { amount: 200 } })).status).toBe(200);
    const rev = await waitFor(() => (eventsOf('transfer.reversed', tr.body.id).length === 2 ? eventsOf('transfer.reversed', tr.body.id) : undefined), 'two reversals');
    expect(rev.map((e) => e.data.object.amountReversed).sort()).toEqual([300, 500]);
    expect((await api(newKey(), `/v1/transfers/${tr.body.id}/reversals`, { body: { amount: 1 } })).status).toBe(404);
  });

  it('onboarding Fail rejects the account', async () => {
    const acc = await api(key, '/v1/accounts', { body: { reference: 'MER000002' } });
    const r = await app.request(`/sandbox/onboarding/${acc.body.id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'outcome=fail' });
    expect(r.status).toBe(200);
    expect((await api(key, `/v1/accounts/${acc.body.id}`)).body.status).toBe('rejected');
  });
});

describe('customers from payment', () => {
  const key = newKey();
  const address = { firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', address2: '1', zipCode: '10115', city: 'Berlin', iso2Code: 'DE' };

  it('has no customer before an express confirmation, then the recorded payer', async () => {
    const p = await createPayment(key);
    const none = await api(key, `/v1/customers/from-payment/${p.id}`);
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('customer_not_found');
    const r = await confirm(p, '4242424242424242', { email: 'sonia@example.com', firstName: 'Sonia', lastName: 'Wagner', phone: '+49301234567', billingAddress: address, shippingAddress: address });
    expect(r.status).toBe(200);
    const c = await api(key, `/v1/customers/from-payment/${p.id}`);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ email: 'sonia@example.com', firstName: 'Sonia', lastName: 'Wagner', billingAddress: { ...address, address3: null }, shippingAddress: { city: 'Berlin' } });
    expect((await api(newKey(), `/v1/customers/from-payment/${p.id}`)).status).toBe(404);
  });

  it('rejects a malformed payer', async () => {
    const p = await createPayment(key);
    const r = await confirm(p, '4242424242424242', { email: 42 });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('payer.email');
  });
});

/**
 * Hostile input (issue 10 items 2, 3, 4): U+0000 and unpaired surrogates anywhere, absurd nesting, oversized bodies and
 * absurd item counts get the endpoint's 4xx (never a 500, never a reset), and no error body or logged error echoes a
 * secret the request submitted.
 */
import { createHmac } from 'node:crypto';
import { TenantCache } from '../src/store/tenant-cache.js';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../src/app/context.js';
import { loadConfig } from '../src/config.js';
import { ConnectorRegistry } from '../src/connectors/registry.js';
import { AppError } from '../src/domain/errors.js';
import { inputProblem, MAX_ARRAY_ITEMS, maskSecrets, submittedSecrets } from '../src/domain/input.js';
import { buildServer } from '../src/http/server.js';
import { migrate, openDb } from '../src/store/db.js';
import { SecretBox } from '../src/store/secret-box.js';
import { startTestApp, TEST_KEYS, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, SECRET_KEY, WEBHOOK_SECRET } from './helpers/commands.js';

let app: TestApp;
const TENANT = 'hostile-a';
let order: { transactionId: string; orderReference: string };

beforeAll(async () => {
  app = await startTestApp({}, { startWorkers: false });
  await configureTenant(app, TENANT, { paymentMethods: ['credit-card', 'sandbox-express'] });
  order = await initializeOrder(app, TENANT, { 1: 1000 });
}, 60_000);
afterAll(async () => {
  await app?.close();
});

const json = (body: unknown, headers: Record<string, string> = {}) => ({ tenant: TENANT, raw: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
const nested = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const glueMethod = { paymentProviderName: 'Sandbox', paymentMethodName: 'Credit Card' };

describe('U+0000 and unpaired surrogates (item 2)', () => {
  it('in query parameters of /app-payment and /app-payment/redirect: 400 naming the parameter, not 500', async () => {
    for (const path of [`/app-payment?transactionId=%00&tenantIdentifier=${TENANT}`, `/app-payment?transactionId=${order.transactionId}&tenantIdentifier=a%00`, '/app-payment/redirect?transactionId=%00', '/app-payment/redirect?transactionId=x%00y']) {
      const r = await app.request(path);
      expect(r.status, path).toBe(400);
      expect(r.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
      expect(r.body.errors[0].message).toMatch(/^Query parameter "(transactionId|tenantIdentifier)" must not contain the character U\+0000/);
    }
  });

  it('in JSON strings and keys of the private endpoints and commands: 400 naming the field', async () => {
    const cases: Array<[string, unknown, string, Record<string, string>?]> = [
      ['/private/confirm-pre-order-payment', { orderReference: 'DE\u0000-1', transactionId: order.transactionId }, 'orderReference'],
      ['/private/confirm-pre-order-payment', { orderReference: 'DE-1', transactionId: 'x\u0000' }, 'transactionId'],
      ['/private/cancel-pre-order-payment', { transactionId: '\u0000' }, 'transactionId'],
      ['/private/cancel-pre-order-payment', { preOrderPaymentData: { transactionId: 'sbx\u0000' } }, 'preOrderPaymentData.transactionId'],
      ['/private/customer', { customerPaymentServiceProviderData: { transactionId: 'a\u0000' } }, 'customerPaymentServiceProviderData.transactionId'],
      ['/private/initialize-payment', { orderData: { orderReference: 'o\ud800', grandTotal: 1, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [] } }, 'orderData.orderReference'],
      ['/event-platform/payment-commands', { orderReference: 'x\u0000', orderItemIds: [1] }, 'orderReference', { 'transfer-name': 'CapturePayment', 'tenant-identifier': TENANT }],
      ['/event-platform/payment-commands', { orderReference: order.orderReference, orderItemIds: [1], meta: { 'k\u0000': 1 } }, 'meta', { 'transfer-name': 'CapturePayment', 'tenant-identifier': TENANT }],
    ];
    for (const [path, body, field, headers] of cases) {
      const r = await app.request(path, json(body, headers));
      expect(r.status, `${path} ${field}`).toBe(400);
      expect(r.body.errors[0], path).toMatchObject({ code: 'VALIDATION_FAILED', field });
    }
    // a key name at the top level of a command
    const key = await app.request('/event-platform/payment-commands', json({ ['order\u0000Reference']: 'x' }, { 'transfer-name': 'CapturePayment', 'tenant-identifier': TENANT }));
    expect(key.status).toBe(400);
    expect(key.body.errors[0].message).toContain('key containing the character U+0000');
  });

  it('in Glue attributes: 422 "901" naming the attribute path (Glue error shape)', async () => {
    const r = await app.request('/payment-cancellations', json({ data: { type: 'payment-cancellations', attributes: { payment: glueMethod, preOrderPaymentData: { transactionId: 'x\u0000' } } } }, { 'content-type': 'application/vnd.api+json' }));
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
    expect(r.body.errors[0]).toMatchObject({ code: '901', status: 422, detail: 'preOrderPaymentData.transactionId => This value must not contain the character U+0000 or an unpaired surrogate.' });
  });

  it('in sandbox paths: the sandbox answers its own 400 (JSON API) or its HTML error page (checkout)', async () => {
    const api = await app.request('/sandbox/v1/payments/%00', { headers: { authorization: `Bearer ${SECRET_KEY}` } });
    expect(api.status).toBe(400);
    expect(api.body.error).toMatchObject({ type: 'invalid_request' });
    const page = await app.request('/sandbox/checkout/%00');
    expect(page.status).toBe(400);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('in a correctly signed webhook payload: 400 before the connector (nothing of it could be stored)', async () => {
    for (const bad of ['\\u0000', '\\ud800']) {
      const raw = `{"id":"evt_${bad.slice(2)}","type":"payment.authorized","created":${Math.floor(Date.now() / 1000)},"livemode":false,"data":{"object":{"id":"${order.transactionId}","object":"payment","status":"authorized","amount":1000,"currency":"EUR","metadata":{"tenantIdentifier":"${TENANT}","note":"a${bad}b"}}}}`;
      const t = Math.floor(Date.now() / 1000);
      const signature = `t=${t},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${raw}`).digest('hex')}`;
      const r = await app.request(`/webhooks/test?endpoint=${TENANT}`, { raw, headers: { 'content-type': 'application/json', 'sandbox-signature': signature } });
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0].code).toBe('INVALID_REQUEST');
    }
  });
});

describe('deep nesting (item 2)', () => {
  it('a JSON body nested 5,000 levels deep answers 400 on every kind of endpoint', async () => {
    const deep = nested(5000);
    for (const [path, headers] of [
      ['/private/initialize-payment', {}],
      ['/private/confirm-pre-order-payment', {}],
      ['/payments', { 'content-type': 'application/vnd.api+json' }],
      ['/private/configure', {}],
      ['/event-platform/payment-commands', { 'transfer-name': 'CapturePayment', 'tenant-identifier': TENANT }],
      ['/sandbox/v1/payments', { authorization: `Bearer ${SECRET_KEY}` }],
    ] as Array<[string, Record<string, string>]>) {
      const r = await app.request(path, json(deep, headers));
      expect(r.status, path).toBe(400);
    }
    const arrays = await app.request('/private/initialize-payment', json('['.repeat(5000) + ']'.repeat(5000)));
    expect(arrays.status).toBe(400);
    const webhook = await app.request('/webhooks/test', { raw: nested(5000), headers: { 'content-type': 'application/json' } });
    expect(webhook.status).toBe(400);
  });
});

/** Uploads `body` over a raw socket in 64 KiB pieces (paced, as a remote client would) and returns what it could read. */
function slowUpload(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: any; uploaded: number; error?: string }> {
  const u = new URL(app.url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let data = '';
    let off = 0;
    const finish = (error?: string) => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head ?? '')?.[1] ?? 0);
      let parsed: any;
      try {
        parsed = JSON.parse(rest.join('\r\n\r\n'));
      } catch {
        parsed = undefined;
      }
      resolve({ status, body: parsed, uploaded: off, ...(error ? { error } : {}) });
    };
    s.on('data', (d) => {
      data += d.toString('utf8');
      if (/\r\n\r\n/.test(data) && data.includes('}')) s.end();
    });
    s.on('error', (e) => finish((e as NodeJS.ErrnoException).code));
    s.on('close', () => finish());
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Tenant-Identifier: ${TENANT}\r\n${extra}\r\n`);
    const next = (): void => {
      if (off >= body.length || s.destroyed) return;
      s.write(body.subarray(off, off + 65536));
      off += 65536;
      setTimeout(next, 2);
    };
    next();
  });
}

describe('oversized bodies and item counts (item 3)', () => {
  it('a 2 MiB body uploaded at network pace gets a readable 413, on JSON routes and on webhooks', async () => {
    const big = Buffer.from(JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }));
    for (const path of ['/private/initialize-payment', '/webhooks/test']) {
      const r = await slowUpload(path, big);
      expect(r.error, path).toBeUndefined();
      expect(r.uploaded, path).toBeGreaterThanOrEqual(big.length); // the connection stayed open until the client had sent it all
      expect(r.status, path).toBe(413);
      expect(r.body.errors[0]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    }
  });

  it('an order of 100,000 items gets a readable 413', async () => {
    const items = Array.from({ length: 100_000 }, (_, i) => ({ idSalesOrderItem: i + 1, name: `Item ${i}`, unitPrice: 1, quantity: 1 }));
    const body = Buffer.from(JSON.stringify({ orderData: { orderReference: 'DE-huge', grandTotal: 100_000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items }, redirectSuccessUrl: 'https://s.example/ok' }));
    const r = await slowUpload('/private/initialize-payment', body);
    expect(r.error).toBeUndefined();
    expect(r.uploaded).toBeGreaterThanOrEqual(body.length);
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ isSuccessful: false });
  });

  it(`more than ${MAX_ARRAY_ITEMS} items: 400 naming the field and the limit (Glue: 422 "901")`, async () => {
    const items = Array.from({ length: 5000 }, (_, i) => ({ idSalesOrderItem: i + 1, unitPrice: 1 }));
    const r = await app.request('/private/initialize-payment', json({ orderData: { orderReference: 'DE-5k', grandTotal: 5000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items }, redirectSuccessUrl: 'https://s.example/ok' }));
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'orderData.items' });
    expect(r.body.errors[0].message).toContain(`at most ${MAX_ARRAY_ITEMS}`);
    const glue = await app.request(
      '/payments',
      json({ data: { type: 'payments', attributes: { payment: { ...glueMethod, amount: 5000 }, quote: { items } } } }, { 'content-type': 'application/vnd.api+json' }),
    );
    expect(glue.status).toBe(422);
    expect(glue.body.errors[0].detail).toBe(`quote.items => This collection should contain ${MAX_ARRAY_ITEMS} elements or less.`);
    const ok = await app.request('/private/initialize-payment', json({ orderData: { orderReference: 'DE-1k', grandTotal: 1000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: items.slice(0, MAX_ARRAY_ITEMS) }, redirectSuccessUrl: 'https://s.example/ok', redirectCancelUrl: 'https://s.example/cancel' }));
    expect(ok.status, ok.text).toBe(200);
  });
});

describe('the input guard and the secret mask (pure functions)', () => {
  it('inputProblem finds U+0000, surrogates, depth and array size at any depth without recursion', () => {
    expect(inputProblem({ a: [{ b: 'x\u0000' }] })).toMatchObject({ kind: 'character', field: 'a[0].b' });
    expect(inputProblem({ a: 'pair 🙂 ok' })).toBeNull();
    expect(inputProblem(JSON.parse(nested(100_000)))).toMatchObject({ kind: 'depth' });
    expect(inputProblem({ list: new Array(MAX_ARRAY_ITEMS + 1).fill(0) })).toMatchObject({ kind: 'array', field: 'list' });
    expect(inputProblem(Buffer.from('\u0000'))).toBeNull();
  });

  it('submittedSecrets reads secret fields, also inside a configuration string; maskSecrets masks raw and escaped forms', () => {
    const secrets = submittedSecrets({ data: { attributes: { configuration: JSON.stringify({ webhookSecret: 'whsec_"quoted"secret', other: 'visible' }) } }, clientSecret: 'cs_abcdef' }, new Set());
    expect(secrets).toEqual(expect.arrayContaining(['whsec_"quoted"secret', 'cs_abcdef']));
    expect(secrets).not.toContain('visible');
    const text = JSON.stringify({ message: 'bad whsec_"quoted"secret', nested: JSON.stringify({ v: 'whsec_"quoted"secret' }), cs: 'cs_abcdef' });
    expect(maskSecrets(text, secrets)).not.toMatch(/quoted|cs_abcdef/);
  });
});

describe('no error body or logged error echoes a submitted secret (item 4)', () => {
  let server: FastifyInstance;
  const logged: string[] = [];
  const SECRET = 'whsec_TOPSECRET0123456789';

  beforeAll(async () => {
    const config = loadConfig({ PORT: '0', DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS });
    const db = await openDb(config.database);
    await migrate(db);
    const log = pino({ level: 'debug' }, { write: (s: string) => void logged.push(s) });
    const cfg = { ...config, sandboxPspUrl: 'http://127.0.0.1:1/sandbox' };
    const deps: AppDeps = { config, db, log, secrets: new SecretBox(config.encryptionKeys!), connectors: new ConnectorRegistry(cfg, { config: cfg, listenUrl: () => 'http://127.0.0.1:1', log }), tenants: new TenantCache(db) };
    server = await buildServer(deps);
    // Two routes that echo what they got, as a careless message or a database error would.
    server.post('/test/echo-error', async (req) => {
      throw new AppError('VALIDATION_FAILED', `The value ${JSON.stringify(req.body)} is invalid.`);
    });
    server.post('/test/crash', async (req) => {
      throw Object.assign(new Error(`insert failed for ${(req.body as { webhookSecret: string }).webhookSecret}`), { params: ['x', (req.body as { webhookSecret: string }).webhookSecret] });
    });
    await server.ready();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('configure with a wrong-format secret (string, object or JSON-string form) never echoes it', async () => {
    for (const webhookSecret of ['not_whsec_TOPSECRET', 'whsec_TOPSECRET!!', ' whsec_TOPSECRETabcdefgh ']) {
      for (const configuration of [JSON.stringify({ secretKey: SECRET_KEY, webhookSecret }), { secretKey: 'sk_TOPSECRETkey', webhookSecret }]) {
        const r = await server.inject({ method: 'POST', url: '/private/configure', headers: { 'x-tenant-identifier': 't-secret' }, payload: { data: { type: 'configuration', attributes: { configuration } } } });
        expect(r.statusCode).toBe(400);
        expect(r.body).not.toContain('TOPSECRET');
      }
    }
    expect(logged.join('\n')).not.toContain('TOPSECRET');
  });

  it('an error message or a logged error carrying a submitted secret is masked centrally', async () => {
    const echo = await server.inject({ method: 'POST', url: '/test/echo-error', payload: { webhookSecret: SECRET, name: 'shown' } });
    expect(echo.statusCode).toBe(400);
    expect(echo.body).not.toContain('TOPSECRET');
    expect(echo.body).toContain('shown');
    expect(echo.body).toContain('********');

    const crash = await server.inject({ method: 'POST', url: '/test/crash', payload: { webhookSecret: SECRET } });
    expect(crash.statusCode).toBe(500);
    expect(crash.body).not.toContain('TOPSECRET');
    const line = logged.find((l) => l.includes('insert failed'));
    expect(line).toBeDefined();
    expect(line).not.toContain('TOPSECRET');

    const bearer = await server.inject({ method: 'POST', url: '/test/echo-error', headers: { authorization: 'Bearer tok_TOPSECRET_bearer' }, payload: { note: 'tok_TOPSECRET_bearer' } });
    expect(bearer.body).not.toContain('TOPSECRET');
  });
});

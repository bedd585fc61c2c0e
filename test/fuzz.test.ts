/**
 * Property-based fuzzing of every endpoint (issue 10): fast-check generates requests (valid bodies mutated with wrong
 * types, U+0000 and other control characters, deep nesting, huge strings and arrays; forged webhook signatures; other
 * tenants' ids; random headers and content types) and the server must never answer 5xx to any of them.
 *
 * The one 5xx the contract prescribes for a client request is excluded: `503 WEBHOOK_UNATTRIBUTED` with `Retry-After`
 * for a webhook no tenant can be found for yet (sync-api.md 4.10), counted separately.
 *
 * `FUZZ_RUNS` sets the number of requests (default 10,000). The count and the status histogram are printed.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fc from 'fast-check';
import qs from 'qs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, SECRET_KEY, WEBHOOK_SECRET } from './helpers/commands.js';

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 10_000) || 10_000);
const BATCH = 16; // requests sent concurrently per generated case

type Json = unknown;
interface FuzzRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

let app: TestApp;
const ids = { own: '', ownOrder: '', foreign: '', foreignOrder: '' };

beforeAll(async () => {
  app = await startTestApp({}, { startWorkers: false });
  await configureTenant(app, 'fz-a', { paymentMethods: ['credit-card', 'sandbox-express'] });
  await configureTenant(app, 'fz-b', { paymentMethods: ['credit-card', 'sandbox-express'] });
  const a = await initializeOrder(app, 'fz-a', { 1: 1000, 2: 500 });
  const b = await initializeOrder(app, 'fz-b', { 1: 700 });
  Object.assign(ids, { own: a.transactionId, ownOrder: a.orderReference, foreign: b.transactionId, foreignOrder: b.orderReference });
}, 60_000);
afterAll(async () => {
  await app?.close();
});

// ---- values ----

const DEEP = '__fuzz_deep_';
const nasty = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\u202e\u200b',
  '\u0001\u0007\u001b\u007f',
  '\r\n\t',
  '%00',
  '../../etc/passwd',
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  '${jndi:ldap://x/a}',
  '',
  ' ',
  'null',
  '1e309',
  '-0',
  '0x10',
  '10.00',
  '9'.repeat(40),
  '🙂'.repeat(50),
);
const hugeString = fc.integer({ min: 2_000, max: 120_000 }).map((n) => 'x'.repeat(n));
const str = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 4, arbitrary: nasty },
  { weight: 1, arbitrary: hugeString },
);
const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 63, -1, 0, 1e308, -1e308, 0.5));
const scalar = fc.oneof(str, num, fc.boolean(), fc.constant(null));
/** A placeholder replaced by a deeply nested array after serialization (JSON.stringify cannot write one). */
const deep = fc.integer({ min: 20, max: 6_000 }).map((n) => `${DEEP}${n}__`);
const hugeArray = fc.integer({ min: 1_001, max: 4_000 }).map((n) => Array.from({ length: n }, (_, i) => ({ idSalesOrderItem: i + 1, unitPrice: 1, quantity: 1 })));
const anyValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 5 }) },
  { weight: 2, arbitrary: fc.dictionary(str, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: hugeArray },
);
const idValue = fc.oneof(
  fc.constant(() => ids.own),
  fc.constant(() => ids.foreign),
  fc.constant(() => ids.ownOrder),
  fc.constant(() => ids.foreignOrder),
  str.map((s) => () => s),
);

// ---- valid templates per endpoint (mutated below) ----

const item = (i: number) => ({ idSalesOrderItem: i, name: `Item ${i}`, sku: `SKU-${i}`, quantity: 1, unitPrice: 500 });
const orderData = () => ({ orderReference: `FZ-${randomUUID().slice(0, 8)}`, grandTotal: 1000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [item(1), item(2)] });
const glueMethod = { paymentProviderName: 'Sandbox', paymentMethodName: 'Credit Card' };
const configuration = { secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, paymentMethods: ['credit-card'] };

interface Endpoint {
  method: FuzzRequest['method'];
  path: string;
  /** Valid body of the endpoint; undefined for bodiless endpoints. */
  body?: () => Json;
  form?: boolean;
  glue?: boolean;
  headers?: () => Record<string, string>;
}

const ENDPOINTS: Endpoint[] = [
  { method: 'POST', path: '/private/configure', body: () => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(configuration) } } }) },
  { method: 'POST', path: '/configure', body: () => ({ data: { type: 'configuration', attributes: { configuration } } }) },
  { method: 'POST', path: '/private/disconnect', body: () => ({}), headers: () => ({ 'x-confirmation-status': 'false' }) },
  { method: 'POST', path: '/private/initialize-payment', form: true, body: () => ({ orderData: orderData(), redirectSuccessUrl: 'https://shop.example/ok', redirectCancelUrl: 'https://shop.example/cancel' }) },
  { method: 'POST', path: '/initialize-payment', body: () => ({ form_params: { orderData: orderData(), redirectSuccessUrl: 'https://shop.example/ok' } }) },
  { method: 'POST', path: '/private/pre-order-payment', form: true, body: () => ({ orderData: { ...orderData(), paymentMethod: 'Sandbox Express' }, preOrderPaymentData: {} }) },
  { method: 'POST', path: '/private/confirm-pre-order-payment', body: () => ({ orderReference: 'FZ-conf', orderData: orderData(), preOrderPaymentData: { transactionId: ids.own }, transactionId: ids.own }) },
  { method: 'POST', path: '/confirm-pre-order-payment', body: () => ({ orderReference: 'FZ-conf2', orderData: orderData(), preOrderPaymentData: { transactionId: ids.foreign } }) },
  { method: 'POST', path: '/private/cancel-pre-order-payment', body: () => ({ transactionId: ids.own, preOrderPaymentData: { transactionId: ids.own } }) },
  { method: 'POST', path: '/cancel-pre-order-payment', body: () => ({ preOrderPaymentData: { transactionId: ids.foreign } }) },
  {
    method: 'POST',
    path: '/private/payments/transfers',
    body: () => ({ orderItems: [{ merchantReference: 'MER1', orderReference: ids.ownOrder, itemReference: 'i1', amount: '500', transferId: null }], paymentTransmissionItems: [] }),
  },
  { method: 'POST', path: '/payments/transfers', body: () => ({ orderItems: [{ merchant_reference: 'MER1', order_reference: ids.ownOrder, item_reference: 'i2', amount: '-100', transfer_id: 'sbx_tr_x' }] }) },
  { method: 'POST', path: '/private/customer', body: () => ({ customerPaymentServiceProviderData: { transactionId: ids.own }, customer: { email: 'a@b.c' } }) },
  { method: 'POST', path: '/private/merchants/onboarding', body: () => ({ merchant: { merchantReference: 'MER1', name: 'M' }, successUrl: 'https://s.example/ok', refreshUrl: 'https://s.example/r' }), headers: () => ({ 'x-merchant-reference': 'MER1' }) },
  {
    method: 'POST',
    path: '/payments',
    glue: true,
    body: () => ({
      data: {
        type: 'payments',
        attributes: {
          payment: { ...glueMethod, amount: 1000 },
          quote: { customer: { firstName: 'A', lastName: 'B', email: 'a@b.c' }, billingAddress: { iso2Code: 'DE' }, currency: { code: 'EUR' }, items: [{ sku: 's', name: 'n', quantity: 1, unitGrossPrice: 1000 }] },
          preOrderPaymentData: {},
        },
      },
    }),
  },
  { method: 'POST', path: '/payment-cancellations', glue: true, body: () => ({ data: { type: 'payment-cancellations', attributes: { payment: glueMethod, preOrderPaymentData: { transactionId: ids.own } } } }) },
  { method: 'POST', path: '/payment-customers', glue: true, body: () => ({ data: { type: 'payment-customers', attributes: { payment: glueMethod, customerPaymentServiceProviderData: { transactionId: ids.own } } } }) },
  { method: 'POST', path: '/event-platform/payment-commands', body: () => ({ orderReference: ids.ownOrder, orderItemIds: [1, 2], amount: 1000, currencyIsoCode: 'EUR' }), headers: () => ({ 'transfer-name': 'CapturePayment', 'tenant-identifier': 'fz-a', 'message-id': randomUUID() }) },
  { method: 'POST', path: '/event-platform/payment-events', body: () => ({ any: 'thing' }), headers: () => ({ 'transfer-name': 'Whatever', 'tenant-identifier': 'fz-a' }) },
  { method: 'GET', path: '/event-platform/payment-events', headers: () => ({ 'consumer-id': 'fz-a' }) },
  { method: 'DELETE', path: '/event-platform/payment-events', body: () => ({ messageIds: [randomUUID()] }), headers: () => ({ 'consumer-id': 'fz-a' }) },
  { method: 'POST', path: '/sandbox/v1/payments', body: () => ({ amount: 1000, currency: 'EUR', reference: 'r', metadata: { tenantIdentifier: 'fz-a' } }), headers: () => ({ authorization: `Bearer ${SECRET_KEY}` }) },
  { method: 'POST', path: '/sandbox/v1/refunds', body: () => ({ payment: ids.own, amount: 100 }), headers: () => ({ authorization: `Bearer ${SECRET_KEY}`, 'idempotency-key': randomUUID() }) },
  { method: 'POST', path: '/sandbox/v1/webhook-endpoints', body: () => ({ url: 'https://x.example/webhooks/test', secret: WEBHOOK_SECRET }), headers: () => ({ authorization: `Bearer ${SECRET_KEY}` }) },
];

/** Paths that take an id in the URL: the id is own, foreign or random. */
const ID_PATHS: Array<{ method: FuzzRequest['method']; path: (id: string) => string; body?: () => Json; headers?: Record<string, string> }> = [
  { method: 'GET', path: (id) => `/sandbox/v1/payments/${id}`, headers: { authorization: `Bearer ${SECRET_KEY}` } },
  { method: 'POST', path: (id) => `/sandbox/v1/payments/${id}/confirm`, body: () => ({ clientSecret: 'x', card: { number: '4242424242424242', expMonth: 12, expYear: 2040, cvc: '123' } }) },
  { method: 'POST', path: (id) => `/sandbox/v1/payments/${id}/capture`, body: () => ({ amount: 100 }), headers: { authorization: `Bearer ${SECRET_KEY}` } },
  { method: 'GET', path: (id) => `/sandbox/checkout/${id}` },
  { method: 'GET', path: (id) => `/app/manifest/${id}` },
  { method: 'GET', path: (id) => `/app/assets/${id}` },
  { method: 'GET', path: (id) => `/event-platform/${id}`, headers: { 'consumer-id': 'fz-a' } },
];

const QUERY_PATHS = ['/app-payment', '/app-payment/redirect'];
const PLAIN_GETS = ['/health', '/ready', '/metrics', '/openapi.json', '/asyncapi.json', '/app/manifest', '/app/configuration', '/app/translation', '/app/api', '/nowhere', '/private/configure'];

// ---- mutation of a template ----

function leafPaths(v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => leafPaths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) leafPaths(x, [...prefix, k], out);
  return out;
}

type Mutation = { at: number; op: 'set' | 'delete' | 'key'; value: Json; key: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({ at: fc.nat(), op: fc.constantFrom('set', 'set', 'set', 'delete', 'key'), value: anyValue, key: str });

function mutate(template: Json, mutations: Mutation[]): Json {
  let root = structuredClone(template);
  for (const m of mutations) {
    const paths = leafPaths(root);
    const path = paths[m.at % paths.length]!;
    if (path.length === 0) {
      if (m.op === 'set') root = m.value;
      continue;
    }
    let parent: any = root;
    for (const p of path.slice(0, -1)) parent = parent[p];
    const last = path[path.length - 1]!;
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (m.op === 'key' && !Array.isArray(parent)) parent[m.key] = m.value;
    else parent[last] = m.value;
  }
  return root;
}

/** About the length of `qs.stringify(v)`: every leaf repeats its whole key path (`a[b][0][c]=...`). */
function formLength(v: Json, pathLength = 0): number {
  if (v === null || typeof v !== 'object') return pathLength + String(v).length + 2;
  let n = 0;
  for (const [k, child] of Object.entries(v)) n += formLength(child as Json, pathLength + k.length + 2);
  return n;
}
/** Above this a form body is sent as JSON: building a generated value's form text reached 290 MB and 10-40 s (one synchronous string build, measured as an event-loop stall). */
const FORM_LIMIT = 4 * 1024 * 1024;

function serialize(v: Json, form: boolean): string {
  let text: string | undefined;
  try {
    text = form && formLength(v) <= FORM_LIMIT ? qs.stringify(v, { allowDots: false }) : JSON.stringify(v);
  } catch (err) {
    // qs repeats every key path for each leaf: a rare generated value outgrows a JS string; send it as JSON instead
    if (!(err instanceof RangeError)) throw err;
    text = JSON.stringify(v);
  }
  if (text === undefined) return '';
  text = text.replace(new RegExp(`"${DEEP}(\\d+)__"`, 'g'), (_m, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
  return text;
}

// ---- headers ----

const headerText = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '').trim());
const tenantHeader = fc.oneof(fc.constantFrom('fz-a', 'fz-a', 'fz-b', 'fz-never', '', '  fz-a  ', 'x'.repeat(300)), headerText);
const contentType = fc.constantFrom<string | undefined>(
  'application/json',
  'application/json',
  'application/vnd.api+json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/xml',
  undefined,
);
const randomHeaders = fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), headerText, { maxKeys: 3 }).map((h) => {
  for (const k of ['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'content-encoding', 'upgrade', 'keep-alive', 'te', 'trailer']) delete h[k];
  return h;
});
const extraHeaders = fc.record({
  tenant: fc.option(tenantHeader, { nil: undefined }),
  storeRef: fc.option(tenantHeader, { freq: 5, nil: undefined }),
  contentType,
  language: fc.option(fc.constantFrom('de', 'de-DE', 'de_DE', 'en', '*', 'zz-ZZ;q=0.1,,,', ''), { nil: undefined }),
  auth: fc.option(fc.constantFrom('Bearer x', 'Bearer', 'Basic abc', `Bearer ${SECRET_KEY}`), { freq: 4, nil: undefined }),
  random: randomHeaders,
});

function headersOf(h: { tenant?: string; storeRef?: string; contentType?: string; language?: string; auth?: string; random: Record<string, string> }, base: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { ...h.random, ...base };
  if (h.tenant !== undefined) out['x-tenant-identifier'] = h.tenant;
  if (h.storeRef !== undefined) out['x-store-reference'] = h.storeRef;
  if (h.contentType !== undefined) out['content-type'] = h.contentType;
  if (h.language !== undefined) out['accept-language'] = h.language;
  if (h.auth !== undefined) out.authorization = h.auth;
  return out;
}

// ---- request arbitraries ----

const bodyRequest = fc
  .record({ ep: fc.constantFrom(...ENDPOINTS), mutations: fc.array(mutation, { maxLength: 3 }), h: extraHeaders, keepType: fc.boolean() })
  .map(({ ep, mutations, h, keepType }): FuzzRequest => {
    const body = mutate(ep.body?.() ?? {}, mutations);
    const headers = headersOf(h, ep.headers?.() ?? {});
    if (keepType) headers['content-type'] = ep.glue ? 'application/vnd.api+json' : 'application/json';
    if (h.tenant === undefined && !ep.path.startsWith('/event-platform') && !ep.path.startsWith('/sandbox')) headers['x-tenant-identifier'] = 'fz-a';
    const form = !keepType && headers['content-type'] === 'application/x-www-form-urlencoded';
    return { method: ep.method, path: ep.path, headers, body: serialize(body, form) };
  });

const rawBodyRequest = fc
  .record({ ep: fc.constantFrom(...ENDPOINTS), raw: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v) ?? ''), deep.map((d) => serialize(d, false))), h: extraHeaders })
  .map(({ ep, raw, h }): FuzzRequest => ({ method: ep.method, path: ep.path, headers: headersOf(h, ep.headers?.() ?? {}), body: raw }));

const idRequest = fc.record({ ep: fc.constantFrom(...ID_PATHS), id: idValue, mutations: fc.array(mutation, { maxLength: 2 }) }).map(({ ep, id, mutations }): FuzzRequest => ({
  method: ep.method,
  path: ep.path(encodeURIComponent(id().replace(/[\ud800-\udfff]/g, '\ufffd'))),
  headers: { ...(ep.headers ?? {}), ...(ep.body ? { 'content-type': 'application/json' } : {}) },
  body: ep.body ? serialize(mutate(ep.body(), mutations), false) : undefined,
}));

const queryRequest = fc
  .record({ path: fc.constantFrom(...QUERY_PATHS), tx: fc.option(idValue, { nil: undefined }), tenant: fc.option(fc.oneof(fc.constantFrom('fz-a', 'fz-b', 'fz-never'), str), { nil: undefined }), error: fc.option(str, { nil: undefined }), extra: fc.dictionary(str, str, { maxKeys: 2 }) })
  .map(({ path, tx, tenant, error, extra }): FuzzRequest => {
    const q = new URLSearchParams(extra);
    if (tx) q.set('transactionId', tx());
    if (tenant !== undefined) q.set('tenantIdentifier', tenant);
    if (error !== undefined) q.set('error', error);
    return { method: 'GET', path: `${path}?${q.toString()}`, headers: {} };
  });

const plainRequest = fc.record({ path: fc.constantFrom(...PLAIN_GETS), method: fc.constantFrom<FuzzRequest['method']>('GET', 'GET', 'GET', 'POST', 'DELETE', 'PUT', 'PATCH'), h: extraHeaders }).map(
  ({ path, method, h }): FuzzRequest => ({ method, path, headers: headersOf(h), body: method === 'GET' ? undefined : '{}' }),
);

function sign(body: string, secret: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}
const webhookEvent = () => ({
  id: `evt_${randomUUID()}`,
  type: 'payment.authorized',
  created: Math.floor(Date.now() / 1000),
  livemode: false,
  data: { object: { id: ids.own, object: 'payment', status: 'authorized', amount: 1000, currency: 'EUR', captureMethod: 'manual', amountCapturable: 1000, amountCaptured: 0, amountRefunded: 0, metadata: { tenantIdentifier: 'fz-a' } } },
});
const webhookRequest = fc
  .record({
    path: fc.constantFrom('/webhooks/test', '/webhooks', '/webhooks/test?endpoint=fz-a', '/webhooks?endpoint=fz-never'),
    mutations: fc.array(mutation, { maxLength: 3 }),
    signature: fc.constantFrom('valid', 'valid', 'wrong-secret', 'old', 'garbage', 'none', 'duplicate-v1'),
    contentType: contentType,
  })
  .map(({ path, mutations, signature, contentType: ct }): FuzzRequest => {
    const body = serialize(mutate(webhookEvent(), mutations), false);
    const now = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = ct ? { 'content-type': ct } : {};
    if (signature === 'valid') headers['sandbox-signature'] = sign(body, WEBHOOK_SECRET, now);
    if (signature === 'wrong-secret') headers['sandbox-signature'] = sign(body, 'whsec_forgedforgedforged00', now);
    if (signature === 'old') headers['sandbox-signature'] = sign(body, WEBHOOK_SECRET, now - 3600);
    if (signature === 'garbage') headers['sandbox-signature'] = 't=abc,v1=zz,v1=';
    if (signature === 'duplicate-v1') headers['sandbox-signature'] = `${sign(body, WEBHOOK_SECRET, now)},v1=00`;
    return { method: 'POST', path, headers, body };
  });

const request: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 10, arbitrary: bodyRequest },
  { weight: 2, arbitrary: rawBodyRequest },
  { weight: 2, arbitrary: idRequest },
  { weight: 2, arbitrary: queryRequest },
  { weight: 1, arbitrary: plainRequest },
  { weight: 3, arbitrary: webhookRequest },
);

// ---- the run ----

interface Outcome {
  status: number;
  code?: string;
  retryAfter: string | null;
  text: string;
}

let slowest = { ms: 0, request: '' };
async function send(r: FuzzRequest): Promise<Outcome> {
  const started = Date.now();
  try {
    return await answer(r);
  } finally {
    const ms = Date.now() - started;
    if (ms > slowest.ms) slowest = { ms, request: `${r.method} ${r.path.slice(0, 80)}` };
  }
}
async function answer(r: FuzzRequest): Promise<Outcome> {
  let res: Response;
  let text: string;
  try {
    // A fresh connection per request: a kept-alive socket left idle past the server's keep-alive timeout (72 s) is
    // reset when reused, which says nothing about the request (it happened once in CI after a long stall of the
    // machine). A reset on a fresh connection is the server's doing and still fails the test.
    const headers = { ...r.headers, connection: 'close' };
    res = await fetch(app.url + r.path, { method: r.method, headers, body: r.method === 'GET' ? undefined : r.body, redirect: 'manual' });
    text = await res.text();
  } catch (err) {
    // no answer at all (reset, closed connection) counts as a failure like a 5xx
    return { status: 0, retryAfter: null, text: String((err as Error & { cause?: unknown }).cause ?? err) };
  }
  let code: string | undefined;
  try {
    code = String(JSON.parse(text)?.errors?.[0]?.code ?? '');
  } catch {
    code = undefined;
  }
  return { status: res.status, code, retryAfter: res.headers.get('retry-after'), text };
}

/** The contract's one 5xx for a client request: a webhook that cannot be attributed yet (sync-api.md 4.10). */
const prescribed = (o: Outcome): boolean => o.status === 503 && o.code === 'WEBHOOK_UNATTRIBUTED' && o.retryAfter !== null;

describe('fuzz: generated requests over every endpoint', () => {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  beforeAll(() => loopDelay.enable());
  afterAll(() => loopDelay.disable());
  it(`${RUNS} generated requests: no answer ≥ 500 (except the prescribed 503 WEBHOOK_UNATTRIBUTED)`, async () => {
    const histogram = new Map<number, number>();
    const failures: Array<{ request: string; status: number; answer: string }> = [];
    let sent = 0;
    let unattributed = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const todo = batch.slice(0, Math.max(0, RUNS - sent));
        sent += todo.length;
        const outcomes = await Promise.all(todo.map(send));
        outcomes.forEach((o, i) => {
          histogram.set(o.status, (histogram.get(o.status) ?? 0) + 1);
          if (prescribed(o)) unattributed++;
          else if ((o.status >= 500 || o.status === 0) && failures.length < 20) {
            const r = todo[i]!;
            failures.push({ request: `${r.method} ${r.path.slice(0, 200)} ${JSON.stringify(r.headers).slice(0, 300)} ${(r.body ?? '').slice(0, 400)}`, status: o.status, answer: o.text.slice(0, 300) });
          }
        });
        return true; // every failure is collected (not only the first), the assertion below reports them
      }),
      { numRuns: Math.ceil(RUNS / BATCH) },
    );
    const hist = [...histogram.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
    process.stdout.write(`[fuzz] ${sent} requests; status histogram {${hist}}; prescribed 503 WEBHOOK_UNATTRIBUTED: ${unattributed}; longest event-loop stall ${Math.round(loopDelay.max / 1e6)} ms; slowest answer ${slowest.ms} ms (${slowest.request})\n`);
    expect(sent).toBe(RUNS);
    expect(failures).toEqual([]);
  }, 600_000);
});

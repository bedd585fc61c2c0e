/**
 * POST /webhooks and /webhooks/test (sync-api.md 4.10, flows.md 12): every step of the receive table, rate limiting of
 * unverified traffic, de-duplication, the inbox row states, buffering until the payment exists (applied by the worker),
 * retries with backoff, dead rows, ordering, and events the app does not handle yet.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discardHeldWebhooks, processInboxRow, replayHeldWebhooks, retryDelayMs, runWebhookRetries, waitingDelayMs } from '../src/app/webhook-processing.js';
import type { AppDeps } from '../src/app/context.js';
import type { Db, Tx } from '../src/store/db.js';
import { registry } from '../src/metrics.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { storePayment as storePaymentIn } from './helpers/payments.js';

const WH = 'whsec_0123456789abcdef';
let app: TestApp;

const configBody = (c: Record<string, unknown>) => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(c) } } });

async function configure(tenant: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await app.request('/private/configure', { tenant, body: configBody({ secretKey: 'sk_sandbox_test1234', webhookSecret: WH, ...extra }) });
  expect(r.status).toBe(200);
}

export function sign(body: string, secret = WH, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

let seq = 0;
function event(type: string, object: Record<string, unknown>, opts: { id?: string; livemode?: boolean } = {}): string {
  return JSON.stringify({ id: opts.id ?? `evt_${randomBytes(8).toString('hex')}`, type, created: Math.floor(Date.now() / 1000) + seq++, livemode: opts.livemode ?? false, data: { object } });
}

function paymentObject(id: string, tenant: string, status = 'authorized', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    object: 'payment',
    status,
    amount: 1000,
    currency: 'EUR',
    captureMethod: 'manual',
    amountCapturable: status === 'authorized' ? 1000 : 0,
    amountCaptured: 0,
    amountRefunded: 0,
    metadata: { tenantIdentifier: tenant },
    card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2040 },
    ...extra,
  };
}

async function post(
  body: string | Buffer | undefined,
  opts: { path?: string; signature?: string | null; contentType?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; headers: { get(name: string): string | null }; body: any; text: string }> {
  const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/json', ...(opts.headers ?? {}) };
  const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  if (opts.signature !== null && b !== undefined) headers['sandbox-signature'] = opts.signature ?? sign(b.toString('utf8'));
  if (b !== undefined) headers['content-length'] = String(b.length);
  const u = new URL(app.url + (opts.path ?? '/webhooks/test'));
  // node:http (not fetch) so a test can pick its source address (rate limiting is per source address)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const h = res.headers;
        resolve({ status: res.statusCode ?? 0, headers: { get: (n: string) => { const v = h[n.toLowerCase()]; return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v); } }, body: json, text });
      });
    });
    req.on('error', reject);
    if (b !== undefined) req.write(b);
    req.end();
  });
}

const storePayment = (tenant: string, transactionId: string, orderReference?: string | null): Promise<string> => storePaymentIn(app.deps.db, tenant, transactionId, orderReference);

const inbox = async (tenant: string) =>
  (await app.deps.db.query<any>('SELECT * FROM webhook_inbox WHERE tenant_identifier = $1 ORDER BY received_at, id', [tenant])).rows;
const countOf = async (paymentId: string, name = 'PaymentAuthorized'): Promise<number> =>
  (await app.deps.db.query<any>('SELECT 1 FROM outbox WHERE ordering_key LIKE $1 AND message_name = $2', [`%payment/${paymentId}`, name])).rows.length;
const messages = async (tenant: string, name?: string) =>
  (await app.deps.db.query<any>(`SELECT message_name, payload, attributes FROM outbox WHERE tenant_identifier = $1 ${name ? 'AND message_name = $2' : ''} ORDER BY seq`, name ? [tenant, name] : [tenant])).rows;

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const txId = () => `sbx_pay_${randomBytes(8).toString('hex')}`;

beforeAll(async () => {
  app = await startTestApp();
  await configure('wh-a');
  await configure('wh-b');
});
afterAll(async () => {
  await app?.close();
});

describe('webhooks: refusals of the 4.10 table (nothing stored)', () => {
  it('empty body: 400 INVALID_REQUEST "POST content is required."', async () => {
    const r = await post(undefined, { signature: null });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: 'INVALID_REQUEST', status: 400, message: 'POST content is required.' });
    expect(r.body.error).toBe('POST content is required.');
    const r2 = await post('', { signature: null });
    expect(r2.status).toBe(400);
    expect(r2.body.errors[0].message).toBe('POST content is required.');
  });

  it('unparseable body: 400 INVALID_REQUEST, also for non-JSON content types', async () => {
    const r = await post('not json at all', { contentType: 'text/plain' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].code).toBe('INVALID_REQUEST');
    const r2 = await post('{"id":"evt_1"}');
    expect(r2.status).toBe(400);
    expect(r2.body.errors[0].code).toBe('INVALID_REQUEST');
  });

  it('mode mismatch: a live event on /webhooks/test and a test event on /webhooks answer 400 VALIDATION_FAILED', async () => {
    const id = txId();
    const live = event('payment.authorized', paymentObject(id, 'wh-a'), { livemode: true });
    const r = await post(live, { path: '/webhooks/test' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Webhook mode does not match the endpoint.' });
    const r2 = await post(event('payment.authorized', paymentObject(id, 'wh-a')), { path: '/webhooks' });
    expect(r2.status).toBe(400);
    expect(r2.body.errors[0].message).toBe('Webhook mode does not match the endpoint.');
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id)).toHaveLength(0);
  });

  it("a correctly signed event whose mode differs from the tenant's is recorded as ignored and changes nothing (issue 10 item 8)", async () => {
    await configure('wh-live', { isLive: true });
    const id = txId();
    const paymentId = await storePayment('wh-live', id);
    const r = await post(event('payment.authorized', paymentObject(id, 'wh-live')), { path: '/webhooks/test' });
    expect(r.status).toBe(200);
    const row = await until(async () => (await inbox('wh-live')).find((x) => x.psp_object_id === id), (x) => x?.state === 'ignored');
    expect(row).toMatchObject({ state: 'ignored', reason: expect.stringContaining("differs from the tenant's live mode") });
    expect(await countOf(paymentId)).toBe(0);
    // the same event in the tenant's mode is applied
    const live = await post(event('payment.authorized', paymentObject(id, 'wh-live'), { livemode: true }), { path: '/webhooks' });
    expect(live.status).toBe(200);
    expect(await until(() => countOf(paymentId), (n) => n === 1)).toBe(1);
  });

  it('unattributable (no mapping, unknown tenant hint, or none): 503 WEBHOOK_UNATTRIBUTED with Retry-After: 60', async () => {
    for (const hint of ['no-such-tenant', undefined]) {
      const obj = paymentObject(txId(), 'x');
      obj.metadata = hint ? { tenantIdentifier: hint } : {};
      const r = await post(event('payment.authorized', obj));
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('60');
      expect(r.body.errors[0]).toMatchObject({ code: 'WEBHOOK_UNATTRIBUTED', status: 503, message: 'Webhook cannot be attributed yet; retry later.' });
    }
    expect((await app.deps.db.query('SELECT 1 FROM webhook_inbox WHERE tenant_identifier = $1', ['no-such-tenant'])).rows).toHaveLength(0);
  });

  it('bad signature (wrong secret, garbage, missing header): 400 VALIDATION_FAILED "Invalid webhook signature."', async () => {
    const id = txId();
    const body = event('payment.authorized', paymentObject(id, 'wh-a'));
    for (const signature of [sign(body, 'whsec_wrongwrongwrong00'), 't=1,v1=abc', null, sign(body.replace('1000', '1001'))]) {
      const r = await post(body, { signature });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Invalid webhook signature.' });
    }
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id)).toHaveLength(0);
  });

  it('old timestamp (more than 300 s) is refused; 299 s is accepted', async () => {
    const id = txId();
    const body = event('payment.authorized', paymentObject(id, 'wh-a'));
    const now = Math.floor(Date.now() / 1000);
    const old = await post(body, { signature: sign(body, WH, now - 301) });
    expect(old.status).toBe(400);
    expect(old.body.errors[0].message).toBe('Invalid webhook signature.');
    const future = await post(body, { signature: sign(body, WH, now + 400) });
    expect(future.status).toBe(400);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id)).toHaveLength(0);
    const fresh = await post(body, { signature: sign(body, WH, now - 290) });
    expect(fresh.status).toBe(200);
  });

  it('disconnected tenant: 403 TENANT_DISCONNECTED, nothing stored', async () => {
    await configure('wh-gone');
    const d = await app.request('/private/disconnect', { tenant: 'wh-gone', body: {} });
    expect(d.status).toBe(204);
    const body = event('payment.authorized', paymentObject(txId(), 'wh-gone'));
    const r = await post(body);
    expect(r.status).toBe(403);
    expect(r.body.errors[0]).toMatchObject({ code: 'TENANT_DISCONNECTED', message: 'Tenant is disconnected.' });
    expect(await inbox('wh-gone')).toHaveLength(0);
  });

  it('body larger than 1 MiB: 413', async () => {
    const big = JSON.stringify({ id: 'evt_big', pad: 'x'.repeat(1024 * 1024 + 10) });
    const r = await post(big);
    expect(r.status).toBe(413);
    expect(r.body.errors[0].status).toBe(413);
  });
});

describe('webhooks: rate limiting of unverified traffic', () => {
  it('beyond 60 rejections per minute the source gets 429 with Retry-After; verified webhooks still pass', async () => {
    const bad = event('payment.authorized', paymentObject(txId(), 'wh-b'));
    let rejected400 = 0;
    let limited: Awaited<ReturnType<typeof post>> | undefined;
    // At most two windows: a minute boundary during the loop restarts the count once.
    for (let i = 0; i < 125 && !limited; i++) {
      const r = await post(bad, { signature: sign(bad, 'whsec_wrongwrongwrong00'), localAddress: '127.0.0.2' });
      if (r.status === 429) limited = r;
      else {
        expect(r.status).toBe(400);
        rejected400++;
      }
    }
    expect(limited).toBeDefined();
    expect(rejected400).toBeGreaterThanOrEqual(60);
    expect(limited!.body.errors[0]).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    const wait = Number(limited!.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);

    const id = txId();
    await storePayment('wh-b', id);
    const good = await post(event('payment.authorized', paymentObject(id, 'wh-b')), { localAddress: '127.0.0.2' });
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ isSuccessful: true });
  });
});

describe('webhooks: storing and processing', () => {
  it('a verified event is stored and processed inline: 200 {"isSuccessful": true}, one PaymentAuthorized; exact bytes of any content type', async () => {
    const id = txId();
    const pid = await storePayment('wh-a', id);
    // pretty-printed body sent as text/plain: the signature is over these exact bytes
    const body = JSON.stringify(JSON.parse(event('payment.authorized', paymentObject(id, 'wh-a'))), null, 2);
    const r = await post(body, { contentType: 'text/plain; charset=utf-8' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ isSuccessful: true });
    const rows = (await inbox('wh-a')).filter((x) => x.psp_object_id === id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'processed', event_type: 'payment.authorized', mode: 'test', connector: 'sandbox' });
    expect(await countOf(pid)).toBe(1);
  });

  it('form-encoded content type is accepted as raw bytes too', async () => {
    const id = txId();
    await storePayment('wh-a', id);
    const r = await post(event('payment.authorized', paymentObject(id, 'wh-a')), { contentType: 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(200);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id)[0].state).toBe('processed');
  });

  it('duplicate event id: 200, stored once, processed once (one PaymentAuthorized)', async () => {
    const id = txId();
    const pid = await storePayment('wh-a', id);
    const evId = `evt_dup_${randomBytes(4).toString('hex')}`;
    const body = event('payment.authorized', paymentObject(id, 'wh-a'), { id: evId });
    const first = await post(body);
    const second = await post(body);
    const third = await post(event('payment.authorized', paymentObject(id, 'wh-a'), { id: evId })); // same id, new bytes
    for (const r of [first, second, third]) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ isSuccessful: true });
    }
    expect((await inbox('wh-a')).filter((x) => x.event_id === evId)).toHaveLength(1);
    expect(await countOf(pid)).toBe(1);
  });

  it('the same event for another tenant is not a duplicate (de-duplication is per tenant)', async () => {
    const evId = `evt_two_${randomBytes(4).toString('hex')}`;
    const a = txId();
    const b = txId();
    await storePayment('wh-a', a);
    await storePayment('wh-b', b);
    expect((await post(event('payment.authorized', paymentObject(a, 'wh-a'), { id: evId }))).status).toBe(200);
    expect((await post(event('payment.authorized', paymentObject(b, 'wh-b'), { id: evId }))).status).toBe(200);
    expect((await app.deps.db.query('SELECT tenant_identifier FROM webhook_inbox WHERE event_id = $1', [evId])).rows).toHaveLength(2);
  });

  it('the stored mapping wins over the tenant hint (a hint naming another tenant cannot redirect the event)', async () => {
    const id = txId();
    await storePayment('wh-a', id);
    const obj = paymentObject(id, 'wh-b'); // hint says wh-b, mapping says wh-a
    const r = await post(event('payment.authorized', obj));
    expect(r.status).toBe(200);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id)).toHaveLength(1);
    expect((await inbox('wh-b')).filter((x) => x.psp_object_id === id)).toHaveLength(0);
  });

  it('a stale event (still pending after authorized) is recorded as ignored with its reason, no message', async () => {
    const id = txId();
    await storePayment('wh-a', id);
    expect((await post(event('payment.authorized', paymentObject(id, 'wh-a')))).status).toBe(200);
    const before = (await messages('wh-a')).length;
    const r = await post(event('payment.failed', paymentObject(id, 'wh-a', 'failed', { lastDecline: { code: 'card_blocked', message: 'blocked' } })));
    expect(r.status).toBe(200);
    const rows = (await inbox('wh-a')).filter((x) => x.psp_object_id === id);
    expect(rows.map((x) => x.state)).toEqual(['processed', 'ignored']);
    expect(rows[1].reason).toBeTruthy();
    expect((await messages('wh-a')).length).toBe(before);
  });

  it('event types the app does not use are stored and ignored with a reason', async () => {
    const pay = txId();
    await storePayment('wh-a', pay);
    const r = await post(event('payment.created', paymentObject(pay, 'wh-a', 'requires_payment_method')));
    expect(r.status).toBe(200);
    const row = (await inbox('wh-a')).find((x) => x.psp_object_id === pay);
    expect(row.state).toBe('ignored');
    expect(row.reason).toMatch(/payment\.created/);
  });
});

describe('webhooks: buffering, retries, dead rows', () => {
  it('unknown transaction with a resolvable tenant hint: stored waiting_for_payment, applied later by the worker without another webhook', async () => {
    const id = txId();
    const r = await post(event('payment.authorized', paymentObject(id, 'wh-b')));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ isSuccessful: true });
    let rows = (await inbox('wh-b')).filter((x) => x.psp_object_id === id);
    expect(rows).toHaveLength(1);
    expect(rows[0].state).toBe('waiting_for_payment');
    expect(rows[0].attempts).toBe(1);
    expect(new Date(rows[0].next_attempt_at).getTime()).toBeGreaterThan(Date.now() - 5_000);

    // The payment appears without any further webhook (and without the store-time re-drive): the worker applies it.
    const pid = await storePayment('wh-b', id);
    rows = await until(
      async () => (await inbox('wh-b')).filter((x) => x.psp_object_id === id),
      (v) => v[0]?.state === 'processed',
    );
    expect(rows[0].state).toBe('processed');
    expect(await countOf(pid)).toBe(1);
  });

  it('events of one payment wait behind an older waiting event and are then applied in arrival order', async () => {
    const id = txId();
    const e1 = await post(event('payment.attempt_failed', paymentObject(id, 'wh-b', 'requires_payment_method', { lastDecline: { code: 'card_declined', message: 'declined' } })));
    const e2 = await post(event('payment.authorized', paymentObject(id, 'wh-b')));
    expect([e1.status, e2.status]).toEqual([200, 200]);
    // processing follows the acknowledgement: both end up waiting (the second behind the first), neither is applied
    let rows = await until(
      async () => (await inbox('wh-b')).filter((x) => x.psp_object_id === id),
      (v) => v.length === 2 && v.every((x) => x.state !== 'received'),
    );
    expect(rows.map((x) => x.state)).toEqual(['waiting_for_payment', 'waiting_for_payment']);
    const pid = await storePayment('wh-b', id);
    rows = await until(
      async () => (await inbox('wh-b')).filter((x) => x.psp_object_id === id),
      (v) => v.every((x) => x.state === 'processed'),
    );
    expect(rows.map((x) => x.state)).toEqual(['processed', 'processed']);
    expect(new Date(rows[0].processed_at).getTime()).toBeLessThanOrEqual(new Date(rows[1].processed_at).getTime());
    expect(await countOf(pid)).toBe(1);
  });

  it('backoff schedules: waiting 1 s doubling to 10 min; retrying 1 s, 5 s, 30 s, 2 min, 10 min, then 30 min', () => {
    expect([1, 2, 3, 4, 5, 10, 11, 50].map(waitingDelayMs)).toEqual([1000, 2000, 4000, 8000, 16000, 512000, 600000, 600000]);
    expect([1, 2, 3, 4, 5, 6, 7, 100].map(retryDelayMs)).toEqual([1000, 5000, 30000, 120000, 600000, 1800000, 1800000, 1800000]);
  });

  it('a processing failure moves the row to retrying (attempts counted, next attempt scheduled); a later attempt applies it', async () => {
    const id = txId();
    const pid = await storePayment('wh-a', id);
    // Store without processing: an event whose processing fails once (the payments lookup throws).
    const evId = `evt_fail_${randomBytes(4).toString('hex')}`;
    const inboxId = randomUUID();
    const body = JSON.parse(event('payment.authorized', paymentObject(id, 'wh-a'), { id: evId }));
    await app.deps.db.query(
      `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, next_attempt_at)
       VALUES ($1, 'wh-a', 'sandbox', $2, 'payment.authorized', 'test', $3, $4::jsonb, now() + interval '1 hour')`,
      [inboxId, evId, id, JSON.stringify(body)],
    );
    const real = app.deps.db;
    const failing: Db = {
      kind: real.kind,
      description: real.description,
      stats: real.stats,
      listen: (c, n, l) => real.listen(c, n, l),
      query: (sql, params) => real.query(sql, params),
      session: (fn) => real.session(fn),
      close: () => real.close(),
      tx: <T>(fn: (tx: Tx) => Promise<T>) =>
      app.deps.db.tx((tx) =>
        fn({
          afterCommit: (cb) => tx.afterCommit(cb),
          query: (sql: string, params?: unknown[]) => (/FROM payments (p )?WHERE/.test(sql) ? Promise.reject(new Error('simulated conflict')) : tx.query(sql, params)),
        } as Tx),
      ),
    };
    const deps: AppDeps = { ...app.deps, db: failing };
    expect(await processInboxRow(deps, inboxId)).toBe('retrying');
    const row = (await app.deps.db.query<any>('SELECT * FROM webhook_inbox WHERE id = $1', [inboxId])).rows[0];
    expect(row).toMatchObject({ state: 'retrying', attempts: 1 });
    expect(row.reason).toMatch(/simulated conflict/);
    expect(await countOf(pid)).toBe(0);
    // The worker takes it once due.
    const done = await until(
      async () => (await app.deps.db.query<any>('SELECT state FROM webhook_inbox WHERE id = $1', [inboxId])).rows[0].state,
      (s) => s === 'processed',
    );
    expect(done).toBe('processed');
    expect(await countOf(pid)).toBe(1);
  });

  it('a row still waiting after 24 hours becomes dead (webhook_dead_total)', async () => {
    const id = txId();
    const r = await post(event('payment.authorized', paymentObject(id, 'wh-b')));
    expect(r.status).toBe(200);
    const metric = async () => (await registry.getSingleMetric('webhook_dead_total')!.get()).values[0]?.value ?? 0;
    const before = await metric();
    await app.deps.db.query(`UPDATE webhook_inbox SET received_at = now() - interval '25 hours', next_attempt_at = now() - interval '1 second' WHERE psp_object_id = $1`, [id]);
    await runWebhookRetries(app.deps);
    const row = await until(
      async () => (await inbox('wh-b')).find((x) => x.psp_object_id === id),
      (v) => v.state === 'dead',
    );
    expect(row.state).toBe('dead');
    expect(await metric()).toBeGreaterThan(before);
  });
});

describe('webhooks: held for the order (pre-order payments)', () => {
  it('an authorization for a payment without order is held (waiting_for_order), later events queue behind it; replay applies them in order', async () => {
    const id = txId();
    const pid = await storePayment('wh-a', id, null);
    expect((await post(event('payment.authorized', paymentObject(id, 'wh-a')))).status).toBe(200);
    expect((await post(event('payment.canceled', paymentObject(id, 'wh-a', 'canceled')))).status).toBe(200);
    let rows = (await inbox('wh-a')).filter((x) => x.psp_object_id === id);
    expect(rows.map((x) => x.state)).toEqual(['waiting_for_order', 'waiting_for_order']);
    expect(await countOf(pid)).toBe(0);
    // the worker leaves held rows alone
    await runWebhookRetries(app.deps);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id).map((x) => x.state)).toEqual(['waiting_for_order', 'waiting_for_order']);

    await app.deps.db.query(`UPDATE payments SET order_reference = $2, linked_at = now() WHERE id = $1`, [pid, `ORD-${randomBytes(4).toString('hex')}`]);
    await replayHeldWebhooks(app.deps, 'wh-a', id);
    rows = (await inbox('wh-a')).filter((x) => x.psp_object_id === id);
    expect(rows.map((x) => x.state)).toEqual(['processed', 'processed']);
    expect(await countOf(pid)).toBe(1);
    expect(await countOf(pid, 'PaymentCanceled')).toBe(1);
    const status = (await app.deps.db.query<any>('SELECT status FROM payments WHERE id = $1', [pid])).rows[0].status;
    expect(status).toBe('canceled');
  });

  it('discardHeldWebhooks marks held rows discarded (pre-order payment cancelled); held rows expire after 7 days', async () => {
    const id = txId();
    await storePayment('wh-a', id, null);
    expect((await post(event('payment.authorized', paymentObject(id, 'wh-a')))).status).toBe(200);
    const n = await app.deps.db.tx((tx) => discardHeldWebhooks(tx, 'wh-a', id));
    expect(n).toBe(1);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id).map((x) => x.state)).toEqual(['discarded']);

    const id2 = txId();
    await storePayment('wh-a', id2, null);
    expect((await post(event('payment.authorized', paymentObject(id2, 'wh-a')))).status).toBe(200);
    await app.deps.db.query(`UPDATE webhook_inbox SET received_at = now() - interval '8 days' WHERE psp_object_id = $1`, [id2]);
    await runWebhookRetries(app.deps);
    expect((await inbox('wh-a')).filter((x) => x.psp_object_id === id2).map((x) => x.state)).toEqual(['expired']);
  });
});

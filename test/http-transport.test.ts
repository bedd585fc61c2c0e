import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { enqueue, type OutgoingMessage } from '../src/messaging/outbox.js';
import { OutboxRelay } from '../src/messaging/relay.js';
import { createTokenProvider } from '../src/messaging/token.js';
import { HttpTransport } from '../src/messaging/transports/http.js';
import { createTransport } from '../src/messaging/transports/index.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { TEST_KEYS } from './helpers/app.js';

const APP = 'open-acp-pay';
const silent = pino({ level: 'silent' });

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A tiny Event Platform + OAuth token endpoint. */
class Receiver {
  requests: Received[] = [];
  tokenRequests: Received[] = [];
  /** Answer the next N publishes with 500. */
  failNext = 0;
  /** Answer publishes with this status (after failNext). */
  status = 200;
  hang = false;
  tokenCounter = 0;
  tokenExpiresIn = 3600;
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      if (r.url === '/oauth/token') {
        this.tokenRequests.push(r);
        this.tokenCounter++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: `tok-${this.tokenCounter}`, token_type: 'Bearer', expires_in: this.tokenExpiresIn }));
        return;
      }
      this.requests.push(r);
      if (this.hang) return; // never answers
      if (this.failNext > 0) {
        this.failNext--;
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('temporarily broken');
        return;
      }
      if (this.status !== 200) {
        res.writeHead(this.status);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ MessageId: `ep-${this.requests.length}` }));
    });
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
  reset(): void {
    this.requests = [];
    this.tokenRequests = [];
    this.failNext = 0;
    this.status = 200;
    this.hang = false;
  }
}

async function waitFor(fn: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const msg = (tenant: string, name: string, eventKey: string, orderingKey: string, payload: Record<string, unknown>): OutgoingMessage => ({
  tenantIdentifier: tenant,
  channel: 'payment-events',
  name,
  eventKey,
  orderingKey,
  payload,
  correlationId: 'corr-xyz',
});

describe('http transport (messages.md 9.1)', () => {
  const receiver = new Receiver();
  let db: Db;
  beforeAll(async () => {
    await receiver.start();
    db = await openDb({ kind: 'pglite-memory' });
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close();
    await receiver.stop();
  });
  beforeEach(() => receiver.reset());

  const config = (env: Record<string, string> = {}) =>
    loadConfig({
      DATABASE_URL: 'memory://',
      ENCRYPTION_KEYS: TEST_KEYS,
      MESSAGE_TRANSPORT: 'http',
      MESSAGE_BROKER_HTTP_SENDER_BASE_URL: `${receiver.url}/ep`, // no trailing slash: one is added
      MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL: `${receiver.url}/ep/`,
      EVENT_PLATFORM_TOKEN_URL: `${receiver.url}/oauth/token`,
      EVENT_PLATFORM_CLIENT_ID: 'client-1',
      EVENT_PLATFORM_CLIENT_SECRET: 'very-secret',
      ...env,
    });

  const deliveredAll = (ids: string[]) =>
    waitFor(async () => {
      const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
      return r.rows[0]!.n === ids.length;
    }, 'deliveries');

  it('publishes every message once with the specified headers, body and OAuth token, retrying a receiver that fails three times', async () => {
    const cfg = config();
    const transport = createTransport({ config: cfg, db, log: silent });
    expect(transport.kind).toBe('http');
    const relay = new OutboxRelay(db, transport, silent, { maxRetryHours: 72, pollIntervalMs: 10, backoffBaseMs: 10, backoffMaxMs: 40, housekeepingIntervalMs: 0 });
    receiver.failNext = 3;
    const ids = await db.tx((tx) =>
      enqueue(tx, APP, [
        msg('ht-1', 'PaymentUpdated', 'payment/h1/version/1', 'payment/h1', { paymentReference: 'sbx_1', details: '{}' }),
        msg('ht-1', 'PaymentAuthorized', 'payment/h1/status/1', 'payment/h1', { orderReference: 'DE--1', orderItemIds: [17, 18], amount: 10000, currencyIsoCode: 'EUR' }),
        msg('ht-1', 'PaymentCreated', 'payment/h2/created', 'payment/h2', { paymentReference: 'sbx_2', details: '{}' }),
        msg('ht-2', 'PaymentCreated', 'payment/h3/created', 'payment/h3', { paymentReference: 'sbx_3', details: '{}' }),
      ]),
    );
    relay.start();
    try {
      await deliveredAll(ids);
    } finally {
      await relay.stop();
    }

    // 3 failed attempts + one successful publish per message
    expect(receiver.requests).toHaveLength(ids.length + 3);
    const ok = receiver.requests.slice(3);
    const okIds = ok.map((r) => r.headers['message-id']);
    expect(new Set(okIds).size).toBe(ids.length);
    expect(new Set(okIds)).toEqual(new Set(ids));

    const rows = await db.query<{ id: string; receipt: string; attempts: number; timestamp: string; attributes: Record<string, string>; payload: unknown }>(
      `SELECT id, receipt, attempts, message_timestamp AS timestamp, attributes, payload FROM outbox WHERE id = ANY($1::text[])`,
      [ids],
    );
    for (const row of rows.rows) {
      const reqIdx = receiver.requests.findIndex((r, i) => i >= 3 && r.headers['message-id'] === row.id);
      const req = receiver.requests[reqIdx]!;
      expect(row.receipt).toBe(`ep-${reqIdx + 1}`);
      expect(req.method).toBe('POST');
      expect(req.url).toBe('/ep/payment-events');
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers.authorization).toBe('Bearer tok-1');
      const name = row.attributes.transferName;
      expect(req.headers).toMatchObject({
        'transfer-name': name,
        name,
        event: name,
        'tenant-identifier': row.attributes.tenantIdentifier,
        'store-reference': row.attributes.tenantIdentifier,
        'actor-id': APP,
        publisher: APP,
        timestamp: row.timestamp,
        'correlation-id': 'corr-xyz',
        'transaction-id': row.id,
        'message-id': row.id,
      });
      expect(req.headers['x-transfer-name']).toBeUndefined();
      expect(JSON.parse(req.body)).toEqual(row.payload);
    }
    // The failed attempts were recorded and retried: at least one row has several attempts.
    expect(rows.rows.reduce((s, r) => s + r.attempts, 0)).toBe(ids.length + 3);

    // The token was fetched once (client credentials with audience) and cached.
    expect(receiver.tokenRequests).toHaveLength(1);
    const form = new URLSearchParams(receiver.tokenRequests[0]!.body);
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'very-secret', audience: 'aop-event-platform' });
    expect(receiver.tokenRequests[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('sends X- prefixed attribute headers with MESSAGE_BROKER_HTTP_HEADER_PREFIX=X- and a static EVENT_PLATFORM_TOKEN', async () => {
    const cfg = config({ MESSAGE_BROKER_HTTP_HEADER_PREFIX: 'X-', EVENT_PLATFORM_TOKEN: 'static-token', EVENT_PLATFORM_AUDIENCE: 'other' });
    const relay = new OutboxRelay(db, createTransport({ config: cfg, db, log: silent }), silent, { maxRetryHours: 72, housekeepingIntervalMs: 0 });
    const [id] = await db.tx((tx) => enqueue(tx, APP, [msg('ht-x', 'PaymentCaptured', 'capture/x/succeeded', 'payment/x', { amount: 5 })]));
    expect((await relay.runOnce()).delivered).toBe(1);
    expect(receiver.requests).toHaveLength(1);
    const h = receiver.requests[0]!.headers;
    expect(h).toMatchObject({
      'x-transfer-name': 'PaymentCaptured',
      'x-name': 'PaymentCaptured',
      'x-event': 'PaymentCaptured',
      'x-tenant-identifier': 'ht-x',
      'x-store-reference': 'ht-x',
      'x-actor-id': APP,
      'x-publisher': APP,
      'x-message-id': id,
      'x-transaction-id': id,
      'x-correlation-id': 'corr-xyz',
      authorization: 'Bearer static-token',
    });
    expect(h['x-timestamp']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
    expect(h['transfer-name']).toBeUndefined();
    expect(h['tenant-identifier']).toBeUndefined();
    expect(receiver.tokenRequests).toHaveLength(0);
  });

  it('treats non-2xx and timeouts as failures and any 2xx (even without JSON) as success', async () => {
    const tokens = createTokenProvider({ eventPlatformToken: 't', eventPlatformTokenUrl: undefined, eventPlatformClientId: undefined, eventPlatformClientSecret: undefined, eventPlatformAudience: 'a' });
    const transport = new HttpTransport({ senderBaseUrl: `${receiver.url}/ep/`, headerPrefix: '', tokens, timeoutMs: 200 });
    const relay = new OutboxRelay(db, transport, silent, { maxRetryHours: 72, housekeepingIntervalMs: 0 });
    const [id] = await db.tx((tx) => enqueue(tx, APP, [msg('ht-f', 'PaymentCreated', 'payment/f/created', 'payment/f', {})]));
    const state = async () => (await db.query<{ state: string; attempts: number; last_error: string | null; receipt: string | null }>('SELECT state, attempts, last_error, receipt FROM outbox WHERE id = $1', [id])).rows[0]!;
    const due = () => db.query('UPDATE outbox SET next_attempt_at = now() WHERE id = $1', [id]);

    receiver.status = 404;
    await relay.runOnce();
    expect(await state()).toMatchObject({ state: 'pending', attempts: 1, last_error: expect.stringContaining('HTTP 404') });
    expect(receiver.requests[0]!.url).toBe('/ep/payment-events');

    receiver.status = 200;
    receiver.hang = true;
    await due();
    await relay.runOnce();
    expect(await state()).toMatchObject({ state: 'pending', attempts: 2, last_error: expect.stringContaining('no answer within 200 ms') });

    receiver.hang = false;
    receiver.status = 204;
    await due();
    await relay.runOnce();
    expect(await state()).toMatchObject({ state: 'delivered', attempts: 3, receipt: null });
  });

  it('fetches a new OAuth token after a 401 from the Event Platform', async () => {
    const cfg = config();
    const relay = new OutboxRelay(db, createTransport({ config: cfg, db, log: silent }), silent, { maxRetryHours: 72, housekeepingIntervalMs: 0 });
    const [id] = await db.tx((tx) => enqueue(tx, APP, [msg('ht-401', 'PaymentCreated', 'payment/u/created', 'payment/u', {})]));
    receiver.status = 401;
    await relay.runOnce();
    receiver.status = 200;
    await db.query('UPDATE outbox SET next_attempt_at = now() WHERE id = $1', [id]);
    await relay.runOnce();
    expect(receiver.tokenRequests).toHaveLength(2);
    const auth = receiver.requests.map((r) => r.headers.authorization);
    expect(auth[0]).not.toBe(auth[1]);
    expect(auth[1]).toBe(`Bearer tok-${receiver.tokenCounter}`);
  });
});

describe('Event Platform token provider', () => {
  const base = { eventPlatformToken: undefined, eventPlatformTokenUrl: 'http://token.test/oauth/token', eventPlatformClientId: 'id', eventPlatformClientSecret: 'secret', eventPlatformAudience: 'aop-event-platform' };

  it('caches an OAuth token until 60 s before it expires and shares one request between concurrent callers', async () => {
    let now = 1_000_000;
    let calls = 0;
    const fakeFetch = (async () => {
      calls++;
      return new Response(JSON.stringify({ access_token: `t${calls}`, expires_in: 300 }), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const p = createTokenProvider(base, { fetch: fakeFetch, now: () => now });
    expect(await Promise.all([p.getToken(), p.getToken(), p.getToken()])).toEqual(['t1', 't1', 't1']);
    expect(calls).toBe(1);
    now += 239_000; // 61 s before expiry
    expect(await p.getToken()).toBe('t1');
    now += 2_000; // 59 s before expiry
    expect(await p.getToken()).toBe('t2');
    expect(calls).toBe(2);
    p.invalidate();
    expect(await p.getToken()).toBe('t3');
  });

  it('fails clearly on a bad token answer and retries on the next call', async () => {
    let answer: Response = new Response('nope', { status: 401 });
    const p = createTokenProvider(base, { fetch: (async () => answer) as typeof fetch });
    await expect(p.getToken()).rejects.toThrow('HTTP 401');
    answer = new Response(JSON.stringify({ token_type: 'Bearer' }), { status: 200 });
    await expect(p.getToken()).rejects.toThrow('no access_token');
    answer = new Response(JSON.stringify({ access_token: 'ok', expires_in: 3600 }), { status: 200 });
    expect(await p.getToken()).toBe('ok');
  });

  it('uses the static token, or none at all', async () => {
    expect(await createTokenProvider({ ...base, eventPlatformToken: 'static' }).getToken()).toBe('static');
    expect(await createTokenProvider({ ...base, eventPlatformTokenUrl: undefined }).getToken()).toBeUndefined();
  });
});

describe('transport factory', () => {
  it('selects the local transport by default', () => {
    const local = loadConfig({ DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS });
    expect(createTransport({ config: local, db: {} as Db, log: silent }).kind).toBe('local');
  });
});

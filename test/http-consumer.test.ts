/**
 * `http` consumer of payment-commands (messages.md 8 and 9.1) against a fake Event Platform: receive,
 * durable inbox write, acknowledgement only after the commit, undecodable messages stored `dead` and
 * acknowledged, duplicates, back-off on errors.
 */
import http from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpCommandConsumer, receiveBackoffMs } from '../src/messaging/consumers/http.js';
import type { TokenProvider } from '../src/messaging/token.js';
import type { Db } from '../src/store/db.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const silent = pino({ level: 'silent' });

async function waitFor<T>(fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface EpMessage {
  MessageId: string;
  MessageBody: string;
  MessageAttributes: Record<string, string>;
}
interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A fake Event Platform receiver: returns unacknowledged messages (leased until acked or `redeliver()`). */
class FakeEventPlatform {
  available: EpMessage[] = [];
  leased = new Set<string>();
  acked: string[] = [];
  gets: Received[] = [];
  deletes: Received[] = [];
  failGets = 0;
  failDeletes = 0;
  getStatus = 200;
  /** Runs when an acknowledgement arrives, before it is answered. */
  onAck: ((ids: string[]) => Promise<void>) | undefined;
  url = '';
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
        if (r.method === 'GET' && r.url.startsWith('/ep/payment-commands')) {
          this.gets.push(r);
          if (this.failGets > 0) {
            this.failGets--;
            res.writeHead(503).end('busy');
            return;
          }
          if (this.getStatus !== 200) {
            res.writeHead(this.getStatus).end();
            return;
          }
          const limit = Number(new URL(r.url, 'http://x').searchParams.get('limit') ?? 100);
          const out = this.available.filter((m) => !this.leased.has(m.MessageId)).slice(0, limit);
          for (const m of out) this.leased.add(m.MessageId);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
          return;
        }
        if (r.method === 'DELETE' && r.url === '/ep/payment-commands') {
          this.deletes.push(r);
          const ids = (JSON.parse(r.body) as { messageIds: string[] }).messageIds;
          await this.onAck?.(ids);
          if (this.failDeletes > 0) {
            this.failDeletes--;
            res.writeHead(500).end('broken');
            return;
          }
          this.acked.push(...ids);
          this.available = this.available.filter((m) => !ids.includes(m.MessageId));
          res.writeHead(204).end();
          return;
        }
        // the relay's publishes (none expected here) and anything else
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"MessageId":"x"}');
      })();
    });
  });
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  reset(): void {
    this.available = [];
    this.leased.clear();
    this.acked = [];
    this.gets = [];
    this.deletes = [];
    this.failGets = 0;
    this.failDeletes = 0;
    this.getStatus = 200;
    this.onAck = undefined;
  }
  /** Lease expiry: unacknowledged messages become available again. */
  redeliver(): void {
    this.leased.clear();
  }
  push(...m: EpMessage[]): void {
    this.available.push(...m);
  }
}

let seq = 0;
const command = (attrs: Record<string, string>, body: unknown = { orderReference: 'DE--1', orderItemIds: [1], amount: 100, currencyIsoCode: 'EUR' }): EpMessage => ({
  MessageId: `ep-msg-${Date.now().toString(36)}-${++seq}`,
  MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
  MessageAttributes: attrs,
});

describe('http consumer of payment-commands (messages.md 9.1)', () => {
  const ep = new FakeEventPlatform();
  let app: TestApp;
  let db: Db;

  const inbox = (ids: string[]) =>
    db.query<{ transport_message_id: string; transport: string; channel: string; message_name: string | null; tenant_identifier: string | null; state: string; last_error: string | null; payload: unknown; attributes: Record<string, string> }>(
      `SELECT transport_message_id, transport, channel, message_name, tenant_identifier, state, last_error, payload, attributes FROM command_inbox WHERE transport = 'http' AND transport_message_id = ANY($1::text[])`,
      [ids],
    );
  /** Records, at each acknowledgement, which acknowledged ids were not yet committed in the inbox. */
  const checkCommittedAtAck = (): string[] => {
    const missing: string[] = [];
    ep.onAck = async (ids) => {
      const r = await inbox(ids);
      const have = new Set(r.rows.map((x) => x.transport_message_id));
      missing.push(...ids.filter((id) => !have.has(id)));
    };
    return missing;
  };

  beforeAll(async () => {
    await ep.start();
    app = await startTestApp({
      MESSAGE_TRANSPORT: 'http',
      MESSAGE_BROKER_HTTP_SENDER_BASE_URL: `${ep.url}/ep/`,
      MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL: `${ep.url}/ep`, // no trailing slash: one is added
      EVENT_PLATFORM_TOKEN: 'tok-ep',
      MESSAGE_CONSUMER_ID: 'consumer-x',
      MESSAGE_POLL_INTERVAL_MS: '30',
    });
    db = app.deps.db;
  });
  afterAll(async () => {
    await app?.close();
    await ep.stop();
  });
  beforeEach(() => ep.reset());

  it('receives with the token and Consumer-Id, stores each command in the inbox and acknowledges them only after the commit', async () => {
    const missingAtAck = checkCommittedAtAck();
    const msgs = [
      command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-1', timestamp: '2025-03-14T09:26:53.589793' }),
      command({ name: 'CancelPayment', storeReference: 'ep-shop-1' }, { orderReference: 'DE--2', orderItemIds: [2], amount: 0, currencyIsoCode: 'EUR' }),
      command({ event: 'RefundPayment', tenantIdentifier: 'ep-shop-2', storeReference: 'other' }, { orderReference: 'DE--3', orderItems: [{ orderItemId: 3, sku: 'a' }], amount: -50, currencyIsoCode: 'EUR' }),
    ];
    ep.push(...msgs);
    const ids = msgs.map((m) => m.MessageId);
    await waitFor(() => ids.every((id) => ep.acked.includes(id)), 'acknowledgements');
    expect(missingAtAck).toEqual([]);

    const rows = (await inbox(ids)).rows;
    expect(rows).toHaveLength(3);
    const byId = new Map(rows.map((r) => [r.transport_message_id, r]));
    expect(byId.get(ids[0]!)).toMatchObject({ transport: 'http', channel: 'payment-commands', message_name: 'CapturePayment', tenant_identifier: 'ep-shop-1', payload: JSON.parse(msgs[0]!.MessageBody) });
    expect(byId.get(ids[0]!)!.attributes).toMatchObject({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-1', timestamp: '2025-03-14T09:26:53.589793' });
    expect(byId.get(ids[1]!)).toMatchObject({ message_name: 'CancelPayment', tenant_identifier: 'ep-shop-1' });
    expect(byId.get(ids[2]!)).toMatchObject({ message_name: 'RefundPayment', tenant_identifier: 'ep-shop-2' });
    for (const r of rows) expect(r.state).not.toBe('dead');

    const get = ep.gets[0]!;
    expect(get.url).toBe('/ep/payment-commands?limit=100');
    expect(get.headers.authorization).toBe('Bearer tok-ep');
    expect(get.headers['consumer-id']).toBe('consumer-x');
    expect(get.headers['content-type']).toBe('application/json');
    const del = ep.deletes[0]!;
    expect(del.headers.authorization).toBe('Bearer tok-ep');
    expect(del.headers['consumer-id']).toBe('consumer-x');
    expect(del.headers['content-type']).toBe('application/json');
    expect(JSON.parse(del.body)).toEqual({ messageIds: ids });
    expect(ep.deletes).toHaveLength(1); // one acknowledgement for the batch
  });

  it('stores undecodable messages as dead with the reason and acknowledges them', async () => {
    const missingAtAck = checkCommittedAtAck();
    const noType = command({ tenantIdentifier: 'ep-shop-1' });
    const noTenant = command({ transferName: 'CapturePayment' });
    const notJson = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-1' }, '{oops');
    const notObject = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-1' }, '[1,2]');
    const good = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-1' });
    ep.push(noType, noTenant, notJson, notObject, good);
    const ids = [noType, noTenant, notJson, notObject, good].map((m) => m.MessageId);
    await waitFor(() => ids.every((id) => ep.acked.includes(id)), 'acknowledgements');
    expect(missingAtAck).toEqual([]);
    const byId = new Map((await inbox(ids)).rows.map((r) => [r.transport_message_id, r]));
    expect(byId.get(noType.MessageId)).toMatchObject({ state: 'dead', message_name: null, tenant_identifier: 'ep-shop-1' });
    expect(byId.get(noType.MessageId)!.last_error).toMatch(/type/);
    expect(byId.get(noTenant.MessageId)).toMatchObject({ state: 'dead', message_name: 'CapturePayment', tenant_identifier: null });
    expect(byId.get(noTenant.MessageId)!.last_error).toMatch(/tenant/);
    expect(byId.get(notJson.MessageId)).toMatchObject({ state: 'dead', payload: null });
    expect(byId.get(notJson.MessageId)!.last_error).toMatch(/not JSON/);
    expect(byId.get(notObject.MessageId)).toMatchObject({ state: 'dead' });
    expect(byId.get(notObject.MessageId)!.last_error).toMatch(/not a JSON object/);
    expect(byId.get(good.MessageId)!.state).not.toBe('dead');
  });

  it('a failed acknowledgement is retried after a back-off; the re-delivered message is stored once and acknowledged', async () => {
    ep.failDeletes = 1;
    const m = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-3' });
    ep.push(m);
    await waitFor(() => ep.deletes.length === 1, 'first acknowledgement (refused)');
    ep.redeliver(); // the Event Platform's lease runs out
    await waitFor(() => ep.acked.includes(m.MessageId), 'acknowledgement after the re-delivery');
    expect(ep.deletes.length).toBe(2);
    expect(JSON.parse(ep.deletes[1]!.body)).toEqual({ messageIds: [m.MessageId] });
    expect((await inbox([m.MessageId])).rows).toHaveLength(1);
    // the GET after the failed acknowledgement waited for the back-off (1 s)
    const afterFail = ep.gets.find((g) => g.at > ep.deletes[0]!.at)!;
    expect(afterFail.at - ep.deletes[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('/ready reports the Event Platform unreachable while polls fail', async () => {
    ep.getStatus = 500;
    await waitFor(async () => (await app.request('/ready')).status === 503, '/ready 503');
    const r = await app.request('/ready');
    expect(r.body.checks.transport).toMatch(/^http: /);
    ep.getStatus = 200;
    await waitFor(async () => (await app.request('/ready')).status === 200, '/ready 200 again', 20_000);
  }, 30_000);
});

describe('http consumer mechanics', () => {
  const ep = new FakeEventPlatform();
  let db: Db;
  let app: TestApp;
  const tokens = (token = 'tok-m'): TokenProvider & { invalidated: number } => {
    const t = { invalidated: 0, getToken: async () => token, invalidate: () => void t.invalidated++ };
    return t;
  };

  beforeAll(async () => {
    await ep.start();
    // only its database is used; MESSAGE_TRANSPORT=local has no consumer of its own
    app = await startTestApp({}, { startWorkers: false });
    db = app.deps.db;
  });
  afterAll(async () => {
    await app?.close();
    await ep.stop();
  });
  beforeEach(() => ep.reset());

  it('backs off 1 s doubling to 60 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => receiveBackoffMs(n))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });

  it('waits longer after each consecutive error, up to the cap, and polls normally again after a success', async () => {
    ep.failGets = 4;
    const c = new HttpCommandConsumer({ receiverBaseUrl: `${ep.url}/ep/`, consumerId: 'c-1', pollIntervalMs: 3_600_000, tokens: tokens(), db, log: silent, backoffBaseMs: 40, backoffMaxMs: 80 });
    const m = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-4' });
    ep.push(m);
    c.start();
    try {
      // 4 failures, then the message, then (at once, the answer was not empty) an empty answer
      await waitFor(() => ep.gets.length >= 6, 'six polls');
      expect(ep.acked).toEqual([m.MessageId]);
      const gaps = ep.gets.slice(1, 5).map((g, i) => g.at - ep.gets[i]!.at);
      const expected = [40, 80, 80, 80];
      gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(expected[i]! - 2));
    } finally {
      await c.stop();
    }
    // the empty answer is followed by the poll interval (1 h here): no further poll
    expect(ep.gets).toHaveLength(6);
  });

  it('never acknowledges when the inbox write fails; the messages stay with the Event Platform', async () => {
    const failingDb: Db = {
      kind: db.kind,
      description: 'failing',
      stats: db.stats,
      listen: (c, n, l) => db.listen(c, n, l),
      query: (sql, params) => db.query(sql, params),
      tx: async () => {
        throw new Error('database unavailable');
      },
      session: (fn) => db.session(fn),
      close: async () => undefined,
    };
    const c = new HttpCommandConsumer({ receiverBaseUrl: `${ep.url}/ep`, consumerId: 'c-2', pollIntervalMs: 10, tokens: tokens(), db: failingDb, log: silent, backoffBaseMs: 10, backoffMaxMs: 20 });
    const m = command({ transferName: 'CapturePayment', tenantIdentifier: 'ep-shop-5' });
    ep.push(m);
    c.start();
    try {
      await waitFor(() => ep.gets.length >= 3, 'repeated polls');
    } finally {
      await c.stop();
    }
    expect(ep.deletes).toHaveLength(0);
    expect(c.isConnected()).toBe(true); // the Event Platform answered; the failure was ours
    expect((await db.query(`SELECT 1 FROM command_inbox WHERE transport_message_id = $1`, [m.MessageId])).rows).toHaveLength(0);
  });

  it('a 401 makes the token provider forget its token', async () => {
    ep.getStatus = 401;
    const t = tokens();
    const c = new HttpCommandConsumer({ receiverBaseUrl: `${ep.url}/ep/`, consumerId: 'c-3', pollIntervalMs: 10, tokens: t, db, log: silent, backoffBaseMs: 10, backoffMaxMs: 10 });
    c.start();
    try {
      await waitFor(() => t.invalidated >= 1, 'token invalidated');
    } finally {
      await c.stop();
    }
    expect(c.isConnected()).toBe(false);
  });
});

/**
 * The whole-order script of order-lifecycle.test.ts (authorize, two partial captures, a partial refund, a refund of the
 * rest, read back as the exact event sequence) over the `rabbitmq` transport against the real broker (mandatory in CI)
 * and over the `http` transport against a fake Event Platform; plus a CapturePayment delivered twice by RabbitMQ with
 * the same messageId, which captures once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, pay, sandboxPayment } from './helpers/commands.js';
import { runOrderLifecycle, type ReceivedEvent, type ShopSide } from './helpers/order-lifecycle.js';
import { AMQP_TEST_URL, rabbitAvailable } from './helpers/services.js';

const rabbitOk = await rabbitAvailable();
const uid = (): string => `oap-lifecycle-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

async function waitFor<T>(fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Buffers received events per tenant; `take` waits for `count` new ones and returns all new ones so far. */
class EventBuffer {
  private readonly byTenant = new Map<string, ReceivedEvent[]>();
  add(tenant: string, e: ReceivedEvent): void {
    const list = this.byTenant.get(tenant) ?? [];
    list.push(e);
    this.byTenant.set(tenant, list);
  }
  async take(tenant: string, count: number, timeoutMs = 30_000): Promise<ReceivedEvent[]> {
    const end = Date.now() + timeoutMs;
    while ((this.byTenant.get(tenant)?.length ?? 0) < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const out = this.byTenant.get(tenant) ?? [];
    this.byTenant.set(tenant, []);
    return out;
  }
}

describe.skipIf(!rabbitOk)('order lifecycle over the rabbitmq transport (messages.md 9.3)', () => {
  const APP_ID = uid();
  const EXCHANGE = `${APP_ID}.exchange`;
  const COMMANDS = `${APP_ID}.payment-commands`;
  const SHOP_QUEUE = `${APP_ID}.shop-events`;
  const events = new EventBuffer();
  const seenMessageIds: string[] = [];
  let app: TestApp;
  let conn: ChannelModel;
  let ch: Channel;

  const shop: ShopSide = {
    publishCommand: async (tenant, name, payload) => publishCommand(tenant, name, payload, randomUUID()),
    receiveEvents: (tenant, count, timeoutMs) => events.take(tenant, count, timeoutMs),
  };
  async function publishCommand(tenant: string, name: string, payload: Record<string, unknown>, messageId: string): Promise<void> {
    ch.publish(EXCHANGE, 'payment-commands', Buffer.from(JSON.stringify(payload)), {
      messageId,
      headers: { transferName: name, tenantIdentifier: tenant },
      contentType: 'application/json',
      persistent: true,
    });
  }

  beforeAll(async () => {
    conn = await amqp.connect(AMQP_TEST_URL);
    ch = await conn.createChannel();
    // the shop's own queue exists before the app publishes anything (the exchange as the app declares it)
    await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
    await ch.assertQueue(SHOP_QUEUE, { durable: false, autoDelete: false });
    await ch.bindQueue(SHOP_QUEUE, EXCHANGE, 'payment-events');
    await ch.consume(SHOP_QUEUE, (m: ConsumeMessage | null) => {
      if (!m) return;
      const tenant = String(m.properties.headers?.tenantIdentifier ?? '');
      seenMessageIds.push(m.properties.messageId);
      events.add(tenant, { name: String(m.properties.headers?.transferName ?? m.properties.type), payload: JSON.parse(m.content.toString('utf8')), messageId: m.properties.messageId });
      ch.ack(m);
    });
    app = await startTestApp({ MESSAGE_TRANSPORT: 'rabbitmq', AMQP_URL: AMQP_TEST_URL, AMQP_EXCHANGE: EXCHANGE, APP_IDENTIFIER: APP_ID, SANDBOX_REFUND_SETTLE_MS: '50' });
    await waitFor(async () => (await app.request('/ready')).status === 200, 'the app connected to RabbitMQ');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    if (ch) {
      for (const q of [COMMANDS, `${COMMANDS}.retry`, `${COMMANDS}.dlq`, SHOP_QUEUE]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(EXCHANGE).catch(() => undefined);
    }
    await conn?.close().catch(() => undefined);
  });

  it('authorize, two partial captures, a partial refund, a refund of the rest: the exact event sequence', async () => {
    await runOrderLifecycle(app, 'amqp-lifecycle-tenant', shop);
    // every message on the queue carried a messageId property, and none was delivered twice
    expect(seenMessageIds.length).toBeGreaterThanOrEqual(11);
    expect(seenMessageIds.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(seenMessageIds).size).toBe(seenMessageIds.length);
  });

  it('a CapturePayment delivered twice with the same messageId captures once', async () => {
    const T = 'amqp-dup-tenant';
    await configureTenant(app, T);
    const o = await initializeOrder(app, T, { 201: 3000, 202: 7000 });
    await pay(app, o.transactionId);
    expect((await events.take(T, 3)).map((m) => m.name)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);

    const messageId = randomUUID();
    const capture = { orderReference: o.orderReference, orderItemIds: [201], amount: 3000, currencyIsoCode: 'EUR' };
    await publishCommand(T, 'CapturePayment', capture, messageId);
    await publishCommand(T, 'CapturePayment', capture, messageId);
    const got = await events.take(T, 2);
    expect(got.map((m) => m.name)).toEqual(['PaymentUpdated', 'PaymentCaptured']);
    expect(got[1]!.payload).toEqual(capture);

    // stop the consumer (in-flight deliveries finish and are acked): both deliveries have then been handled
    const consumer = app.workers.find((w) => w.name === 'rabbitmq-command-consumer')!;
    await consumer.stop();
    try {
      expect((await ch.checkQueue(COMMANDS)).messageCount).toBe(0);
    } finally {
      consumer.start();
    }
    const inbox = await waitFor(async () => {
      const r = await app.deps.db.query<{ state: string }>(`SELECT state FROM command_inbox WHERE transport = 'rabbitmq' AND transport_message_id = $1`, [messageId]);
      return r.rows.every((x) => x.state !== 'received' && x.state !== 'retrying') ? r.rows : undefined;
    }, 'the inbox row handled');
    expect(inbox).toEqual([{ state: 'processed' }]);
    // one command stored for the order: the second delivery was recognised by its messageId
    const forOrder = await app.deps.db.query<{ transport_message_id: string }>(
      `SELECT transport_message_id FROM command_inbox WHERE transport = 'rabbitmq' AND message_name = 'CapturePayment' AND payload->>'orderReference' = $1`,
      [o.orderReference],
    );
    expect(forOrder.rows).toEqual([{ transport_message_id: messageId }]);
    await waitFor(async () => {
      const r = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state <> 'delivered' AND channel = 'payment-events' AND tenant_identifier = $1`, [T]);
      return r.rows[0]!.n === 0;
    }, 'the outbox delivered');
    expect(await events.take(T, 1, 300)).toEqual([]);
    expect(await sandboxPayment(app, o.transactionId)).toMatchObject({ amountCaptured: 3000 });
    const p = (await app.deps.db.query<any>('SELECT status, captured_amount FROM payments WHERE order_reference = $1', [o.orderReference])).rows[0];
    expect(p).toEqual({ status: 'partially_captured', captured_amount: 3000 });
  });
});

interface EpMessage {
  MessageId: string;
  MessageBody: string;
  MessageAttributes: Record<string, string>;
}
interface Posted {
  channel: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A fake Event Platform: sender (POST /ep/<channel>, recorded) and receiver of payment-commands (GET leases, DELETE acks). */
class FakeEventPlatform {
  posted: Posted[] = [];
  commands: EpMessage[] = [];
  leased = new Set<string>();
  acked: string[] = [];
  url = '';
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.headers.authorization !== 'Bearer tok-lifecycle') {
        res.writeHead(401).end();
        return;
      }
      if (req.method === 'GET' && path === '/ep/payment-commands') {
        const out = this.commands.filter((m) => !this.leased.has(m.MessageId) && !this.acked.includes(m.MessageId));
        for (const m of out) this.leased.add(m.MessageId);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        return;
      }
      if (req.method === 'DELETE' && path === '/ep/payment-commands') {
        this.acked.push(...(JSON.parse(body) as { messageIds: string[] }).messageIds);
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && path.startsWith('/ep/')) {
        this.posted.push({ channel: decodeURIComponent(path.slice(4)), headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ MessageId: `ep-${this.posted.length}` }));
        return;
      }
      res.writeHead(404).end();
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
}

describe('order lifecycle over the http transport (messages.md 9.1)', () => {
  const ep = new FakeEventPlatform();
  let app: TestApp;
  const cursor = new Map<string, number>();

  const shop: ShopSide = {
    publishCommand: async (tenant, name, payload) => {
      ep.commands.push({ MessageId: randomUUID(), MessageBody: JSON.stringify(payload), MessageAttributes: { transferName: name, tenantIdentifier: tenant } });
    },
    receiveEvents: async (tenant, count, timeoutMs = 30_000) => {
      const mine = (): Posted[] => ep.posted.filter((p) => p.channel === 'payment-events' && p.headers['tenant-identifier'] === tenant);
      const from = cursor.get(tenant) ?? 0;
      const end = Date.now() + timeoutMs;
      while (mine().length - from < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      const out = mine().slice(from);
      cursor.set(tenant, from + out.length);
      return out.map((p) => ({ name: String(p.headers['transfer-name']), payload: JSON.parse(p.body), messageId: String(p.headers['message-id'] ?? '') }));
    },
  };

  beforeAll(async () => {
    await ep.start();
    app = await startTestApp({
      MESSAGE_TRANSPORT: 'http',
      MESSAGE_BROKER_HTTP_SENDER_BASE_URL: `${ep.url}/ep/`,
      MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL: `${ep.url}/ep/`,
      EVENT_PLATFORM_TOKEN: 'tok-lifecycle',
      MESSAGE_POLL_INTERVAL_MS: '20',
      SANDBOX_REFUND_SETTLE_MS: '50',
    });
  });
  afterAll(async () => {
    await app?.close();
    await ep.stop();
  });

  it('authorize, two partial captures, a partial refund, a refund of the rest: the exact event sequence', async () => {
    await runOrderLifecycle(app, 'http-lifecycle-tenant', shop);
    // every command was acknowledged once; every event POST carried a Message-Id, none twice
    expect([...ep.acked].sort()).toEqual(ep.commands.map((c) => c.MessageId).sort());
    const ids = ep.posted.filter((p) => p.channel === 'payment-events').map((p) => p.headers['message-id']);
    expect(ids).toHaveLength(11);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

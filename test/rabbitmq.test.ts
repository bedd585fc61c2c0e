/**
 * `rabbitmq` transport (messages.md 9.3) against the real broker: topology, publishing with the exact
 * properties and publisher confirms, unroutable messages retried, the payment-commands consumer
 * (inbox, de-duplication, DLQ, retry queue), and a broker outage simulated with a TCP proxy between
 * the app and RabbitMQ (the shared broker is never stopped).
 */
import { randomBytes } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import pino from 'pino';
import { v5 as uuidv5 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitMqCommandConsumer } from '../src/messaging/consumers/rabbitmq.js';
import { storeCommand } from '../src/messaging/command-inbox.js';
import { enqueue, type OutboxRow, type OutgoingMessage } from '../src/messaging/outbox.js';
import { ATTRIBUTE_NAMES } from '../src/messaging/transports/attributes.js';
import { OutboxRelay, type RelayOptions } from '../src/messaging/relay.js';
import { RabbitMqTransport, reconnectDelayMs } from '../src/messaging/transports/rabbitmq.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { AMQP_TEST_URL, createTempDatabase, postgresAvailable, rabbitAvailable } from './helpers/services.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const silent = pino({ level: 'silent' });
const rabbitOk = await rabbitAvailable();
const pgOk = rabbitOk && (await postgresAvailable());
const uid = (): string => `oap-test-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

async function waitFor<T>(fn: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const amqpTarget = (): { host: string; port: number } => {
  const u = new URL(AMQP_TEST_URL);
  return { host: u.hostname, port: Number(u.port || 5672) };
};
const viaProxy = (port: number): string => {
  const u = new URL(AMQP_TEST_URL);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
};

/** Drains a queue with basic.get (auto-ack). */
async function drain(ch: Channel, queue: string): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) return out;
    out.push(m);
  }
}

const event = (tenant: string, name: string, eventKey: string, orderingKey: string, payload: Record<string, unknown>, channel: OutgoingMessage['channel'] = 'payment-events'): OutgoingMessage => ({
  tenantIdentifier: tenant,
  channel,
  name,
  eventKey,
  orderingKey,
  payload,
  correlationId: 'corr-amqp-1',
});

describe('RabbitMQ reconnect backoff (issue 10 item 8)', () => {
  it('starts at 250 ms and doubles up to 5 s, so a broker that is back is used within seconds', () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((a) => reconnectDelayMs(a, undefined, undefined, mid))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    // jitter never exceeds the cap
    expect(reconnectDelayMs(30, undefined, undefined, () => 1)).toBe(5000);
    expect(reconnectDelayMs(1, undefined, undefined, () => 0)).toBe(200);
  });
});

describe.skipIf(!rabbitOk)('rabbitmq transport and payment-commands consumer (messages.md 9.3)', () => {
  const APP_ID = uid();
  const EXCHANGE = `${APP_ID}.exchange`;
  const MAIN = `${APP_ID}.payment-commands`;
  const RETRY = `${MAIN}.retry`;
  const DLQ = `${MAIN}.dlq`;
  const EVENTS_QUEUE = `${APP_ID}.test-events`;
  const LATE_QUEUE = `${APP_ID}.test-late`;
  const proxy = new TcpProxy(amqpTarget());
  let app: TestApp;
  let admin: ChannelModel;
  let ch: Channel;

  const inboxRows = (transportMessageId: string) =>
    app.deps.db.query<{ id: string; transport: string; channel: string; message_name: string; tenant_identifier: string; payload: unknown; attributes: Record<string, string> }>(
      `SELECT id, transport, channel, message_name, tenant_identifier, payload, attributes FROM command_inbox WHERE transport = 'rabbitmq' AND transport_message_id = $1`,
      [transportMessageId],
    );
  const ready = async (): Promise<number> => (await app.request('/ready')).status;
  const consumerWorker = () => app.workers.find((w) => w.name === 'rabbitmq-command-consumer')!;

  beforeAll(async () => {
    await proxy.start();
    admin = await amqp.connect(AMQP_TEST_URL);
    ch = await admin.createChannel();
    app = await startTestApp({ MESSAGE_TRANSPORT: 'rabbitmq', AMQP_URL: viaProxy(proxy.port), AMQP_EXCHANGE: EXCHANGE, APP_IDENTIFIER: APP_ID });
    await waitFor(async () => (await ready()) === 200, 'the app connected to RabbitMQ');
    // a shop-side queue for the app's outgoing events
    await ch.assertQueue(EVENTS_QUEUE, { durable: false, autoDelete: false });
    await ch.bindQueue(EVENTS_QUEUE, EXCHANGE, 'payment-events');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy.cut();
    if (ch) {
      for (const q of [MAIN, RETRY, DLQ, EVENTS_QUEUE, LATE_QUEUE]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(EXCHANGE).catch(() => undefined);
    }
    await admin?.close().catch(() => undefined);
  });

  it('declares the topology at start-up: durable topic exchange, the command queue bound to payment-commands, .retry dead-lettering back, .dlq', async () => {
    // checkExchange / checkQueue fail (and close the channel) when an object is missing
    const probe = await admin.createChannel();
    await probe.checkExchange(EXCHANGE);
    for (const q of [MAIN, RETRY, DLQ]) await probe.checkQueue(q);
    // re-declaring with the specified properties succeeds only if they match (else PRECONDITION_FAILED)
    await probe.assertExchange(EXCHANGE, 'topic', { durable: true });
    await probe.assertQueue(MAIN, { durable: true });
    await probe.assertQueue(RETRY, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': MAIN } });
    await probe.assertQueue(DLQ, { durable: true });
    await probe.close();
    // the binding: a message for routing key payment-commands is routable
    const r = await app.request('/ready');
    expect(r.body.checks.transport).toBe('ok');
  });

  it('publishes outgoing messages to the exchange with routing key = channel, the payload as body and the exact properties and headers', async () => {
    const tenant = 'amqp-t1';
    const payload = { orderReference: 'DE--1', orderItemIds: [17, 18], amount: 10000, currencyIsoCode: 'EUR' };
    const ids = await app.deps.db.tx((tx) =>
      enqueue(tx, APP_ID, [
        event(tenant, 'PaymentAuthorized', 'payment/p1/status/2', 'payment/p1', payload),
        event(tenant, 'PaymentCreated', 'payment/p2/created', 'payment/p2', { paymentReference: 'sbx_2', details: '{}', entityReference: null }),
      ]),
    );
    // deterministic ids (messages.md 2.4)
    expect(ids[0]).toBe(uuidv5(`urn:open-acp-pay:${APP_ID}:${tenant}:PaymentAuthorized:payment/p1/status/2`, '6ba7b811-9dad-11d1-80b4-00c04fd430c8'));
    const got: GetMessage[] = [];
    await waitFor(async () => {
      got.push(...(await drain(ch, EVENTS_QUEUE)));
      return got.length >= 2;
    }, 'two messages on the bound queue');
    expect(got.map((m) => m.properties.messageId).sort()).toEqual([...ids].sort());

    const rows = await app.deps.db.query<{ id: string; state: string; message_timestamp: string; attributes: Record<string, string>; payload: unknown }>(
      `SELECT id, state, message_timestamp, attributes, payload FROM outbox WHERE id = ANY($1::text[])`,
      [ids],
    );
    await waitFor(async () => {
      const r = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
      return r.rows[0]!.n === 2;
    }, 'rows delivered');
    for (const m of got) {
      const row = rows.rows.find((r) => r.id === m.properties.messageId)!;
      expect(m.fields.exchange).toBe(EXCHANGE);
      expect(m.fields.routingKey).toBe('payment-events');
      expect(JSON.parse(m.content.toString('utf8'))).toEqual(row.payload);
      expect(m.properties).toMatchObject({
        messageId: row.id,
        deliveryMode: 2,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        timestamp: Math.floor(Date.parse(`${row.message_timestamp}Z`) / 1000),
        type: row.attributes.transferName,
        appId: APP_ID,
        correlationId: 'corr-amqp-1',
      });
      const expectedHeaders = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, row.attributes[a]]));
      expect(m.properties.headers).toEqual(expectedHeaders);
      expect(Object.keys(m.properties.headers!).sort()).toEqual([...ATTRIBUTE_NAMES].sort());
      expect(m.properties.headers).toMatchObject({ transactionId: row.id, messageId: row.id, actorId: APP_ID, publisher: APP_ID, tenantIdentifier: tenant, storeReference: tenant });
    }
    // null fields are not sent (messages.md 2.1)
    const created = got.find((m) => m.properties.type === 'PaymentCreated')!;
    expect(JSON.parse(created.content.toString('utf8'))).toEqual({ paymentReference: 'sbx_2', details: '{}' });
  });

  it('an unroutable message (no queue bound yet) stays pending and is retried until a queue is bound; it then arrives once', async () => {
    const [id] = await app.deps.db.tx((tx) =>
      enqueue(tx, APP_ID, [event('amqp-t2', 'MerchantAppOnboardingStatusChanged', 'merchant/m1/seq/1', 'merchant/m1', { merchantReference: 'm1', appIdentifier: APP_ID, type: 'payment', status: 'pending' }, 'merchant-app-events')]),
    );
    const failed = await waitFor(async () => {
      const r = await app.deps.db.query<{ state: string; attempts: number; last_error: string | null }>('SELECT state, attempts, last_error FROM outbox WHERE id = $1', [id]);
      const row = r.rows[0]!;
      return row.attempts >= 2 ? row : undefined;
    }, 'two failed attempts');
    expect(failed.state).toBe('pending');
    expect(failed.last_error).toMatch(/unroutable/);

    await ch.assertQueue(LATE_QUEUE, { durable: false });
    await ch.bindQueue(LATE_QUEUE, EXCHANGE, 'merchant-app-events');
    await waitFor(async () => {
      const r = await app.deps.db.query<{ state: string }>('SELECT state FROM outbox WHERE id = $1', [id]);
      return r.rows[0]!.state === 'delivered';
    }, 'delivery after binding');
    const got = await drain(ch, LATE_QUEUE);
    expect(got.map((m) => m.properties.messageId)).toEqual([id]);
    expect(JSON.parse(got[0]!.content.toString('utf8'))).toMatchObject({ merchantReference: 'm1', status: 'pending' });
  });

  it('commands published to the exchange with routing key payment-commands land in command_inbox once, even when published twice with the same messageId', async () => {
    const body = { orderReference: 'DE--77', orderItemIds: [1, 2], amount: 500, currencyIsoCode: 'EUR' };
    const headers = { transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-1', timestamp: '2025-03-14T09:26:53.589793' };
    const publish = (messageId: string | undefined, h: Record<string, string> = headers, content: string = JSON.stringify(body)): void => {
      ch.publish(EXCHANGE, 'payment-commands', Buffer.from(content), { ...(messageId ? { messageId } : {}), headers: h, contentType: 'application/json', persistent: true });
    };
    const mid = `cmd-${randomBytes(4).toString('hex')}`;
    publish(mid);
    publish(mid);
    // without messageId: the transport id is the SHA-256 of routing key, type, tenant and body; the same message twice is one row
    const anon = { orderReference: 'DE--78', orderItemIds: [3], currencyIsoCode: 'EUR' };
    publish(undefined, { name: 'CancelPayment', storeReference: 'amqp-shop-1' }, JSON.stringify(anon));
    publish(undefined, { name: 'CancelPayment', storeReference: 'amqp-shop-1' }, JSON.stringify(anon));
    // property `type` is the type when no header names one
    const typed = `cmd-typed-${randomBytes(4).toString('hex')}`;
    ch.publish(EXCHANGE, 'payment-commands', Buffer.from(JSON.stringify({ orderReference: 'DE--79', orderItems: [{ orderItemId: 4, sku: 's' }], amount: -100, currencyIsoCode: 'EUR' })), {
      messageId: typed,
      type: 'RefundPayment',
      headers: { tenantIdentifier: 'amqp-shop-1' },
    });

    const row = await waitFor(async () => (await inboxRows(mid)).rows[0], 'inbox row');
    expect(row).toMatchObject({ transport: 'rabbitmq', channel: 'payment-commands', message_name: 'CapturePayment', tenant_identifier: 'amqp-shop-1', payload: body });
    expect(row.attributes).toMatchObject({ transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-1', messageId: mid });
    const typedRow = await waitFor(async () => (await inboxRows(typed)).rows[0], 'typed inbox row');
    expect(typedRow.message_name).toBe('RefundPayment');

    // stop the consumer (in-flight deliveries finish and are acked) so that every published message has been handled
    const consumer = consumerWorker();
    await consumer.stop();
    try {
      expect((await ch.checkQueue(MAIN)).messageCount).toBe(0);
      expect((await inboxRows(mid)).rows).toHaveLength(1);
      const anonRows = await app.deps.db.query<{ n: number; transport_message_id: string }>(
        `SELECT count(*)::int AS n, min(transport_message_id) AS transport_message_id FROM command_inbox WHERE transport = 'rabbitmq' AND payload->>'orderReference' = 'DE--78'`,
      );
      expect(anonRows.rows[0]!.n).toBe(1);
      expect(anonRows.rows[0]!.transport_message_id).toMatch(/^[0-9a-f]{64}$/);
      expect(await drain(ch, DLQ)).toHaveLength(0);
    } finally {
      consumer.start();
    }
    await waitFor(async () => (await ready()) === 200, 'consumer reconnected');
  });

  it('undecodable commands (no type, no tenant, body not a JSON object) go to the .dlq with x-last-error and are not stored', async () => {
    const tag = randomBytes(4).toString('hex');
    const cases: Array<{ id: string; headers: Record<string, string>; body: string; error: RegExp }> = [
      { id: `bad-type-${tag}`, headers: { tenantIdentifier: 'amqp-shop-1' }, body: '{"orderReference":"X"}', error: /type/ },
      { id: `bad-tenant-${tag}`, headers: { transferName: 'CapturePayment' }, body: '{"orderReference":"X"}', error: /tenant/ },
      { id: `bad-body-${tag}`, headers: { transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-1' }, body: '[1,2]', error: /JSON object/ },
      { id: `bad-json-${tag}`, headers: { transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-1' }, body: 'not json', error: /not JSON/ },
    ];
    for (const c of cases) ch.publish(EXCHANGE, 'payment-commands', Buffer.from(c.body), { messageId: c.id, headers: c.headers });
    const got: GetMessage[] = [];
    await waitFor(async () => {
      got.push(...(await drain(ch, DLQ)));
      return got.length >= cases.length;
    }, 'dead-lettered copies');
    expect(got).toHaveLength(cases.length);
    for (const c of cases) {
      const m = got.find((g) => g.properties.messageId === c.id)!;
      expect(m, c.id).toBeDefined();
      expect(m.content.toString('utf8')).toBe(c.body);
      expect(String(m.properties.headers!['x-last-error'])).toMatch(c.error);
      expect(m.properties.headers).toMatchObject(c.headers);
      expect((await inboxRows(c.id)).rows).toHaveLength(0);
    }
    expect((await ch.checkQueue(MAIN)).messageCount).toBe(0);
  });

  it('survives a broker outage: events produced while the connection is cut all arrive after it is restored, none twice; /ready reports it', async () => {
    const tenant = 'amqp-outage';
    const produce = (from: number, to: number) =>
      app.deps.db.tx((tx) =>
        enqueue(
          tx,
          APP_ID,
          Array.from({ length: to - from }, (_, k) => {
            const i = from + k;
            return event(tenant, 'PaymentCreated', `payment/o${i}/created`, `payment/o${i % 4}`, { paymentReference: `sbx_o${i}`, details: '{}' });
          }),
        ),
      );
    const allIds: string[] = [];
    const received: GetMessage[] = [];
    const pendingCount = async (ids: string[]) =>
      (await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state <> 'delivered'`, [ids])).rows[0]!.n;

    allIds.push(...(await produce(0, 5)));
    await waitFor(async () => (await pendingCount(allIds)) === 0, 'first events delivered');
    expect(proxy.connections).toBeGreaterThanOrEqual(2); // publisher and consumer go through the proxy

    await proxy.cut();
    await waitFor(async () => (await ready()) === 503, '/ready reporting the lost connection');
    const down = await app.request('/ready');
    expect(down.body.checks.transport).toMatch(/rabbitmq: .*not connected/);
    for (let i = 5; i < 25; i += 5) allIds.push(...(await produce(i, i + 5)));
    // while the broker is unreachable publishing fails and the rows stay pending
    await waitFor(async () => {
      const r = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'pending' AND attempts > 0`, [allIds]);
      return r.rows[0]!.n > 0;
    }, 'failed attempts during the outage');
    expect(await pendingCount(allIds)).toBe(20);

    await proxy.start();
    allIds.push(...(await produce(25, 30)));
    await waitFor(async () => (await ready()) === 200, '/ready after reconnecting', 60_000);
    await waitFor(async () => (await pendingCount(allIds)) === 0, 'every event delivered', 90_000);
    await waitFor(async () => {
      received.push(...(await drain(ch, EVENTS_QUEUE)));
      return received.length >= allIds.length;
    }, 'every event on the queue');
    const receivedIds = received.map((m) => m.properties.messageId as string);
    expect(new Set(receivedIds)).toEqual(new Set(allIds));
    expect(receivedIds).toHaveLength(allIds.length); // none twice
    // per ordering key, in creation order
    for (let k = 0; k < 4; k++) {
      const refs = received.map((m) => JSON.parse(m.content.toString('utf8')).paymentReference as string).filter((r) => Number(r.slice(5)) % 4 === k);
      expect(refs).toEqual([...refs].sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))));
    }

    // the consumer reconnected too
    const mid = `after-outage-${randomBytes(4).toString('hex')}`;
    ch.publish(EXCHANGE, 'payment-commands', Buffer.from('{"orderReference":"DE--90","orderItemIds":[1],"currencyIsoCode":"EUR"}'), {
      messageId: mid,
      headers: { transferName: 'CancelPayment', tenantIdentifier: 'amqp-shop-1' },
    });
    await waitFor(async () => (await inboxRows(mid)).rows[0], 'command stored after the outage');
  }, 180_000);
});

describe.skipIf(!rabbitOk)('rabbitmq consumer: inbox write failures (messages.md 9.3 step 3)', () => {
  const APP_ID = uid();
  const EXCHANGE = `${APP_ID}.exchange`;
  const MAIN = `${APP_ID}.payment-commands`;
  let db: Db;
  let admin: ChannelModel;
  let ch: Channel;
  const consumers: RabbitMqCommandConsumer[] = [];

  beforeAll(async () => {
    db = await openDb({ kind: 'pglite-memory' });
    await migrate(db);
    admin = await amqp.connect(AMQP_TEST_URL);
    ch = await admin.createChannel();
  });
  afterAll(async () => {
    for (const c of consumers) await c.stop();
    for (const q of [MAIN, `${MAIN}.retry`, `${MAIN}.dlq`]) await ch?.deleteQueue(q).catch(() => undefined);
    await ch?.deleteExchange(EXCHANGE).catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await db?.close();
  });

  const start = async (opts: Partial<ConstructorParameters<typeof RabbitMqCommandConsumer>[0]>): Promise<RabbitMqCommandConsumer> => {
    const c = new RabbitMqCommandConsumer({ url: AMQP_TEST_URL, exchange: EXCHANGE, appIdentifier: APP_ID, db, log: silent, ...opts });
    consumers.push(c);
    c.start();
    await c.waitUntilConnected();
    return c;
  };
  const stop = async (c: RabbitMqCommandConsumer): Promise<void> => {
    await c.stop();
    consumers.splice(consumers.indexOf(c), 1);
  };
  const publish = (messageId: string): void => {
    ch.publish(EXCHANGE, 'payment-commands', Buffer.from('{"orderReference":"DE--5","orderItemIds":[1],"amount":100,"currencyIsoCode":"EUR"}'), {
      messageId,
      headers: { transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-2' },
    });
  };

  it('a failed inbox write goes to .retry with x-retry-count 1 and the first delay as expiration (1 s by default)', async () => {
    // the default delays with a consumer that never stores; it is stopped before the copy expires back
    const c = await start({
      store: async () => {
        throw new Error('database unavailable');
      },
    });
    const mid = `retry-first-${randomBytes(4).toString('hex')}`;
    publish(mid);
    const copy = await waitFor(async () => ch.get(`${MAIN}.retry`, { noAck: true }), 'retry copy', 10_000);
    await stop(c);
    expect(copy.properties.messageId).toBe(mid);
    expect(copy.properties.expiration).toBe('1000');
    expect(copy.properties.headers).toMatchObject({ 'x-retry-count': 1, transferName: 'CapturePayment', tenantIdentifier: 'amqp-shop-2', 'x-original-routing-key': 'payment-commands' });
    expect(String(copy.properties.headers!['x-last-error'])).toContain('database unavailable');
    await drain(ch, MAIN);
  });

  it('the retry copy comes back to the main queue when it expires and is then stored once', async () => {
    let failuresLeft = 2;
    const seen: number[] = [];
    const c = await start({
      retryDelaysMs: [30, 60, 90, 120, 150],
      store: async (tx, input) => {
        seen.push(Number(input.attributes.messageId ? 1 : 0));
        if (failuresLeft-- > 0) throw new Error('transient conflict');
        return storeCommand(tx, input);
      },
    });
    const mid = `retry-ok-${randomBytes(4).toString('hex')}`;
    publish(mid);
    await waitFor(async () => {
      const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM command_inbox WHERE transport = 'rabbitmq' AND transport_message_id = $1`, [mid]);
      return r.rows[0]!.n === 1;
    }, 'stored after two retries');
    expect(seen).toHaveLength(3);
    await stop(c);
    expect(await drain(ch, `${MAIN}.dlq`)).toHaveLength(0);
  });

  it('after the 5th failed retry the message goes to .dlq with x-retry-count 5 and x-last-error', async () => {
    let calls = 0;
    const c = await start({
      retryDelaysMs: [20, 20, 20, 20, 20],
      store: async () => {
        calls++;
        throw new Error(`inbox write failed #${calls}`);
      },
    });
    const mid = `retry-dead-${randomBytes(4).toString('hex')}`;
    publish(mid);
    const dead = await waitFor(async () => ch.get(`${MAIN}.dlq`, { noAck: true }), 'dead-lettered message', 20_000);
    await stop(c);
    expect(calls).toBe(6); // the first delivery and 5 retries
    expect(dead.properties.messageId).toBe(mid);
    expect(dead.properties.headers).toMatchObject({ 'x-retry-count': 5, 'x-last-error': 'inbox write failed #6', transferName: 'CapturePayment' });
    expect(JSON.parse(dead.content.toString('utf8'))).toMatchObject({ orderReference: 'DE--5' });
    expect((await ch.checkQueue(`${MAIN}.retry`)).messageCount).toBe(0);
    expect((await ch.checkQueue(MAIN)).messageCount).toBe(0);
  });
});

/**
 * A whole batch on one confirm channel (issue 12: one callback per row, no promise or timer per row): each row's outcome
 * is its own, a batch whose confirms do not come fails after `confirmTimeoutMs` without breaking the channel, and the
 * same message id twice in one batch is two publishes, each confirmed.
 */
describe.skipIf(!rabbitOk)('rabbitmq transport: a batch and its publisher confirms', () => {
  const APP_ID = uid();
  const EXCHANGE = `${APP_ID}.exchange`;
  const QUEUE = `${APP_ID}.events`;
  const proxy = new TcpProxy(amqpTarget());
  let admin: ChannelModel;
  let ch: Channel;
  let transport: RabbitMqTransport;
  let seq = 0;
  const row = (id: string): OutboxRow => ({
    id,
    seq: ++seq,
    tenant_identifier: 'batch-t',
    channel: 'payment-events',
    message_name: 'PaymentUpdated',
    ordering_key: `payment/${id}`,
    attributes: { transferName: 'PaymentUpdated', tenantIdentifier: 'batch-t', timestamp: '2026-12-05 00:00:00.000000' } as unknown as OutboxRow['attributes'],
    payload: { paymentReference: id, details: '{}' },
    message_timestamp: '2026-12-05 00:00:00.000000',
    attempts: 0,
  });

  beforeAll(async () => {
    await proxy.start();
    admin = await amqp.connect(AMQP_TEST_URL);
    ch = await admin.createChannel();
    transport = new RabbitMqTransport({ url: viaProxy(proxy.port), exchange: EXCHANGE, appIdentifier: APP_ID, log: silent, confirmTimeoutMs: 400 });
    transport.start();
    await transport.waitUntilConnected();
    await ch.assertQueue(QUEUE, { durable: false });
    await ch.bindQueue(QUEUE, EXCHANGE, 'payment-events');
  }, 60_000);

  afterAll(async () => {
    await transport?.close();
    await proxy.cut();
    if (ch) {
      for (const q of [QUEUE, `${APP_ID}.payment-commands`, `${APP_ID}.payment-commands.retry`, `${APP_ID}.payment-commands.dlq`]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(EXCHANGE).catch(() => undefined);
    }
    await admin?.close().catch(() => undefined);
  });

  it('without confirms every row of the batch fails after confirmTimeoutMs; confirms flowing again, the next batch is delivered on the same channel', async () => {
    proxy.holdReplies();
    const held = await transport.publishBatch([row('held-1'), row('held-2'), row('held-3')]);
    expect(held).toHaveLength(3);
    for (const o of held) {
      expect(o.ok).toBe(false);
      expect(o.ok ? '' : (o.error as Error).message).toBe('rabbitmq: no publisher confirm within 400 ms');
    }
    proxy.releaseReplies();
    // the late confirms of the held rows settle nothing twice; the channel still works
    expect(await transport.publishBatch([row('after-1'), row('after-2')])).toEqual([{ ok: true }, { ok: true }]);
    expect(transport.isConnected()).toBe(true);
    // the broker had the held rows (at least once: the relay retries them, consumers de-duplicate by messageId)
    const got: string[] = [];
    await waitFor(async () => {
      got.push(...(await drain(ch, QUEUE)).map((m) => m.properties.messageId as string));
      return got.length >= 5;
    }, 'five messages on the queue');
    expect(got).toEqual(['held-1', 'held-2', 'held-3', 'after-1', 'after-2']);
  });

  it('the same message id twice in one batch is published twice, each confirmed on its own', async () => {
    const outcomes = await transport.publishBatch([row('twice'), row('once'), row('twice')]);
    expect(outcomes).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    const got: string[] = [];
    await waitFor(async () => {
      got.push(...(await drain(ch, QUEUE)).map((m) => m.properties.messageId as string));
      return got.length >= 3;
    }, 'three messages on the queue');
    expect(got).toEqual(['twice', 'once', 'twice']);
  });
});

const ev = (key: string, i: number, channel: OutgoingMessage['channel'] = 'payment-events'): OutgoingMessage => ({
  tenantIdentifier: 'rr-t',
  channel,
  name: 'PaymentUpdated',
  eventKey: `payment/${key}/version/${i}`,
  orderingKey: `payment/${key}`,
  payload: { paymentReference: key, details: JSON.stringify({ i }) },
});

/**
 * The relay's rounds on the real broker (issue 12): a round publishes many rows at once and awaits their confirms
 * together, so each row's outcome must still be its own (a routable row delivered, an unroutable one retried and
 * blocking only its own key), and a key's order must hold across rounds (batch boundaries) and pipelined rounds.
 */
describe.skipIf(!pgOk)('relay rounds on RabbitMQ', () => {
  const APP_ID = uid();
  const EXCHANGE = `${APP_ID}.exchange`;
  const QUEUE = `${APP_ID}.events`;
  let db: Db;
  let dropDb: () => Promise<void>;
  let admin: ChannelModel;
  let ch: Channel;
  let transport: RabbitMqTransport;

  beforeAll(async () => {
    const tmp = await createTempDatabase();
    dropDb = tmp.drop;
    db = await openDb({ kind: 'postgres', url: tmp.url });
    await migrate(db);
    admin = await amqp.connect(AMQP_TEST_URL);
    ch = await admin.createChannel();
    transport = new RabbitMqTransport({ url: AMQP_TEST_URL, exchange: EXCHANGE, appIdentifier: APP_ID, log: silent });
    transport.start();
    await transport.waitUntilConnected();
    await ch.assertQueue(QUEUE, { durable: false });
    await ch.bindQueue(QUEUE, EXCHANGE, 'payment-events'); // app-events stays unbound: unroutable
  }, 60_000);

  afterAll(async () => {
    await transport?.close();
    if (ch) {
      for (const q of [QUEUE, `${APP_ID}.payment-commands`, `${APP_ID}.payment-commands.retry`, `${APP_ID}.payment-commands.dlq`]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(EXCHANGE).catch(() => undefined);
    }
    await admin?.close().catch(() => undefined);
    await db?.close();
    await dropDb?.();
  });

  const relay = (o: Partial<RelayOptions> = {}) =>
    new OutboxRelay(db, transport, silent, { maxRetryHours: 72, pollIntervalMs: 10, housekeepingIntervalMs: 0, ...o });
  const state = async (id: string) => (await db.query<{ state: string; attempts: number; last_error: string | null }>('SELECT state, attempts, last_error FROM outbox WHERE id = $1', [id])).rows[0]!;

  it('a round mixing routable and unroutable rows: the routable ones are delivered, each unroutable one is retried and blocks only its own key', async () => {
    await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
    const msgs: OutgoingMessage[] = [];
    for (let k = 0; k < 6; k++) msgs.push(ev(`mix${k}`, 1, k % 3 === 1 ? 'app-events' : 'payment-events'));
    for (let k = 0; k < 6; k++) msgs.push(ev(`mix${k}`, 2));
    const ids = await db.tx((tx) => enqueue(tx, APP_ID, msgs));
    const r = relay({ batchSize: 50 });
    const before = db.stats.statements;
    expect(await r.runOnce()).toMatchObject({ claimed: 6, delivered: 4, failed: 2 });
    expect(db.stats.statements - before).toBe(3); // claim, the four deliveries, the two failures
    for (const k of [1, 4]) expect(await state(ids[k]!)).toMatchObject({ state: 'pending', attempts: 1, last_error: expect.stringMatching(/unroutable/) });
    for (const k of [0, 2, 3, 5]) expect(await state(ids[k]!)).toMatchObject({ state: 'delivered', attempts: 1 });
    // the next round: the second rows of the delivered keys, not those of the unroutable ones
    expect(await r.runOnce()).toMatchObject({ claimed: 4, delivered: 4 });
    for (const k of [7, 10]) expect((await state(ids[k]!)).state).toBe('pending');
    const got = (await drain(ch, QUEUE)).map((m) => m.properties.messageId as string);
    expect(got).toEqual([0, 2, 3, 5, 6, 8, 9, 11].map((i) => ids[i]));
  });

  it('keeps each key in order across round boundaries and pipelined rounds, every message once', async () => {
    await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
    await drain(ch, QUEUE);
    const keys = 5;
    const all = Array.from({ length: 60 }, (_, i) => ev(`ord${i % keys}`, i));
    const ids = await db.tx((tx) => enqueue(tx, APP_ID, all));
    const r = relay({ batchSize: 3, pipeline: 3 }); // rounds smaller than the keys: a key's rows span many rounds
    r.start();
    const got: GetMessage[] = [];
    try {
      const deadline = Date.now() + 60_000;
      while (got.length < ids.length && Date.now() < deadline) {
        got.push(...(await drain(ch, QUEUE)));
        await new Promise((res) => setTimeout(res, 20));
      }
    } finally {
      await r.stop();
    }
    got.push(...(await drain(ch, QUEUE)));
    const received = got.map((m) => m.properties.messageId as string);
    expect([...received].sort()).toEqual([...ids].sort());
    for (let k = 0; k < keys; k++) {
      const expected = ids.filter((_, i) => i % keys === k);
      expect(received.filter((id) => expected.includes(id))).toEqual(expected);
    }
  });
});

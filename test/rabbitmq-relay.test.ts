/**
 * The relay's rounds on the real broker (issue 12): a round publishes many rows at once and awaits their confirms
 * together, so the outcome of each row must still be its own (a routable row delivered, an unroutable one retried
 * and blocking only its own key), and a key's order must hold across rounds (batch boundaries) and pipelined rounds.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueue, type OutgoingMessage } from '../src/messaging/outbox.js';
import { OutboxRelay, type RelayOptions } from '../src/messaging/relay.js';
import { RabbitMqTransport } from '../src/messaging/transports/rabbitmq.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { AMQP_TEST_URL, createTempDatabase, postgresAvailable, rabbitAvailable } from './helpers/services.js';

const rabbitOk = await rabbitAvailable();
const pgOk = rabbitOk && (await postgresAvailable());
const silent = pino({ level: 'silent' });

async function drain(ch: Channel, queue: string): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) return out;
    out.push(m);
  }
}

const ev = (key: string, i: number, channel: OutgoingMessage['channel'] = 'payment-events'): OutgoingMessage => ({
  tenantIdentifier: 'rr-t',
  channel,
  name: 'PaymentUpdated',
  eventKey: `payment/${key}/version/${i}`,
  orderingKey: `payment/${key}`,
  payload: { paymentReference: key, details: JSON.stringify({ i }) },
});

describe.skipIf(!pgOk)('relay rounds on RabbitMQ', () => {
  const APP_ID = `oap-rr-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
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

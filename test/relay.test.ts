import pino from 'pino';
import { v5 as uuidv5 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxDeadTotal } from '../src/metrics.js';
import { enqueue, republish, type OutboxRow, type OutgoingMessage } from '../src/messaging/outbox.js';
import { OutboxRelay, retryDelayMs, type RelayOptions } from '../src/messaging/relay.js';
import { outboxStats } from '../src/messaging/stats.js';
import { LocalTransport } from '../src/messaging/transports/local.js';
import { QuietDeliveryError, type BatchPublishOutcome, type PublishResult, type Transport } from '../src/messaging/transports/types.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const APP = 'open-acp-pay';
const silent = pino({ level: 'silent' });
const TS_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

async function waitFor<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const msg = (tenant: string, name: string, eventKey: string, orderingKey: string, payload: Record<string, unknown> = {}, correlationId?: string): OutgoingMessage => ({
  tenantIdentifier: tenant,
  channel: 'payment-events',
  name,
  eventKey,
  orderingKey,
  payload,
  correlationId,
});

/** A transport that records calls and fails for ids in `failing`. */
class FakeTransport implements Transport {
  readonly kind = 'fake';
  calls: string[] = [];
  failing = new Set<string>();
  /** Of the failing ids, those whose failure the transport reports itself (an unroutable channel). */
  quiet = new Set<string>();
  delayMs = 0;
  gate: Promise<void> | undefined;
  constructor(private readonly shared?: string[]) {}
  async publish(row: OutboxRow): Promise<PublishResult> {
    this.calls.push(row.id);
    this.shared?.push(row.id);
    if (this.gate) await this.gate;
    if (this.delayMs) await new Promise((r) => setTimeout(r, Math.random() * this.delayMs));
    if (this.failing.has(row.id)) throw this.quiet.has(row.id) ? new QuietDeliveryError(`unroutable ${row.id}`) : new Error(`receiver refused ${row.id}`);
    return { receipt: `r-${row.id}` };
  }
}

/**
 * A transport that publishes a whole round at once (like RabbitMQ with confirms awaited together): each round settles
 * after a short delay; it records rounds in flight and whether a key ever had two rows in flight at once.
 */
class FakeBatchTransport implements Transport {
  readonly kind = 'fake-batch';
  published: OutboxRow[] = [];
  failing = new Set<string>();
  roundsInFlight = 0;
  maxRoundsInFlight = 0;
  private readonly keysInFlight = new Set<string>();
  keyTwiceInFlight: string[] = [];
  async publish(row: OutboxRow): Promise<PublishResult> {
    const [o] = await this.publishBatch([row]);
    if (!o!.ok) throw o!.error;
    return {};
  }
  async publishBatch(rows: OutboxRow[]): Promise<BatchPublishOutcome[]> {
    this.roundsInFlight++;
    this.maxRoundsInFlight = Math.max(this.maxRoundsInFlight, this.roundsInFlight);
    for (const r of rows) {
      if (this.keysInFlight.has(r.ordering_key)) this.keyTwiceInFlight.push(r.ordering_key);
      this.keysInFlight.add(r.ordering_key);
      this.published.push(r);
    }
    await new Promise((res) => setTimeout(res, 5));
    for (const r of rows) this.keysInFlight.delete(r.ordering_key);
    this.roundsInFlight--;
    return rows.map((r) => (this.failing.has(r.id) ? { ok: false as const, error: new Error(`refused ${r.id}`) } : { ok: true as const }));
  }
}

describe('outbox relay with the local Event Platform', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  const receive = (tenant: string) => app.request('/event-platform/payment-events', { headers: { 'consumer-id': tenant } });
  const delivered = (ids: string[]) =>
    waitFor(async () => {
      const r = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
      return r.rows[0]!.n === ids.length;
    }, 'delivery');

  it('delivers messages enqueued in a transaction with the exact attributes, readable from GET /event-platform/<channel>', async () => {
    const tenant = 'relay-t1';
    const messages = [
      msg(tenant, 'PaymentUpdated', 'payment/p1/version/2', 'payment/p1', { paymentReference: 'sbx_1', entityReference: null, details: '{}' }, 'req-1'),
      msg(tenant, 'PaymentAuthorized', 'payment/p1/status/2', 'payment/p1', { orderReference: 'DE--1', orderItemIds: [1, 2], amount: 1000, currencyIsoCode: 'EUR' }, 'req-1'),
      msg(tenant, 'PaymentCaptured', 'capture/c1/succeeded', 'payment/p1', { orderReference: 'DE--1', orderItemIds: [1], amount: 500, currencyIsoCode: 'EUR' }, 'req-1'),
    ];
    const ids = await app.deps.db.tx((tx) => enqueue(tx, APP, messages));
    await delivered(ids);

    const r = await receive(tenant);
    expect(r.status).toBe(200);
    expect(r.body.map((m: { MessageId: string }) => m.MessageId)).toEqual(ids);
    const timestamps: string[] = [];
    r.body.forEach((m: { MessageId: string; MessageBody: string; MessageAttributes: Record<string, string> }, i: number) => {
      const src = messages[i]!;
      const expectedId = uuidv5(`urn:open-acp-pay:${APP}:${tenant}:${src.name}:${src.eventKey}`, '6ba7b811-9dad-11d1-80b4-00c04fd430c8');
      expect(m.MessageId).toBe(expectedId);
      expect(m.MessageAttributes).toEqual({
        transferName: src.name,
        name: src.name,
        event: src.name,
        tenantIdentifier: tenant,
        storeReference: tenant,
        actorId: APP,
        publisher: APP,
        timestamp: expect.stringMatching(TS_FORMAT),
        correlationId: 'req-1',
        transactionId: expectedId,
        messageId: expectedId,
      });
      timestamps.push(m.MessageAttributes.timestamp!);
    });
    for (let i = 1; i < timestamps.length; i++) expect(timestamps[i]! > timestamps[i - 1]!).toBe(true);
    expect(JSON.parse(r.body[0].MessageBody)).toEqual({ paymentReference: 'sbx_1', details: '{}' });
    expect(JSON.parse(r.body[1].MessageBody)).toEqual(messages[1]!.payload);

    // The same business event yields the same id and no second message.
    const again = await app.deps.db.tx((tx) => enqueue(tx, APP, [messages[1]!]));
    expect(again).toEqual([ids[1]]);
    const n = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE tenant_identifier = $1`, [tenant]);
    expect(n.rows[0]!.n).toBe(3);
    const receipts = await app.deps.db.query<{ receipt: string; delivered_at: Date | null }>(`SELECT receipt, delivered_at FROM outbox WHERE id = $1`, [ids[0]]);
    expect(receipts.rows[0]).toMatchObject({ receipt: ids[0], delivered_at: expect.any(Date) });
  });

  it('never delivers a message whose transaction rolled back', async () => {
    const tenant = 'relay-t2';
    const rolledBack = msg(tenant, 'PaymentCreated', 'payment/rb/created', 'payment/rb');
    let rolledBackId = '';
    await expect(
      app.deps.db.tx(async (tx) => {
        [rolledBackId] = await enqueue(tx, APP, [rolledBack]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const committed = await app.deps.db.tx((tx) => enqueue(tx, APP, [msg(tenant, 'PaymentCreated', 'payment/ok/created', 'payment/ok')]));
    await delivered(committed);
    expect((await app.deps.db.query('SELECT 1 FROM outbox WHERE id = $1', [rolledBackId])).rows.length).toBe(0);
    const r = await receive(tenant);
    expect(r.body.map((m: { MessageId: string }) => m.MessageId)).toEqual(committed);
  });

  it('removes acknowledged messages and re-delivers unacknowledged ones after the lease', async () => {
    const tenant = 'relay-t3';
    const ids = await app.deps.db.tx((tx) =>
      enqueue(tx, APP, [msg(tenant, 'PaymentCreated', 'payment/a/created', 'payment/a'), msg(tenant, 'PaymentCreated', 'payment/b/created', 'payment/b')]),
    );
    await delivered(ids);
    const first = await receive(tenant);
    expect(first.body.map((m: { MessageId: string }) => m.MessageId).sort()).toEqual([...ids].sort());
    expect((await receive(tenant)).body).toEqual([]); // leased
    const ack = await app.request('/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': tenant }, body: { messageIds: [ids[0]] } });
    expect(ack.status).toBe(204);
    // lease expiry (simulated instead of waiting 30 s)
    await app.deps.db.query(`UPDATE hub_messages SET leased_until = now() - interval '1 second' WHERE consumer_id = $1`, [tenant]);
    const again = await receive(tenant);
    expect(again.body.map((m: { MessageId: string }) => m.MessageId)).toEqual([ids[1]]);
  });

  it('re-publication delivers the acknowledged message again with the same id and timestamp', async () => {
    const tenant = 'relay-t4';
    const [id] = await app.deps.db.tx((tx) => enqueue(tx, APP, [msg(tenant, 'PaymentCaptured', 'capture/x/succeeded', 'payment/x', { amount: 1 })]));
    await delivered([id!]);
    const first = (await receive(tenant)).body;
    expect(first).toHaveLength(1);
    await app.request('/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': tenant }, body: { messageIds: [id] } });
    await app.deps.db.tx((tx) => republish(tx, id!));
    await delivered([id!]);
    const again = await waitFor(async () => {
      const b = (await receive(tenant)).body;
      return b.length > 0 ? b : undefined;
    }, 're-published message');
    expect(again).toEqual(first);
  });
});

describe('retry delay', () => {
  it('starts at 1 s, doubles, caps at 5 min, with ±20 % jitter', () => {
    const lo = () => 0;
    const hi = () => 1 - Number.EPSILON;
    const mid = () => 0.5;
    expect(retryDelayMs(1, 1000, 300_000, 0.2, mid)).toBe(1000);
    expect(retryDelayMs(2, 1000, 300_000, 0.2, mid)).toBe(2000);
    expect(retryDelayMs(3, 1000, 300_000, 0.2, mid)).toBe(4000);
    expect(retryDelayMs(9, 1000, 300_000, 0.2, mid)).toBe(256_000);
    expect(retryDelayMs(10, 1000, 300_000, 0.2, mid)).toBe(300_000);
    expect(retryDelayMs(500, 1000, 300_000, 0.2, mid)).toBe(300_000);
    expect(retryDelayMs(1, 1000, 300_000, 0.2, lo)).toBe(800);
    expect(retryDelayMs(1, 1000, 300_000, 0.2, hi)).toBe(1200);
    expect(retryDelayMs(20, 1000, 300_000, 0.2, hi)).toBe(360_000);
  });
});

const pgOk = await postgresAvailable();

const backends: Array<{ name: string; skip: boolean; open: () => Promise<{ db: Db; extra?: Db; cleanup: () => Promise<void> }> }> = [
  {
    name: 'PGlite',
    skip: false,
    open: async () => {
      const db = await openDb({ kind: 'pglite-memory' });
      await migrate(db);
      return { db, cleanup: () => db.close() };
    },
  },
  {
    name: 'PostgreSQL',
    skip: !pgOk,
    open: async () => {
      const tmp = await createTempDatabase();
      const db = await openDb({ kind: 'postgres', url: tmp.url });
      await migrate(db);
      const extra = await openDb({ kind: 'postgres', url: tmp.url });
      return {
        db,
        extra,
        cleanup: async () => {
          await db.close();
          await extra.close();
          await tmp.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(`relay mechanics on ${backend.name}`, () => {
    let db: Db;
    let extra: Db | undefined;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ db, extra, cleanup } = await backend.open());
    });
    afterAll(async () => {
      await cleanup?.();
    });

    const relay = (t: Transport, o: Partial<RelayOptions> = {}, on: Db = db) =>
      new OutboxRelay(on, t, silent, { maxRetryHours: 72, pollIntervalMs: 10, backoffBaseMs: 1000, housekeepingIntervalMs: 0, ...o });
    const state = async (id: string) =>
      (await db.query<{ state: string; attempts: number; last_error: string | null; first_failed_at: Date | null; next_attempt_at: Date; receipt: string | null }>(
        'SELECT state, attempts, last_error, first_failed_at, next_attempt_at, receipt FROM outbox WHERE id = $1',
        [id],
      )).rows[0]!;
    const makeDue = (id: string) => db.query('UPDATE outbox SET next_attempt_at = now() WHERE id = $1', [id]);

    it('a failing first message blocks the next one of its ordering key but not other keys; failures back off', async () => {
      const [a, b, c] = await db.tx((tx) =>
        enqueue(tx, APP, [
          msg('mk-t', 'PaymentUpdated', 'payment/k1/version/1', 'payment/k1'),
          msg('mk-t', 'PaymentAuthorized', 'payment/k1/status/1', 'payment/k1'),
          msg('mk-t', 'PaymentCreated', 'payment/k2/created', 'payment/k2'),
        ]),
      );
      const t = new FakeTransport();
      t.failing.add(a!);
      const r = relay(t);
      const round1 = await r.runOnce();
      expect(round1).toMatchObject({ claimed: 2, delivered: 1, failed: 1 });
      expect(t.calls.sort()).toEqual([a, c].sort());
      const sa = await state(a!);
      expect(sa).toMatchObject({ state: 'pending', attempts: 1, last_error: expect.stringContaining('receiver refused') });
      expect(sa.first_failed_at).toBeInstanceOf(Date);
      expect(sa.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 500); // ≥ 800 ms backoff
      expect(await state(c!)).toMatchObject({ state: 'delivered', receipt: `r-${c}` });

      // not due yet: nothing claimed, b still blocked
      expect((await r.runOnce()).claimed).toBe(0);
      await makeDue(a!);
      await r.runOnce();
      expect(t.calls.filter((x) => x === b)).toHaveLength(0);
      expect((await state(a!)).attempts).toBe(2);

      t.failing.clear();
      await makeDue(a!);
      await r.runOnce();
      expect(await state(a!)).toMatchObject({ state: 'delivered', last_error: null });
      expect(t.calls.filter((x) => x === b)).toHaveLength(0);
      await r.runOnce();
      expect(await state(b!)).toMatchObject({ state: 'delivered' });
      expect(t.calls.indexOf(b!)).toBeGreaterThan(t.calls.lastIndexOf(a!));
    });

    it('a message of an unroutable channel (reported by the transport) is retried at least every 10 s, others back off to the cap', async () => {
      const [q, n] = await db.tx((tx) => enqueue(tx, APP, [msg('quiet-t', 'PaymentUpdated', 'payment/q/version/1', 'payment/q'), msg('quiet-t', 'PaymentUpdated', 'payment/n/version/1', 'payment/n')]));
      const t = new FakeTransport();
      t.failing.add(q!).add(n!);
      t.quiet.add(q!);
      // the 12th attempt: 1 s doubled 11 times is far beyond both caps
      await db.query(`UPDATE outbox SET attempts = 11, next_attempt_at = now() WHERE id = ANY($1)`, [[q, n]]);
      expect(await relay(t, { jitter: 0 }).runOnce()).toMatchObject({ claimed: 2, failed: 2 });
      const inMs = async (id: string) => (await state(id)).next_attempt_at.getTime() - Date.now();
      expect(await inMs(q!)).toBeLessThanOrEqual(10_000);
      expect(await inMs(q!)).toBeGreaterThan(8_000);
      expect(await inMs(n!)).toBeGreaterThan(250_000);
    });

    it('marks a row dead after OUTBOX_MAX_RETRY_HOURS of failures; it keeps blocking its key and is counted', async () => {
      const [a, b] = await db.tx((tx) =>
        enqueue(tx, APP, [msg('dead-t', 'PaymentUpdated', 'payment/d/version/1', 'payment/d'), msg('dead-t', 'PaymentCaptured', 'capture/d/succeeded', 'payment/d')]),
      );
      const t = new FakeTransport();
      t.failing.add(a!);
      const r = relay(t);
      await r.runOnce();
      expect((await state(a!)).state).toBe('pending');
      // failing for 71 h: still retried
      await db.query(`UPDATE outbox SET first_failed_at = now() - interval '71 hours', next_attempt_at = now() WHERE id = $1`, [a]);
      await r.runOnce();
      expect((await state(a!)).state).toBe('pending');
      const before = (await outboxDeadTotal.get()).values[0]?.value ?? 0;
      await db.query(`UPDATE outbox SET first_failed_at = now() - interval '73 hours', next_attempt_at = now() WHERE id = $1`, [a]);
      const round = await r.runOnce();
      expect(round.dead).toBe(1);
      expect(await state(a!)).toMatchObject({ state: 'dead', attempts: 3 });
      expect((await outboxDeadTotal.get()).values[0]!.value).toBe(before + 1);
      // the dead row blocks b
      t.failing.clear();
      await r.runOnce();
      expect(t.calls).not.toContain(b);
      expect((await state(b!)).state).toBe('pending');
      const stats = await outboxStats(db);
      expect(stats.dead).toBeGreaterThanOrEqual(1);
      expect(stats.pending).toBeGreaterThanOrEqual(1);
      expect(stats.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(0);
      // operator re-queue → delivered in order
      await db.tx((tx) => republish(tx, a!));
      await r.runOnce();
      await r.runOnce();
      expect((await state(a!)).state).toBe('delivered');
      expect((await state(b!)).state).toBe('delivered');
    });

    it('a second relay skips rows leased by the first and delivers the others', async () => {
      await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
      const ids = await db.tx((tx) => enqueue(tx, APP, Array.from({ length: 6 }, (_, i) => msg('lease-t', 'PaymentCreated', `payment/l${i}/created`, `payment/l${i}`))));
      const slow = new FakeTransport();
      let open!: () => void;
      slow.gate = new Promise<void>((res) => (open = res));
      const r1 = relay(slow, { batchSize: 3 });
      const r2 = relay(new FakeTransport(), { batchSize: 10 }, extra ?? db);
      const inflight = r1.runOnce();
      await waitFor(async () => slow.calls.length === 3, 'first relay to claim');
      const second = await r2.runOnce();
      expect(second.delivered).toBe(3);
      open();
      expect((await inflight).delivered).toBe(3);
      const rows = await db.query<{ receipt: string }>(`SELECT receipt FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
      expect(rows.rows.length).toBe(6);
      expect(new Set([...slow.calls, ...rows.rows.map((x) => x.receipt.slice(2))])).toEqual(new Set(ids));
      expect(slow.calls.filter((id) => ids.includes(id))).toHaveLength(3);
    });

    it('stop() finishes the in-flight round; start() is woken by commits', async () => {
      const t = new FakeTransport();
      let open!: () => void;
      t.gate = new Promise<void>((res) => (open = res));
      const r = relay(t, { pollIntervalMs: 60_000 }); // only the commit signal can wake it after the first round
      r.start();
      await new Promise((res) => setTimeout(res, 50));
      const [id] = await db.tx((tx) => enqueue(tx, APP, [msg('stop-t', 'PaymentCreated', 'payment/s/created', 'payment/s')]));
      await waitFor(async () => t.calls.includes(id!), 'relay to pick up the row after the commit signal');
      const stopping = r.stop();
      open();
      await stopping;
      expect((await state(id!)).state).toBe('delivered');
    });

    it('a round of a batch transport is recorded in one statement per outcome kind; a failed head blocks only its own key', async () => {
      await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
      const ids = await db.tx((tx) =>
        enqueue(tx, APP, Array.from({ length: 8 }, (_, i) => msg('round-t', 'PaymentUpdated', `payment/r${i % 4}/version/${i}`, `payment/r${i % 4}`))),
      );
      const heads = ids.slice(0, 4);
      const t = new FakeBatchTransport();
      t.failing.add(heads[1]!).add(heads[2]!);
      const r = relay(t, { batchSize: 10 });
      const before = { ...db.stats };
      expect(await r.runOnce()).toMatchObject({ claimed: 4, delivered: 2, failed: 2 });
      // one claim, one statement for the two deliveries, one for the two failures; no transaction
      expect(db.stats.statements - before.statements).toBe(3);
      expect(db.stats.transactions - before.transactions).toBe(0);
      expect(t.published.map((x) => x.id).sort()).toEqual([...heads].sort());
      expect(await state(heads[1]!)).toMatchObject({ state: 'pending', attempts: 1, last_error: `refused ${heads[1]}` });
      expect(await state(heads[0]!)).toMatchObject({ state: 'delivered', attempts: 1 });
      // next round: the successors of the delivered heads only
      expect(await r.runOnce()).toMatchObject({ claimed: 2, delivered: 2 });
      expect(t.published.slice(4).map((x) => x.id).sort()).toEqual([ids[4], ids[7]].sort());
      expect((await state(ids[5]!)).state).toBe('pending');
      expect((await r.runOnce()).claimed).toBe(0);
    });

    it('a round of the local transport goes into the hub with its record as delivered, in one statement; if that fails, neither happened', async () => {
      await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
      const ids = await db.tx((tx) => enqueue(tx, APP, Array.from({ length: 3 }, (_, i) => msg('local-round-t', 'PaymentCreated', `payment/l${i}/created`, `payment/l${i}`))));
      const inHub = async (): Promise<string[]> =>
        (await db.query<{ message_id: string }>(`SELECT message_id FROM hub_messages WHERE message_id = ANY($1::text[]) ORDER BY seq`, [ids])).rows.map((r) => r.message_id);
      // the recording statement fails once (e.g. the connection dropped)
      let failNext = true;
      const failing = Object.assign(Object.create(db) as Db, {
        query: (sql: string, params?: unknown[]) => {
          if (failNext && sql.includes('hub_insert')) {
            failNext = false;
            return Promise.reject(new Error('connection lost'));
          }
          return db.query(sql, params);
        },
      });
      const r = relay(new LocalTransport(db), { batchSize: 10 }, failing);
      expect(await r.runOnce()).toMatchObject({ claimed: 3, delivered: 0, failed: 3 });
      expect(await inHub()).toEqual([]);
      for (const id of ids) expect(await state(id)).toMatchObject({ state: 'pending', attempts: 1, last_error: 'connection lost' });
      for (const id of ids) await makeDue(id);
      const before = { ...db.stats };
      expect(await r.runOnce()).toMatchObject({ claimed: 3, delivered: 3 });
      // the claim, then the hub insert with the delivery record
      expect(db.stats.statements - before.statements).toBe(2);
      expect(await inHub()).toEqual(ids);
      for (const id of ids) expect(await state(id)).toMatchObject({ state: 'delivered', attempts: 2, receipt: id });
    });

    it('pipelined rounds (several claimed while others are published) keep each key in order, one row of a key in flight at a time', async () => {
      await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
      const keys = 6; // fewer keys than rows in flight (3 rounds of 4): a key's next row must wait for its previous one
      const all = Array.from({ length: 96 }, (_, i) => msg('pipe-t', 'PaymentUpdated', `payment/pp${i % keys}/version/${i}`, `payment/pp${i % keys}`, { i }));
      const ids: string[] = [];
      for (let i = 0; i < all.length; i += 32) ids.push(...(await db.tx((tx) => enqueue(tx, APP, all.slice(i, i + 32)))));
      const t = new FakeBatchTransport();
      const r = relay(t, { batchSize: 4, pipeline: 3 });
      r.start();
      try {
        await waitFor(async () => {
          const c = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
          return c.rows[0]!.n === ids.length;
        }, '96 deliveries', 60_000);
      } finally {
        await r.stop();
      }
      expect(t.maxRoundsInFlight).toBeGreaterThan(1); // rounds did overlap
      expect(t.keyTwiceInFlight).toEqual([]);
      expect(t.published.map((x) => x.id).sort()).toEqual([...ids].sort()); // each once
      const lastSeq = new Map<string, number>();
      for (const row of t.published) {
        expect(row.seq).toBeGreaterThan(lastSeq.get(row.ordering_key) ?? 0);
        lastSeq.set(row.ordering_key, row.seq);
      }
    });

    it('housekeeping deletes delivered rows older than 7 days', async () => {
      const [old, recent] = await db.tx((tx) =>
        enqueue(tx, APP, [msg('hk-t', 'PaymentCreated', 'payment/h1/created', 'payment/h1'), msg('hk-t', 'PaymentCreated', 'payment/h2/created', 'payment/h2')]),
      );
      await db.query(`UPDATE outbox SET state = 'delivered', delivered_at = now() - interval '8 days' WHERE id = $1`, [old]);
      await db.query(`UPDATE outbox SET state = 'delivered', delivered_at = now() - interval '6 days' WHERE id = $1`, [recent]);
      const res = await relay(new FakeTransport()).housekeeping();
      expect(res.outbox).toBeGreaterThanOrEqual(1);
      expect((await db.query('SELECT 1 FROM outbox WHERE id = $1', [old])).rows.length).toBe(0);
      expect((await db.query('SELECT 1 FROM outbox WHERE id = $1', [recent])).rows.length).toBe(1);
    });

    it('housekeeping keeps old outcome messages a repeated command re-publishes', async () => {
      const [captured, updated] = await db.tx((tx) =>
        enqueue(tx, APP, [msg('hk2-t', 'PaymentCaptured', 'capture/c1/succeeded', 'payment/h3'), msg('hk2-t', 'PaymentUpdated', 'payment/h3/version/2', 'payment/h3')]),
      );
      await db.query(`UPDATE outbox SET state = 'delivered', delivered_at = now() - interval '30 days' WHERE id = ANY($1::text[])`, [[captured, updated]]);
      await relay(new FakeTransport()).housekeeping();
      expect((await db.query('SELECT 1 FROM outbox WHERE id = $1', [captured])).rows.length).toBe(1);
      expect((await db.query('SELECT 1 FROM outbox WHERE id = $1', [updated])).rows.length).toBe(0);
    });

    if (backend.name === 'PostgreSQL') it('two relays on two pools deliver 200 messages, each exactly once and in order per key', async () => {
      await db.query(`UPDATE outbox SET state = 'delivered' WHERE state <> 'delivered'`);
      const keys = 20;
      const all: OutgoingMessage[] = Array.from({ length: 200 }, (_, i) => msg('multi-t', 'PaymentUpdated', `payment/m${i % keys}/version/${i}`, `payment/m${i % keys}`, { i }));
      const ids: string[] = [];
      for (let i = 0; i < all.length; i += 50) ids.push(...(await db.tx((tx) => enqueue(tx, APP, all.slice(i, i + 50)))));
      const seqOf = new Map((await db.query<{ id: string; seq: number; ordering_key: string }>(`SELECT id, seq, ordering_key FROM outbox WHERE id = ANY($1::text[])`, [ids])).rows.map((r) => [r.id, r]));
      const order: string[] = [];
      const t1 = new FakeTransport(order);
      const t2 = new FakeTransport(order);
      t1.delayMs = 3;
      t2.delayMs = 3;
      const r1 = relay(t1, { batchSize: 7 }, db);
      const r2 = relay(t2, { batchSize: 7 }, extra!);
      r1.start();
      r2.start();
      try {
        await waitFor(async () => {
          const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::text[]) AND state = 'delivered'`, [ids]);
          return r.rows[0]!.n === ids.length;
        }, '200 deliveries', 60_000);
      } finally {
        await Promise.all([r1.stop(), r2.stop()]);
      }
      process.stdout.write(`[relay.test] deliveries per relay: ${t1.calls.length} / ${t2.calls.length}\n`);
      expect(order).toHaveLength(200);
      expect(new Set(order)).toEqual(new Set(ids));
      // Within each ordering key, rows were handed to the transports in creation (seq) order.
      const lastSeq = new Map<string, number>();
      for (const id of order) {
        const row = seqOf.get(id)!;
        expect(row.seq).toBeGreaterThan(lastSeq.get(row.ordering_key) ?? 0);
        lastSeq.set(row.ordering_key, row.seq);
      }
      expect(seqOf.size).toBe(200);
    });
  });
}

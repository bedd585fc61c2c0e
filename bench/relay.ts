/**
 * Relay throughput to RabbitMQ (issue 12): how fast the real outbox relay drains a full outbox into RabbitMQ, as a
 * ratio to a floor measured in the same run.
 *
 * - Floor: raw amqplib on a ConfirmChannel publishing the same N messages (same body, properties and headers, same
 *   exchange and routing key, `mandatory`), all pipelined with the broker's confirms awaited; no database.
 *   Measured before and after the relay; the ratio is taken to the better of the two (conservative).
 * - Relay: a fresh temporary PostgreSQL database, N messages written through the real `enqueue` (payments with
 *   several messages each on their own ordering key, as the app writes them), then the relay as `src/workers.ts`
 *   builds it (default options, the `rabbitmq` transport of `createTransport`) drains them; timed from its start
 *   until no row is pending. Also prints the relay's statements and transactions per batch (round), from the Db
 *   port's counters.
 *
 * A unique exchange and queue per run (bound so nothing is unroutable), deleted afterwards with the database.
 * Run by `npm run bench`, or alone: `npm run build && node dist/bench/relay.js`.
 * Env: BENCH_RELAY_MESSAGES (20000), BENCH_RELAY_PER_KEY (4 messages per payment/ordering key), BENCH_RELAY_DELIVERED
 * (delivered rows already in the outbox, as kept for 7 days; 0), BENCH_POSTGRES_URL
 * (admin URL, default postgres://postgres@127.0.0.1:5432/postgres), BENCH_AMQP_URL (amqp://guest:guest@127.0.0.1:5672).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import amqp, { type ChannelModel } from 'amqplib';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { enqueue, type OutboxRow, type OutgoingMessage } from '../src/messaging/outbox.js';
import { OutboxRelay } from '../src/messaging/relay.js';
import { createTransport } from '../src/messaging/transports/index.js';
import { publishOptions, type RabbitMqTransport } from '../src/messaging/transports/rabbitmq.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { createTempDatabase } from './postgres.js';

const ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MESSAGES = Number(process.env.BENCH_RELAY_MESSAGES ?? 20_000);
const PER_KEY = Math.max(1, Number(process.env.BENCH_RELAY_PER_KEY ?? 4));
/** Delivered rows already in the outbox (it keeps them 7 days), e.g. 200000; default none. */
const HISTORY = Number(process.env.BENCH_RELAY_DELIVERED ?? 0);
const TENANTS = 20;
/** Experiments only: BENCH_RELAY_BATCH / BENCH_RELAY_PIPELINE override the relay's defaults (the figures use the defaults). */
const RELAY_OVERRIDES = {
  ...(process.env.BENCH_RELAY_BATCH ? { batchSize: Number(process.env.BENCH_RELAY_BATCH) } : {}),
  ...(process.env.BENCH_RELAY_PIPELINE ? { pipeline: Number(process.env.BENCH_RELAY_PIPELINE) } : {}),
};
const CHANNEL = 'payment-events';

/** The messages of one payment, in the order the app writes them (messages.md 3). */
function paymentMessages(run: string, p: number): OutgoingMessage[] {
  const tenant = `bench-relay-shop-${p % TENANTS}`;
  const paymentId = `${run}-pay-${p}`;
  const orderReference = `DE--${run}-${p}`;
  const amount = 1000 + (p % 50_000);
  const details = (status: string, captured: number): string =>
    JSON.stringify({ status, amount, currency: 'EUR', capturedAmount: captured, refundedAmount: 0, canceledAmount: 0, paymentMethod: 'credit-card', connector: 'sandbox', pspReference: `sbx_pay_${paymentId}` });
  const base = { tenantIdentifier: tenant, channel: CHANNEL, orderingKey: `payment/${paymentId}`, correlationId: `req-${run}-${p}` } as const;
  const all: OutgoingMessage[] = [
    { ...base, name: 'PaymentUpdated', eventKey: `payment/${paymentId}/version/2`, payload: { entityReference: orderReference, paymentReference: `sbx_pay_${paymentId}`, details: details('authorized', 0) } },
    { ...base, name: 'PaymentAuthorized', eventKey: `payment/${paymentId}/status/2`, payload: { orderReference, orderItemIds: [p * 3 + 1, p * 3 + 2], amount, currencyIsoCode: 'EUR' } },
    { ...base, name: 'PaymentUpdated', eventKey: `payment/${paymentId}/version/3`, payload: { entityReference: orderReference, paymentReference: `sbx_pay_${paymentId}`, details: details('captured', amount) } },
    { ...base, name: 'PaymentCaptured', eventKey: `capture/${paymentId}-c1/succeeded`, payload: { orderReference, orderItemIds: [p * 3 + 1, p * 3 + 2], amount, currencyIsoCode: 'EUR' } },
  ];
  return Array.from({ length: PER_KEY }, (_, i) => {
    const m = all[i % all.length]!;
    return i < all.length ? m : { ...m, eventKey: `${m.eventKey}/${i}` };
  });
}

async function reachable(): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
  } catch (err) {
    return `PostgreSQL at ${ADMIN_URL.replace(/\/\/[^@]*@/, '//')} not reachable (${(err as Error).message})`;
  }
  try {
    const m = await amqp.connect(AMQP_URL, { timeout: 2000 });
    await m.close();
  } catch (err) {
    return `RabbitMQ at ${AMQP_URL.replace(/\/\/[^@]*@/, '//')} not reachable (${(err as Error).message})`;
  }
  return undefined;
}

/** CPU time (ms) of processes by pid, from /proc (Linux); undefined where it cannot be read. */
function cpuMs(pids: number[]): number | undefined {
  let ticks = 0;
  try {
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    }
  } catch {
    return undefined;
  }
  return ticks * 10; // USER_HZ = 100
}

/** The RabbitMQ server's pid when it runs on this machine (beam.smp), for its CPU time. */
function brokerPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'beam.smp';
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

/** CPU used during `fn` by this process, the broker and the given database's backends (ms), and its wall time. */
interface CpuSample {
  seconds: number;
  node: number;
  broker: number | undefined;
  postgres: number | undefined;
}

async function measured(pgBackends: () => Promise<number[]>, fn: () => Promise<void>): Promise<CpuSample> {
  const broker = brokerPids();
  const b0 = cpuMs(broker);
  const n0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const n1 = process.cpuUsage(n0);
  const b1 = cpuMs(broker);
  const backends = await pgBackends();
  return {
    seconds,
    node: (n1.user + n1.system) / 1000,
    broker: broker.length > 0 && b0 !== undefined && b1 !== undefined ? b1 - b0 : undefined,
    postgres: cpuMs(backends),
  };
}

/** Raw amqplib: every message published on one confirm channel (write buffer respected), then all confirms awaited. */
async function floor(model: ChannelModel, exchange: string, appIdentifier: string, rows: OutboxRow[]): Promise<CpuSample> {
  const ch = await model.createConfirmChannel();
  try {
    return await measured(async () => [], async () => {
    const confirms: Promise<void>[] = [];
    for (const row of rows) {
      let flowing = true;
      confirms.push(
        new Promise<void>((resolve, reject) => {
          flowing = ch.publish(exchange, row.channel, Buffer.from(JSON.stringify(row.payload), 'utf8'), publishOptions(row, appIdentifier), (err: unknown) =>
            err ? reject(new Error('nack')) : resolve(),
          );
        }),
      );
      if (!flowing) await new Promise((r) => ch.once('drain', r));
    }
    await Promise.all(confirms);
    });
  } finally {
    await ch.close();
  }
}

/** The first words of a statement, to group the relay's statements by kind. */
function statementKind(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  if (s.startsWith('UPDATE outbox SET lease_until = now()')) return 'claim';
  if (s.includes("state = 'delivered'") && s.startsWith('UPDATE')) return 'mark delivered';
  if (s.includes('first_failed_at = COALESCE')) return 'record failure';
  if (s.startsWith('UPDATE outbox SET lease_until = NULL')) return 'release leases';
  if (s.startsWith('DELETE')) return 'housekeeping';
  return s.slice(0, 40);
}

export interface RelayResult {
  /** Messages per second the relay delivered. */
  rate: number;
  /** The better of the two raw amqplib floors. */
  floor: number;
}

export async function runRelayBench(out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<RelayResult | null> {
  const why = await reachable();
  if (why) {
    out(`\nRelay to RabbitMQ: skipped: ${why}`);
    return null;
  }
  const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const appIdentifier = `oap-bench-relay-${run}`;
  const exchange = `${appIdentifier}.exchange`;
  const queue = `${appIdentifier}.${CHANNEL}`;
  const tmp = await createTempDatabase('oap_bench_relay', ADMIN_URL);
  const model = await amqp.connect(AMQP_URL);
  const ach = await model.createChannel();
  const config = loadConfig({
    DATABASE_URL: tmp.url,
    MESSAGE_TRANSPORT: 'rabbitmq',
    AMQP_URL,
    AMQP_EXCHANGE: exchange,
    APP_IDENTIFIER: appIdentifier,
    ENCRYPTION_KEYS: `b:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'silent',
  });
  const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
  const fill = await openDb(config.database);
  let relayDb: Db | undefined;
  let transport: RabbitMqTransport | undefined;
  try {
    await migrate(fill);
    await ach.assertExchange(exchange, 'topic', { durable: true });
    await ach.assertQueue(queue, { durable: true });
    await ach.bindQueue(queue, exchange, CHANNEL);

    if (HISTORY > 0) {
      // delivered rows of earlier days, older than every message below (housekeeping keeps them for 7 days)
      await fill.query(
        `INSERT INTO outbox (id, tenant_identifier, channel, message_name, ordering_key, attributes, payload, message_timestamp, state, delivered_at, attempts, created_at)
         SELECT 'history-' || i, 'bench-relay-shop-' || (i % ${TENANTS}), '${CHANNEL}', 'PaymentAuthorized', 'bench-relay-shop/payment/history-' || (i / 4), '{}'::jsonb,
                jsonb_build_object('orderReference', 'DE--h' || i, 'amount', 1000, 'currencyIsoCode', 'EUR'), '2025-01-01T00:00:00.000000', 'delivered', now() - interval '1 day', 1, now() - interval '1 day'
         FROM generate_series(1, $1::int) AS i`,
        [HISTORY],
      );
    }
    // Fill the outbox through the real enqueue: one transaction per 50 payments.
    const payments = Math.ceil(MESSAGES / PER_KEY);
    const tFill = performance.now();
    for (let p = 0; p < payments; p += 50) {
      const batch: OutgoingMessage[] = [];
      for (let q = p; q < Math.min(payments, p + 50); q++) batch.push(...paymentMessages(run, q));
      await fill.tx((tx) => enqueue(tx, appIdentifier, batch));
    }
    const rows = (await fill.query<OutboxRow>(`SELECT * FROM outbox WHERE state = 'pending' ORDER BY seq`)).rows;
    const n = rows.length;
    const avgBody = rows.reduce((sum, r) => sum + Buffer.byteLength(JSON.stringify(r.payload)), 0) / n;
    out(
      `\nRelay to RabbitMQ: ${n.toLocaleString('en')} messages (${payments.toLocaleString('en')} ordering keys × ${PER_KEY}, ${TENANTS} tenants, ` +
        `body ${avgBody.toFixed(0)} B + ${Object.keys(publishOptions(rows[0]!, appIdentifier).headers ?? {}).length} headers) written through enqueue in ${((performance.now() - tFill) / 1000).toFixed(1)} s; PostgreSQL, durable queue${HISTORY > 0 ? `; ${HISTORY.toLocaleString('en')} delivered rows already in the outbox` : ''}`,
    );
    await fill.query('ANALYZE outbox');
    await fill.close();

    const floor1 = await floor(model, exchange, appIdentifier, rows);
    await ach.purgeQueue(queue);

    // The relay as src/workers.ts builds it, on its own pool (its backends' CPU time is the relay's database work).
    const db = (relayDb = await openDb(config.database));
    const t = createTransport({ config, db, log });
    transport = t as RabbitMqTransport;
    transport.start();
    await transport.waitUntilConnected();
    const relay = new OutboxRelay(db, t, log, { maxRetryHours: config.outboxMaxRetryHours, ...RELAY_OVERRIDES });
    // Where the relay's time goes: wall time inside each kind of statement and inside the transport's publish.
    const busy = new Map<string, number>();
    const addBusy = (k: string, ms: number): void => void busy.set(k, (busy.get(k) ?? 0) + ms);
    const query = db.query.bind(db);
    db.query = (async (sql: string, params?: unknown[]) => {
      const st = performance.now();
      try {
        return await query(sql, params);
      } finally {
        addBusy(statementKind(sql), performance.now() - st);
      }
    }) as typeof db.query;
    const publishBatch = t.publishBatch?.bind(t);
    if (publishBatch) {
      t.publishBatch = async (batch) => {
        const st = performance.now();
        try {
          return await publishBatch(batch);
        } finally {
          addBusy('transport.publishBatch', performance.now() - st);
        }
      };
    }
    db.stats.statements = 0;
    db.stats.transactions = 0;
    db.stats.trace = [];
    const watcher = new pg.Client({ connectionString: tmp.url });
    await watcher.connect();
    const backends = async (): Promise<number[]> =>
      (await watcher.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    let relayRun: CpuSample;
    try {
      relayRun = await measured(backends, async () => {
        relay.start();
        const t0 = performance.now();
        for (;;) {
          const r = await watcher.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state <> 'delivered'`);
          if (r.rows[0]!.n === 0) break;
          if (performance.now() - t0 > 600_000) throw new Error(`relay did not drain the outbox within 10 min (${r.rows[0]!.n} left)`);
          await new Promise((res) => setTimeout(res, 5));
        }
      });
    } finally {
      await watcher.end();
    }
    const trace = db.stats.trace;
    const statements = db.stats.statements;
    const transactions = db.stats.transactions;
    db.stats.trace = undefined;
    await relay.stop(); // also closes the transport
    transport = undefined;
    const inQueue = (await ach.checkQueue(queue)).messageCount;
    await ach.purgeQueue(queue);

    const floor2 = await floor(model, exchange, appIdentifier, rows);
    await ach.purgeQueue(queue);

    const rate = (c: CpuSample): number => n / c.seconds;
    const best = Math.max(rate(floor1), rate(floor2));
    const kinds = new Map<string, number>();
    for (const st of trace) kinds.set(statementKind(st), (kinds.get(statementKind(st)) ?? 0) + 1);
    const rounds = Math.max(1, kinds.get('claim') ?? 0);
    const fmt = (x: number): string => x.toLocaleString('en', { maximumFractionDigits: 0 });
    const per1000 = (ms: number | undefined): string => (ms === undefined ? 'n/a' : ((ms * 1000) / n).toFixed(0));
    const cpu = (c: CpuSample): string => `CPU ms per 1000 messages: node ${per1000(c.node)}, RabbitMQ ${per1000(c.broker)}${c.postgres === undefined ? '' : `, PostgreSQL ${per1000(c.postgres)}`}`;
    out(`  floor: amqplib confirm channel, no database   ${fmt(rate(floor1))} msg/s before, ${fmt(rate(floor2))} msg/s after the relay   (${cpu(floor1)})`);
    out(
      `  relay (${Object.keys(RELAY_OVERRIDES).length ? JSON.stringify(RELAY_OVERRIDES) : 'default options'}, rabbitmq transport)   ${fmt(rate(relayRun))} msg/s in ${relayRun.seconds.toFixed(2)} s   ` +
        `ratio ${(rate(relayRun) / best).toFixed(2)} of the better floor   (goal: ≥ 5,000 msg/s and ≥ 0.50)   (${cpu(relayRun)})`,
    );
    out(`  queue holds ${fmt(inQueue)} of ${fmt(n)} messages${inQueue < n ? ' (MISSING MESSAGES)' : inQueue > n ? ' (some sent twice: at least once)' : ''}`);
    out(
      `  relay statements: ${statements} in ${transactions} transactions over ${rounds} rounds (${(n / rounds).toFixed(0)} messages per round): ` +
        `${(statements / rounds).toFixed(2)} statements and ${(transactions / rounds).toFixed(2)} transactions per round; ` +
        [...kinds].map(([k, c]) => `${k} ×${c}`).join(', '),
    );
    out(`  relay wall time per round (ms): ${[...busy].map(([k, ms]) => `${k} ${(ms / rounds).toFixed(1)}`).join(', ')}; round to round ${((relayRun.seconds * 1000) / rounds).toFixed(1)}`);
    return { rate: rate(relayRun), floor: best };
  } finally {
    await transport?.close().catch(() => undefined);
    await relayDb?.close().catch(() => undefined);
    await fill.close().catch(() => undefined);
    for (const q of [queue, `${appIdentifier}.payment-commands`, `${appIdentifier}.payment-commands.retry`, `${appIdentifier}.payment-commands.dlq`]) await ach.deleteQueue(q).catch(() => undefined);
    await ach.deleteExchange(exchange).catch(() => undefined);
    await model.close().catch(() => undefined);
    await tmp.drop();
  }
}

// Run alone when this file is the entry point (`node dist/bench/relay.js`).
const entry = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : undefined;
if (entry === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href) {
  runRelayBench().catch((err: unknown) => {
    process.stderr.write(`relay bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

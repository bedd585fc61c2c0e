/**
 * RabbitMQ mode with nothing bound to the app's outgoing routing keys (a shop or bridge that has not bound its queue
 * yet): payments go on, messages wait in the outbox, /ready stays 200 and names each unroutable channel as degraded,
 * and the log carries one line per channel per minute, not one per message. Binding a queue clears it.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel } from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startRuntime, type Runtime } from '../src/runtime.js';
import { TEST_KEYS } from './helpers/app.js';
import { call, configureTenant, until } from './helpers/commands.js';
import { AMQP_TEST_URL, rabbitAvailable } from './helpers/services.js';

const rabbitOk = await rabbitAvailable();
const EXCHANGE = `oap-unroutable-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const APP_ID = `oap-unroutable-${randomBytes(3).toString('hex')}`;

describe.skipIf(!rabbitOk)('rabbitmq: unroutable channels', () => {
  let rt: Runtime;
  let app: { url: string };
  let broker: ChannelModel;
  const lines: Array<Record<string, any>> = [];

  beforeAll(async () => {
    const config = loadConfig({
      PORT: '0',
      DATABASE_URL: 'memory://',
      ENCRYPTION_KEYS: TEST_KEYS,
      MESSAGE_TRANSPORT: 'rabbitmq',
      AMQP_URL: AMQP_TEST_URL,
      AMQP_EXCHANGE: EXCHANGE,
      APP_IDENTIFIER: APP_ID,
      MESSAGE_POLL_INTERVAL_MS: '50',
      LOG_LEVEL: 'info',
    });
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    rt = await startRuntime(config, { log });
    app = { url: rt.listenUrl };
    broker = await amqp.connect(AMQP_TEST_URL);
  }, 60_000);

  afterAll(async () => {
    await rt?.close();
    if (broker) {
      const ch = await broker.createChannel();
      await ch.deleteQueue(`${APP_ID}.app-events.test`).catch(() => undefined);
      await ch.deleteQueue(`${APP_ID}.payment-commands`).catch(() => undefined);
      await ch.deleteQueue(`${APP_ID}.payment-commands.retry`).catch(() => undefined);
      await ch.deleteQueue(`${APP_ID}.payment-commands.dlq`).catch(() => undefined);
      await ch.deleteExchange(EXCHANGE).catch(() => undefined);
      await broker.close();
    }
  });

  const ready = async () => call(app, '/ready');
  const unroutableLines = (channel: string) => lines.filter((l) => l.level === 40 && l.channel === channel && /unroutable/.test(l.msg));

  it('configure still works; /ready stays 200 and names the unroutable channel; one log line per channel, not per message', async () => {
    for (let i = 0; i < 4; i++) await configureTenant(app, `unroutable-${i}`); // AppConfigUpdated on app-events, x4
    const r = await until(ready, (x) => x.body?.checks?.['channel app-events'] !== undefined, 30_000);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ready');
    expect(r.body.checks['channel app-events']).toMatch(/^degraded: unroutable since .*no queue bound to routing key "app-events" on exchange "oap-unroutable-/);
    expect(r.body.degraded).toContain('channel app-events');
    expect(r.body.checks.transport).toBe('ok');

    // the four messages (and their retries) came back unroutable, yet the log has one line for the channel
    await until(async () => (await rt.deps.db.query<any>(`SELECT count(*)::int AS n FROM outbox WHERE channel = 'app-events' AND attempts >= 2`)).rows[0].n, (n) => n >= 4, 30_000);
    expect(unroutableLines('app-events')).toHaveLength(1);
    expect(unroutableLines('app-events')[0]!.msg).toContain('no queue is bound to routing key "app-events"');
    expect(lines.filter((l) => l.msg === 'outbox delivery failed; will retry' && /unroutable/.test(l.error ?? ''))).toEqual([]);
    const pending = (await rt.deps.db.query<any>(`SELECT count(*)::int AS n FROM outbox WHERE channel = 'app-events' AND state = 'pending'`)).rows[0].n;
    expect(pending).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('binding a queue to the routing key delivers the waiting messages and clears the degraded channel', async () => {
    const ch = await broker.createChannel();
    const q = `${APP_ID}.app-events.test`;
    await ch.assertQueue(q, { durable: false, autoDelete: false });
    await ch.bindQueue(q, EXCHANGE, 'app-events');
    // app-events clears; payment-method-commands (queued behind it on the tenant's config key) is tried next and reported
    let r = await until(ready, (x) => x.body?.checks?.['channel app-events'] === undefined && (x.body?.degraded ?? []).includes('channel payment-method-commands'), 60_000);
    expect(r.status).toBe(200);
    // AddPaymentMethod (and, for a marketplace tenant, ReadyForMerchantAppOnboarding once its turn comes): nothing bound
    expect(r.body.degraded).toContain('channel payment-method-commands');
    expect(r.body.degraded.filter((c: string) => !['channel payment-method-commands', 'channel merchant-app-events'].includes(c))).toEqual([]);
    await ch.bindQueue(q, EXCHANGE, 'payment-method-commands');
    await ch.bindQueue(q, EXCHANGE, 'merchant-app-events');
    r = await until(ready, (x) => x.body?.degraded === undefined, 60_000);
    expect(r.body).toMatchObject({ status: 'ready', checks: { channels: 'ok', transport: 'ok' } });
    const delivered = await until(async () => (await ch.checkQueue(q)).messageCount, (n) => n >= 4, 30_000);
    expect(delivered).toBeGreaterThanOrEqual(4);
    expect(lines.some((l) => l.channel === 'app-events' && /routable again/.test(l.msg))).toBe(true);
    await ch.close();
  }, 90_000);
});

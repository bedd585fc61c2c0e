/**
 * `rabbitmq` transport (messages.md 9.3).
 *
 * - Topology, declared (idempotently) on every (re)connection: the durable topic exchange AMQP_EXCHANGE,
 *   the queue `<APP_IDENTIFIER>.payment-commands` bound with routing key `payment-commands`, its
 *   `.retry` queue (dead-lettering back to the main queue through the default exchange) and `.dlq`.
 * - Publish: routing key = channel, body = payload JSON, the properties of 9.3 and the camelCase
 *   attributes as headers, on a confirm channel with `mandatory: true`. A row counts as delivered only
 *   on the broker's ack; a nack, a basic.return (no queue bound yet), a closed channel or no confirm
 *   in time is a failure and the relay retries it. A whole relay batch is published at once and the
 *   confirms are awaited together (`publishBatch`).
 * - The connection is re-established with backoff when the broker goes away; meanwhile publishing
 *   throws and rows stay pending in the outbox.
 * - A channel whose messages come back unroutable (nothing bound to its routing key yet: the shop or bridge has
 *   not bound its queue) is reported by `degradedChannels()` (/ready stays 200 and names it) and logged once per
 *   channel per minute with how many messages came back, not once per message; the first routed message clears it.
 */
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import type { OutboxRow } from '../outbox.js';
import { ATTRIBUTE_NAMES } from './attributes.js';
import { QuietDeliveryError, type BatchPublishOutcome, type PublishResult, type Transport } from './types.js';

export const PAYMENT_COMMANDS = 'payment-commands';

export interface RabbitTopologyNames {
  exchange: string;
  queue: string;
  retryQueue: string;
  dlq: string;
}

export function topologyNames(appIdentifier: string, exchange: string): RabbitTopologyNames {
  const queue = `${appIdentifier}.${PAYMENT_COMMANDS}`;
  return { exchange, queue, retryQueue: `${queue}.retry`, dlq: `${queue}.dlq` };
}

/** Declares the topology of messages.md 9.3 (idempotent). */
export async function assertTopology(ch: { assertExchange: ConfirmChannel['assertExchange']; assertQueue: ConfirmChannel['assertQueue']; bindQueue: ConfirmChannel['bindQueue'] }, names: RabbitTopologyNames): Promise<void> {
  await ch.assertExchange(names.exchange, 'topic', { durable: true });
  await ch.assertQueue(names.queue, { durable: true });
  await ch.bindQueue(names.queue, names.exchange, PAYMENT_COMMANDS);
  await ch.assertQueue(names.retryQueue, {
    durable: true,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': names.queue },
  });
  await ch.assertQueue(names.dlq, { durable: true });
}

/** Adds a heartbeat (15 s) to the URL unless it names one, so a silently dead peer is noticed. */
export function withHeartbeat(url: string, seconds = 15): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(seconds));
    return u.toString();
  } catch {
    return url;
  }
}

/** The URL without credentials, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '********';
    return u.toString();
  } catch {
    return 'amqp://…';
  }
}

export interface ConnectionManagerOptions {
  url: string;
  log: Logger;
  /** Connection name shown in the RabbitMQ management UI. */
  name: string;
  /** Runs on every new connection (create channels, declare topology, start consuming). Throwing closes it and retries. */
  setup: (model: ChannelModel) => Promise<void>;
  /** Called when an established connection is lost (not on close()). */
  onDisconnect?: () => void;
  reconnectMinDelayMs?: number;
  reconnectMaxDelayMs?: number;
}

/** Reconnect backoff: small at first so a broker that is back is used within a second, capped so it stays prompt. */
export const RECONNECT_MIN_DELAY_MS = 250;
export const RECONNECT_MAX_DELAY_MS = 5_000;

/** Delay before reconnect attempt `attempt` (1-based): min·2^(attempt−1), at most max, ±20 % jitter within [0, max]. */
export function reconnectDelayMs(attempt: number, min = RECONNECT_MIN_DELAY_MS, max = RECONNECT_MAX_DELAY_MS, random: () => number = Math.random): number {
  const raw = Math.min(max, min * 2 ** Math.min(Math.max(0, attempt - 1), 20));
  return Math.min(max, Math.round(raw * (1 + 0.2 * (2 * random() - 1))));
}

/**
 * Keeps one AMQP connection up: connects, runs `setup`, and on loss (or a failed attempt) reconnects
 * after 250 ms doubling to 5 s (±20 % jitter), until close().
 */
export class AmqpConnectionManager {
  private model: ChannelModel | undefined;
  private ready = false;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private connecting: Promise<void> | undefined;
  private readonly minDelay: number;
  private readonly maxDelay: number;

  constructor(private readonly opts: ConnectionManagerOptions) {
    this.minDelay = opts.reconnectMinDelayMs ?? RECONNECT_MIN_DELAY_MS;
    this.maxDelay = opts.reconnectMaxDelayMs ?? RECONNECT_MAX_DELAY_MS;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connecting = this.connect();
  }

  isConnected(): boolean {
    return this.ready;
  }

  /** Resolves once connected and set up (tests, start-up diagnostics). */
  async waitUntilConnected(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (!this.running) throw new Error('AMQP connection manager is not running');
      if (Date.now() > deadline) throw new Error(`not connected to RabbitMQ within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Drops the current connection (it is re-established); used when a channel breaks. */
  reset(reason: string): void {
    const m = this.model;
    if (!m) return;
    this.opts.log.warn({ connection: this.opts.name, reason }, 'resetting RabbitMQ connection');
    m.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.connecting?.catch(() => undefined);
    const m = this.model;
    this.model = undefined;
    this.ready = false;
    if (m) await m.close().catch(() => undefined);
  }

  private scheduleReconnect(): void {
    if (!this.running || this.timer) return;
    this.attempt++;
    const delay = reconnectDelayMs(this.attempt, this.minDelay, this.maxDelay);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connecting = this.connect();
    }, delay);
    this.timer.unref?.();
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    const { log, name } = this.opts;
    let model: ChannelModel | undefined;
    let lost = false;
    try {
      const amqp = await import('amqplib'); // loaded on the first connect: other transports never load it
      model = await amqp.connect(withHeartbeat(this.opts.url), { clientProperties: { connection_name: name }, timeout: 10_000 });
      const m = model;
      m.on('error', (err: Error) => log.warn({ connection: name, err: err.message }, 'RabbitMQ connection error'));
      m.on('close', () => {
        lost = true;
        if (this.model !== m) return;
        this.model = undefined;
        const wasReady = this.ready;
        this.ready = false;
        if (!this.running) return;
        if (wasReady) {
          log.warn({ connection: name }, 'RabbitMQ connection lost; reconnecting');
          this.opts.onDisconnect?.();
        }
        this.scheduleReconnect();
      });
      this.model = m;
      await this.opts.setup(m);
      if (!this.running) {
        this.model = undefined;
        await m.close().catch(() => undefined);
        return;
      }
      if (lost) throw new Error('connection closed during set-up');
      this.ready = true;
      this.attempt = 0;
      log.info({ connection: name, url: redactUrl(this.opts.url) }, 'connected to RabbitMQ');
    } catch (err) {
      const wasCurrent = this.model === model;
      if (wasCurrent) this.model = undefined;
      this.ready = false;
      if (model && !lost) await model.close().catch(() => undefined);
      if (this.running) {
        log.warn({ connection: name, url: redactUrl(this.opts.url), err: (err as Error).message }, 'RabbitMQ connection attempt failed; retrying');
        this.scheduleReconnect();
      }
    }
  }
}

export interface RabbitMqTransportOptions {
  url: string;
  exchange: string;
  appIdentifier: string;
  log: Logger;
  /** A publish without a broker confirm within this time fails (default 15 s; below the relay lease). */
  confirmTimeoutMs?: number;
  reconnectMinDelayMs?: number;
  reconnectMaxDelayMs?: number;
}

/** An unconfirmed publish; `next`: a later publish of the same message id. */
interface InFlight {
  returned: string | undefined;
  next: InFlight | undefined;
}

/** Unroutable state of one channel: since when, and the messages returned since the last log line. */
interface Unroutable {
  since: Date;
  reply: string;
  sinceLastLog: number;
  lastLogAt: number;
}

/** One log line per unroutable channel per this interval. */
export const UNROUTABLE_LOG_INTERVAL_MS = 60_000;

/** The AMQP message properties of one outbox row (messages.md 9.3). */
export function publishOptions(row: OutboxRow, appIdentifier: string): Options.Publish {
  const attrs = row.attributes as unknown as Record<string, unknown>;
  const headers: Record<string, string> = {};
  for (const a of ATTRIBUTE_NAMES) {
    const v = attrs[a];
    if (v === undefined || v === null || v === '') continue;
    headers[a] = String(v);
  }
  const ts = Date.parse(`${String(attrs.timestamp ?? row.message_timestamp)}Z`);
  return {
    messageId: row.id,
    deliveryMode: 2,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    timestamp: Math.floor((Number.isFinite(ts) ? ts : Date.now()) / 1000),
    type: row.message_name,
    appId: appIdentifier,
    correlationId: typeof attrs.correlationId === 'string' ? attrs.correlationId : row.id,
    headers,
    mandatory: true,
  };
}

export class RabbitMqTransport implements Transport {
  readonly kind = 'rabbitmq';
  readonly names: RabbitTopologyNames;
  private readonly conn: AmqpConnectionManager;
  private channel: ConfirmChannel | undefined;
  /** Unconfirmed publishes by message id, oldest first (a basic.return names the message by its messageId). */
  private readonly inflight = new Map<string, InFlight>();
  private readonly confirmTimeoutMs: number;
  private readonly unroutable = new Map<string, Unroutable>();

  constructor(private readonly opts: RabbitMqTransportOptions) {
    this.names = topologyNames(opts.appIdentifier, opts.exchange);
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 15_000;
    this.conn = new AmqpConnectionManager({
      url: opts.url,
      log: opts.log,
      name: `${opts.appIdentifier} publisher`,
      reconnectMinDelayMs: opts.reconnectMinDelayMs,
      reconnectMaxDelayMs: opts.reconnectMaxDelayMs,
      setup: (model) => this.setup(model),
      onDisconnect: () => {
        this.channel = undefined;
      },
    });
  }

  /** Connects (in the background) and declares the topology. Called by the relay's start(). */
  start(): void {
    this.conn.start();
  }

  isConnected(): boolean {
    return this.conn.isConnected() && this.channel !== undefined;
  }

  waitUntilConnected(timeoutMs?: number): Promise<void> {
    return this.conn.waitUntilConnected(timeoutMs);
  }

  degradedChannels(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [channel, u] of this.unroutable) {
      out[channel] = `unroutable since ${u.since.toISOString()}: no queue bound to routing key "${channel}" on exchange "${this.opts.exchange}" (messages wait in the outbox)`;
    }
    return out;
  }

  /** Records one returned message of `channel`; logs at most one line per channel per UNROUTABLE_LOG_INTERVAL_MS. */
  private noteUnroutable(channel: string, reply: string): void {
    const now = Date.now();
    let u = this.unroutable.get(channel);
    if (!u) this.unroutable.set(channel, (u = { since: new Date(now), reply, sinceLastLog: 0, lastLogAt: 0 }));
    u.sinceLastLog++;
    if (now - u.lastLogAt < UNROUTABLE_LOG_INTERVAL_MS) return;
    this.opts.log.warn(
      { channel, exchange: this.opts.exchange, routingKey: channel, returned: u.sinceLastLog, unroutableSince: u.since.toISOString(), reply: u.reply },
      `RabbitMQ: ${u.sinceLastLog} message(s) on channel "${channel}" unroutable: no queue is bound to routing key "${channel}" on exchange "${this.opts.exchange}"; they stay in the outbox and are retried. Bind the shop's or bridge's queue (docs/production.md, "RabbitMQ topology").`,
    );
    u.sinceLastLog = 0;
    u.lastLogAt = now;
  }

  private noteRouted(channel: string): void {
    const u = this.unroutable.get(channel);
    if (!u) return;
    this.unroutable.delete(channel);
    this.opts.log.info({ channel, exchange: this.opts.exchange, unroutableSince: u.since.toISOString() }, `RabbitMQ: channel "${channel}" is routable again`);
  }

  async close(): Promise<void> {
    await this.conn.close();
    this.channel = undefined;
  }

  private async setup(model: ChannelModel): Promise<void> {
    const ch = await model.createConfirmChannel();
    ch.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'RabbitMQ publisher channel error'));
    ch.on('return', (msg: Message) => {
      const id = msg.properties.messageId as string | undefined;
      let entry = id === undefined ? undefined : this.inflight.get(id);
      while (entry && entry.returned !== undefined) entry = entry.next;
      const f = msg.fields as unknown as { replyCode?: number; replyText?: string };
      if (entry) entry.returned = `${f.replyCode ?? ''} ${f.replyText ?? 'returned'}`.trim();
    });
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = undefined;
      this.conn.reset('publisher channel closed');
    });
    await assertTopology(ch, this.names);
    this.channel = ch;
  }

  async publish(row: OutboxRow): Promise<PublishResult> {
    const [outcome] = await this.publishBatch([row]);
    if (!outcome!.ok) throw outcome!.error;
    return {};
  }

  /**
   * Publishes all rows at once and waits for their confirms together; one outcome per row, in order. One timer for
   * the whole batch: a row without a confirm within `confirmTimeoutMs` of the batch's start fails (and a row not yet
   * written by then is not written). Per row only its confirm callback and its in-flight entry: no promise or timer
   * of its own (a batch is 500 rows; the relay's CPU per message is what limits its throughput, README "Benchmark").
   */
  async publishBatch(rows: OutboxRow[]): Promise<BatchPublishOutcome[]> {
    const ch = this.channel;
    if (!ch || !this.conn.isConnected()) {
      const error = new Error(`rabbitmq: not connected to ${redactUrl(this.opts.url)}`);
      return rows.map(() => ({ ok: false, error }));
    }
    const outcomes = new Array<BatchPublishOutcome | undefined>(rows.length);
    const entries = new Array<InFlight | undefined>(rows.length);
    let open = rows.length;
    let allSettled!: () => void;
    const settled = new Promise<void>((resolve) => (allSettled = resolve));
    const finish = (i: number, err: Error | undefined): void => {
      if (outcomes[i] !== undefined) return;
      const row = rows[i]!;
      const entry = entries[i];
      if (entry) this.forget(row.id, entry);
      if (err) outcomes[i] = { ok: false, error: err };
      else if (entry?.returned !== undefined) {
        this.noteUnroutable(row.channel, entry.returned);
        outcomes[i] = { ok: false, error: new QuietDeliveryError(`rabbitmq: unroutable, no queue bound for routing key "${row.channel}" on exchange "${this.opts.exchange}" (${entry.returned})`) };
      } else {
        this.noteRouted(row.channel);
        outcomes[i] = { ok: true };
      }
      if (--open === 0) allSettled();
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const error = new Error(`rabbitmq: no publisher confirm within ${this.confirmTimeoutMs} ms`);
      for (let i = 0; i < rows.length; i++) finish(i, error);
    }, this.confirmTimeoutMs);
    try {
      for (let i = 0; i < rows.length && !timedOut; i++) {
        const row = rows[i]!;
        const entry: InFlight = { returned: undefined, next: undefined };
        entries[i] = entry;
        this.remember(row.id, entry);
        let flowing = true;
        try {
          flowing = ch.publish(this.opts.exchange, row.channel, Buffer.from(JSON.stringify(row.payload), 'utf8'), publishOptions(row, this.opts.appIdentifier), (err: unknown) =>
            finish(i, err ? new Error(`rabbitmq: publish not confirmed (${err instanceof Error ? err.message : 'nack'})`) : undefined),
          );
        } catch (err) {
          finish(i, new Error(`rabbitmq: publish failed (${(err as Error).message})`));
        }
        if (!flowing) await waitForDrain(ch);
      }
      if (open > 0) await settled;
      return outcomes as BatchPublishOutcome[];
    } finally {
      clearTimeout(timer);
    }
  }

  /** Adds an unconfirmed publish of message `id` (the same id may be in flight more than once: a list). */
  private remember(id: string, entry: InFlight): void {
    const first = this.inflight.get(id);
    if (first === undefined) {
      this.inflight.set(id, entry);
      return;
    }
    let last = first;
    while (last.next) last = last.next;
    last.next = entry;
  }

  private forget(id: string, entry: InFlight): void {
    const first = this.inflight.get(id);
    if (first === entry) {
      if (entry.next) this.inflight.set(id, entry.next);
      else this.inflight.delete(id);
      return;
    }
    for (let e = first; e; e = e.next) {
      if (e.next === entry) {
        e.next = entry.next;
        return;
      }
    }
  }
}

/** Waits until the channel's write buffer drained (or it closed). */
export function waitForDrain(ch: ConfirmChannel): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      ch.off('drain', done);
      ch.off('close', done);
      resolve();
    };
    ch.once('drain', done);
    ch.once('close', done);
  });
}

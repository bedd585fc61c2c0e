/**
 * RabbitMQ consumer of `payment-commands` (messages.md 8 and 9.3): consumes
 * `<APP_IDENTIFIER>.payment-commands` with prefetch 20 and manual acknowledgement.
 *
 * 1. Decode (type from header transferName / name / event, else property `type`; tenant from header
 *    tenantIdentifier / storeReference; body a JSON object). Undecodable → a copy goes to `.dlq` with
 *    `x-last-error`, then the original is acked.
 * 2. Store in the command inbox (one transaction), then ack. A duplicate (same transport message id) is
 *    acked without effect.
 * 3. Inbox write failed → a copy goes to `.retry` with `x-retry-count` + 1 and a per-message expiration
 *    of 1 s, 5 s, 30 s, 2 min, 10 min (it dead-letters back to the main queue); after the 5th retry it
 *    goes to `.dlq` with `x-retry-count` and `x-last-error`. The original is acked only once the copy is
 *    confirmed by the broker.
 *
 * The connection is re-established with backoff when lost; unacked messages are redelivered by the
 * broker and de-duplicated by the inbox.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import type { Worker } from '../../runtime.js';
import type { Db, Tx } from '../../store/db.js';
import { storeCommand, type StoreCommandInput, type StoreCommandResult } from '../command-inbox.js';
import { messageTenantOf, messageTypeOf } from '../transports/attributes.js';
import { AmqpConnectionManager, assertTopology, PAYMENT_COMMANDS, topologyNames, type RabbitTopologyNames } from '../transports/rabbitmq.js';

/** Retry delays of 9.3 step 3 (retries 1 to 5). */
export const AMQP_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000];
export const AMQP_PREFETCH = 20;
/** Header that keeps the original routing key on retry copies (they come back with the queue name). */
export const ORIGINAL_ROUTING_KEY_HEADER = 'x-original-routing-key';
const COPY_ID_HEADER = 'x-copy-id';

export interface RabbitMqConsumerOptions {
  url: string;
  exchange: string;
  appIdentifier: string;
  db: Db;
  log: Logger;
  prefetch?: number;
  /** Override of the retry delays (tests); its length is the number of retries before the DLQ. */
  retryDelaysMs?: number[];
  /** Inbox writer (tests may inject failures); default storeCommand. */
  store?: (tx: Tx, input: StoreCommandInput) => Promise<StoreCommandResult>;
  reconnectMinDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** How long a copy to .retry/.dlq may wait for its confirm (default 15 s). */
  confirmTimeoutMs?: number;
}

export type DecodedAmqpCommand =
  | { ok: true; messageName: string; tenantIdentifier: string; payload: Record<string, unknown>; attributes: Record<string, string>; transportMessageId: string }
  | { ok: false; error: string; attributes: Record<string, string>; transportMessageId: string };

function headerString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}

/** Decodes a delivery (messages.md 9.3 step 1) and computes its transport message id (section 8). */
export function decodeAmqpCommand(msg: Pick<Message, 'content' | 'fields' | 'properties'>): DecodedAmqpCommand {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase().startsWith('x-')) continue;
    const s = headerString(v);
    if (s !== undefined) attributes[k] = s;
  }
  const propMessageId = typeof msg.properties.messageId === 'string' && msg.properties.messageId.trim() !== '' ? msg.properties.messageId.trim() : undefined;
  if (propMessageId && attributes.messageId === undefined) attributes.messageId = propMessageId;
  const propType = typeof msg.properties.type === 'string' && msg.properties.type.trim() !== '' ? msg.properties.type.trim() : undefined;
  const messageName = messageTypeOf(attributes) ?? propType;
  const tenantIdentifier = messageTenantOf(attributes);
  const body = msg.content.toString('utf8');
  const routingKey = headerString(headers[ORIGINAL_ROUTING_KEY_HEADER]) ?? msg.fields.routingKey;
  const transportMessageId =
    propMessageId ?? createHash('sha256').update(`${routingKey}\n${messageName ?? ''}\n${tenantIdentifier ?? ''}\n${body}`, 'utf8').digest('hex');

  if (!messageName) return { ok: false, error: 'no message type (headers transferName, name, event or property type)', attributes, transportMessageId };
  if (!tenantIdentifier) return { ok: false, error: 'no tenant (headers tenantIdentifier or storeReference)', attributes, transportMessageId };
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    return { ok: false, error: 'body is not JSON', attributes, transportMessageId };
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, error: 'body is not a JSON object', attributes, transportMessageId };
  }
  return { ok: true, messageName, tenantIdentifier, payload: payload as Record<string, unknown>, attributes, transportMessageId };
}

/** The retry count a delivery carries (header x-retry-count; 0 when absent). */
export function retryCountOf(msg: Pick<Message, 'properties'>): number {
  const v = Number(headerString((msg.properties.headers ?? {})['x-retry-count']) ?? 0);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

export class RabbitMqCommandConsumer implements Worker {
  readonly name = 'rabbitmq-command-consumer';
  readonly names: RabbitTopologyNames;
  private readonly conn: AmqpConnectionManager;
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly returned = new Map<string, string>();
  private readonly retryDelays: number[];
  private readonly store: (tx: Tx, input: StoreCommandInput) => Promise<StoreCommandResult>;
  private readonly confirmTimeoutMs: number;

  constructor(private readonly opts: RabbitMqConsumerOptions) {
    this.names = topologyNames(opts.appIdentifier, opts.exchange);
    this.retryDelays = opts.retryDelaysMs ?? AMQP_RETRY_DELAYS_MS;
    this.store = opts.store ?? storeCommand;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 15_000;
    this.conn = new AmqpConnectionManager({
      url: opts.url,
      log: opts.log,
      name: `${opts.appIdentifier} consumer`,
      reconnectMinDelayMs: opts.reconnectMinDelayMs,
      reconnectMaxDelayMs: opts.reconnectMaxDelayMs,
      setup: (model) => this.setup(model),
      onDisconnect: () => {
        this.channel = undefined;
        this.consumerTag = undefined;
      },
    });
  }

  start(): void {
    this.conn.start();
  }

  isConnected(): boolean {
    return this.conn.isConnected() && this.channel !== undefined;
  }

  waitUntilConnected(timeoutMs?: number): Promise<void> {
    return this.conn.waitUntilConnected(timeoutMs);
  }

  /** Stops consuming, lets in-flight deliveries finish (stored and acked), then disconnects. */
  async stop(): Promise<void> {
    const ch = this.channel;
    const tag = this.consumerTag;
    if (ch && tag) await ch.cancel(tag).catch(() => undefined);
    await Promise.allSettled([...this.inflight]);
    this.channel = undefined;
    // Close the channel first and wait for close-ok: amqplib multiplexes channel frames, so a connection close could
    // reach the broker before the last acks of this channel, and the broker would requeue those messages (already
    // stored, or already copied to .retry/.dlq) as if never handled. Channel close travels after them on the channel.
    if (ch) await ch.close().catch(() => undefined);
    await this.conn.close();
  }

  private async setup(model: ChannelModel): Promise<void> {
    const ch = await model.createConfirmChannel();
    ch.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'RabbitMQ consumer channel error'));
    ch.on('return', (msg: Message) => {
      const id = headerString((msg.properties.headers ?? {})[COPY_ID_HEADER]);
      const f = msg.fields as unknown as { replyCode?: number; replyText?: string };
      if (id) this.returned.set(id, `${f.replyCode ?? ''} ${f.replyText ?? 'returned'}`.trim());
    });
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = undefined;
      this.consumerTag = undefined;
      this.conn.reset('consumer channel closed');
    });
    await assertTopology(ch, this.names);
    await ch.prefetch(this.opts.prefetch ?? AMQP_PREFETCH);
    this.channel = ch;
    const r = await ch.consume(this.names.queue, (msg) => this.onDelivery(ch, msg), { noAck: false });
    this.consumerTag = r.consumerTag;
  }

  private onDelivery(ch: ConfirmChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (e.g. the queue was deleted): reconnect and declare again.
      if (this.channel === ch) this.conn.reset('consumer cancelled by the broker');
      return;
    }
    const p: Promise<void> = this.handle(ch, msg)
      .catch((err: unknown) => this.opts.log.error({ err, deliveryTag: msg.fields.deliveryTag }, 'RabbitMQ command delivery not handled'))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async handle(ch: ConfirmChannel, msg: ConsumeMessage): Promise<void> {
    const log = this.opts.log;
    const decoded = decodeAmqpCommand(msg);
    if (!decoded.ok) {
      log.warn({ transportMessageId: decoded.transportMessageId, error: decoded.error }, 'undecodable payment command moved to the dead-letter queue');
      await this.copyOrRequeue(ch, msg, this.names.dlq, { 'x-last-error': decoded.error });
      return;
    }
    try {
      const r = await this.opts.db.tx((tx) =>
        this.store(tx, {
          transport: 'rabbitmq',
          channel: PAYMENT_COMMANDS,
          transportMessageId: decoded.transportMessageId,
          messageName: decoded.messageName,
          tenantIdentifier: decoded.tenantIdentifier,
          attributes: decoded.attributes,
          payload: decoded.payload,
        }),
      );
      log.debug({ transportMessageId: decoded.transportMessageId, messageName: decoded.messageName, inboxId: r.id, duplicate: r.duplicate }, 'payment command received');
      safeAck(ch, msg);
      return;
    } catch (err) {
      const error = ((err as Error)?.message ?? String(err)).slice(0, 1000) || 'inbox write failed';
      const count = retryCountOf(msg) + 1;
      if (count > this.retryDelays.length) {
        log.error({ transportMessageId: decoded.transportMessageId, retries: count - 1, error }, 'payment command could not be stored; moved to the dead-letter queue');
        await this.copyOrRequeue(ch, msg, this.names.dlq, { 'x-retry-count': count - 1, 'x-last-error': error });
      } else {
        const delay = this.retryDelays[count - 1]!;
        log.warn({ transportMessageId: decoded.transportMessageId, retry: count, retryInMs: delay, error }, 'payment command could not be stored; retrying');
        await this.copyOrRequeue(
          ch,
          msg,
          this.names.retryQueue,
          { 'x-retry-count': count, 'x-last-error': error, [ORIGINAL_ROUTING_KEY_HEADER]: headerString((msg.properties.headers ?? {})[ORIGINAL_ROUTING_KEY_HEADER]) ?? msg.fields.routingKey },
          String(delay),
        );
      }
    }
  }

  /** Publishes a confirmed copy to `queue`, then acks the original; if the copy fails, requeues the original. */
  private async copyOrRequeue(ch: ConfirmChannel, msg: ConsumeMessage, queue: string, extraHeaders: Record<string, unknown>, expiration?: string): Promise<void> {
    try {
      await this.publishCopy(ch, msg, queue, extraHeaders, expiration);
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message, queue }, 'could not move a payment command; it is requeued');
      await new Promise((r) => setTimeout(r, 1000));
      try {
        ch.nack(msg, false, true);
      } catch {
        /* channel gone: the broker redelivers */
      }
      return;
    }
    safeAck(ch, msg);
  }

  private publishCopy(ch: ConfirmChannel, msg: ConsumeMessage, queue: string, extraHeaders: Record<string, unknown>, expiration?: string): Promise<void> {
    const p = msg.properties;
    const headers: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((p.headers ?? {}) as Record<string, unknown>)) {
      if (k === 'x-death' || k.startsWith('x-first-death') || k.startsWith('x-last-death') || k === COPY_ID_HEADER) continue;
      headers[k] = v;
    }
    Object.assign(headers, extraHeaders);
    const copyId = randomUUID();
    headers[COPY_ID_HEADER] = copyId;
    const options: Options.Publish = {
      headers,
      mandatory: true,
      deliveryMode: 2,
      ...(p.contentType ? { contentType: p.contentType } : {}),
      ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
      ...(p.messageId ? { messageId: p.messageId } : {}),
      ...(p.correlationId ? { correlationId: p.correlationId } : {}),
      ...(p.type ? { type: p.type } : {}),
      ...(p.appId ? { appId: p.appId } : {}),
      ...(p.timestamp !== undefined && p.timestamp !== null ? { timestamp: p.timestamp } : {}),
      ...(expiration !== undefined ? { expiration } : {}),
    };
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const returned = this.returned.get(copyId);
        this.returned.delete(copyId);
        if (err) reject(err);
        else if (returned !== undefined) reject(new Error(`copy to ${queue} was returned (${returned})`));
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`no confirm for the copy to ${queue}`)), this.confirmTimeoutMs);
      try {
        ch.sendToQueue(queue, msg.content, options, (err: unknown) => finish(err ? new Error(`copy to ${queue} not confirmed`) : undefined));
      } catch (err) {
        finish(err as Error);
      }
    });
  }
}

function safeAck(ch: ConfirmChannel, msg: ConsumeMessage): void {
  try {
    ch.ack(msg);
  } catch {
    /* channel closed: the broker redelivers and the inbox drops the duplicate */
  }
}

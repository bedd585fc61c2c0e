/**
 * `http` consumer of `payment-commands` (messages.md 8 and 9.1): polls the Event Platform
 *
 *   GET {MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL}payment-commands?limit=100   (Authorization, Consumer-Id)
 *
 * stores every returned message in the command inbox in one transaction (undecodable ones as `dead`
 * with the reason), and only after that commit acknowledges them:
 *
 *   DELETE {receiverBaseUrl}payment-commands   {"messageIds": [...]}
 *
 * Polls again at once after a non-empty answer, else after MESSAGE_POLL_INTERVAL_MS; on errors it backs
 * off 1 s doubling to 60 s. A failed acknowledgement is not fatal: the Event Platform re-delivers and
 * the inbox drops the duplicates by MessageId.
 */
import type { Logger } from 'pino';
import type { Worker } from '../../runtime.js';
import type { Db } from '../../store/db.js';
import { storeCommand, type StoreCommandInput } from '../command-inbox.js';
import type { TokenProvider } from '../token.js';
import { messageTenantOf, messageTypeOf } from '../transports/attributes.js';
import { withTrailingSlash } from '../transports/http.js';

export const HTTP_RECEIVE_LIMIT = 100;
const CHANNEL = 'payment-commands';

export interface HttpCommandConsumerOptions {
  receiverBaseUrl: string;
  consumerId: string;
  pollIntervalMs: number;
  tokens: TokenProvider;
  db: Db;
  log: Logger;
  fetch?: typeof fetch;
  /** First back-off after an error (default 1 s), doubling up to backoffMaxMs (default 60 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Timeout of one request (default 30 s). */
  requestTimeoutMs?: number;
}

interface EventPlatformMessage {
  MessageId?: unknown;
  MessageBody?: unknown;
  MessageAttributes?: unknown;
}

/** One received element turned into an inbox row (messages.md 8: undecodable → stored `dead` with the reason). */
export function decodeHttpCommand(element: EventPlatformMessage, messageId: string): StoreCommandInput {
  const attributes: Record<string, string> = {};
  const rawAttrs = element.MessageAttributes;
  if (rawAttrs && typeof rawAttrs === 'object' && !Array.isArray(rawAttrs)) {
    for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
      if (typeof v === 'string') attributes[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') attributes[k] = String(v);
      else if (v && typeof v === 'object' && typeof (v as { StringValue?: unknown }).StringValue === 'string') {
        attributes[k] = (v as { StringValue: string }).StringValue; // SQS-style attribute value
      }
    }
  }
  const messageName = messageTypeOf(attributes);
  const tenantIdentifier = messageTenantOf(attributes);
  const base = { transport: 'http' as const, channel: CHANNEL, transportMessageId: messageId, messageName, tenantIdentifier, attributes };
  let payload: unknown;
  let bodyError: string | undefined;
  if (typeof element.MessageBody === 'string') {
    try {
      payload = JSON.parse(element.MessageBody);
    } catch {
      bodyError = 'MessageBody is not JSON';
    }
  } else if (element.MessageBody !== undefined) {
    payload = element.MessageBody;
  } else {
    bodyError = 'MessageBody is missing';
  }
  if (!bodyError && (payload === null || typeof payload !== 'object' || Array.isArray(payload))) {
    bodyError = 'MessageBody is not a JSON object';
    payload = undefined;
  }
  const reason = !messageName
    ? 'no message type (attributes transferName, name or event)'
    : !tenantIdentifier
      ? 'no tenant (attributes tenantIdentifier or storeReference)'
      : bodyError;
  if (reason) return { ...base, payload, state: 'dead', lastError: `undecodable: ${reason}` };
  return { ...base, payload };
}

/** Back-off after `failures` consecutive errors: base·2^(failures−1), capped (1 s doubling to 60 s by default). */
export function receiveBackoffMs(failures: number, base = 1000, max = 60_000): number {
  return Math.min(max, base * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** The Event Platform was unreachable or answered an error (as opposed to a local failure, e.g. the database). */
class EventPlatformError extends Error {}

export class HttpCommandConsumer implements Worker {
  readonly name = 'http-command-consumer';
  private readonly url: string;
  private readonly fetchFn: typeof fetch;
  private readonly backoffBase: number;
  private readonly backoffMax: number;
  private readonly timeoutMs: number;
  private running = false;
  private loopPromise: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private wakeUp: (() => void) | undefined;
  private failures = 0;
  private lastPollOk: boolean | undefined;

  constructor(private readonly opts: HttpCommandConsumerOptions) {
    this.url = withTrailingSlash(opts.receiverBaseUrl) + CHANNEL;
    this.fetchFn = opts.fetch ?? fetch;
    this.backoffBase = opts.backoffBaseMs ?? 1000;
    this.backoffMax = opts.backoffMaxMs ?? 60_000;
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopPromise = this.loop();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort?.abort();
    this.wakeUp?.();
    await this.loopPromise;
    this.loopPromise = undefined;
  }

  /** Whether the last poll reached the Event Platform (undefined before the first one). */
  isConnected(): boolean | undefined {
    return this.lastPollOk;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let delay: number;
      try {
        const n = await this.pollOnce();
        this.failures = 0;
        this.lastPollOk = true;
        delay = n > 0 ? 0 : this.opts.pollIntervalMs;
      } catch (err) {
        if (!this.running) break;
        this.failures++;
        if (err instanceof EventPlatformError) this.lastPollOk = false;
        delay = receiveBackoffMs(this.failures, this.backoffBase, this.backoffMax);
        this.opts.log.warn({ err: (err as Error).message, retryInMs: delay, worker: this.name }, 'receiving payment-commands from the Event Platform failed');
      }
      if (!this.running) break;
      if (delay > 0) await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
    });
  }

  private async request(method: 'GET' | 'DELETE', url: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json', 'Consumer-Id': this.opts.consumerId };
    const token = await this.opts.tokens.getToken().catch((err: unknown) => {
      throw new EventPlatformError((err as Error).message);
    });
    if (token) headers.Authorization = `Bearer ${token}`;
    this.abort = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.timeoutMs)]);
    let res: Response;
    try {
      res = await this.fetchFn(url, { method, headers, body, signal });
    } catch (err) {
      const e = err as Error;
      throw new EventPlatformError(`${method} ${CHANNEL}: ${e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : e.message}`);
    }
    if (res.status === 401 || res.status === 403) this.opts.tokens.invalidate();
    return res;
  }

  /** One receive → store → acknowledge round; returns the number of messages received. */
  async pollOnce(): Promise<number> {
    const res = await this.request('GET', `${this.url}?limit=${HTTP_RECEIVE_LIMIT}`);
    const text = await res.text().catch(() => '');
    if (res.status < 200 || res.status >= 300) throw new EventPlatformError(`GET ${CHANNEL} answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? [] : JSON.parse(text);
    } catch {
      throw new EventPlatformError(`GET ${CHANNEL} answered with a body that is not JSON`);
    }
    if (!Array.isArray(parsed)) throw new EventPlatformError(`GET ${CHANNEL} answered with something other than a JSON array`);
    this.lastPollOk = true;
    if (parsed.length === 0) return 0;

    const inputs: StoreCommandInput[] = [];
    for (const el of parsed as unknown[]) {
      const element = (el && typeof el === 'object' ? el : {}) as EventPlatformMessage;
      const id = typeof element.MessageId === 'string' ? element.MessageId.trim() : typeof element.MessageId === 'number' ? String(element.MessageId) : '';
      if (!id) {
        this.opts.log.error({ worker: this.name }, 'Event Platform returned a message without MessageId; it cannot be stored or acknowledged');
        continue;
      }
      inputs.push(decodeHttpCommand(element, id));
    }
    if (inputs.length === 0) return parsed.length;

    // Durable inbox write first; the acknowledgement only after the commit (messages.md 9.1).
    const results = await this.opts.db.tx(async (tx) => {
      const out = [];
      for (const input of inputs) out.push(await storeCommand(tx, input));
      return out;
    });
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      if (input.state === 'dead') {
        this.opts.log.warn({ transportMessageId: input.transportMessageId, error: input.lastError }, 'undecodable payment command stored as dead');
      } else {
        this.opts.log.debug({ transportMessageId: input.transportMessageId, messageName: input.messageName, inboxId: results[i]!.id, duplicate: results[i]!.duplicate }, 'payment command received');
      }
    }

    const ackRes = await this.request('DELETE', this.url, JSON.stringify({ messageIds: inputs.map((m) => m.transportMessageId) }));
    await ackRes.text().catch(() => '');
    if (ackRes.status < 200 || ackRes.status >= 300) {
      throw new EventPlatformError(`DELETE ${CHANNEL} (acknowledge ${inputs.length} messages) answered HTTP ${ackRes.status}`);
    }
    return parsed.length;
  }
}

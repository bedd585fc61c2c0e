/**
 * Webhook endpoints (CRUD) and signed, at-least-once delivery with test controls.
 */
import { createHmac } from 'node:crypto';
import { type Ctx, type EmittedEvent, type Json, type State, bool, invalid, mergeMetadata, newId, now, rand, str } from './core.js';

export interface WebhookMode {
  /** Deliver every event twice (same event id, fresh signature). */
  duplicate?: boolean;
  /** Deliver each batch of queued events newest first. */
  outOfOrder?: boolean;
  /** Wait this long before delivering a batch (events arriving meanwhile join the batch). */
  delayMs?: number;
}

export interface Delivery {
  eventId: string;
  type: string;
  endpointId: string;
  url: string;
  /** Connected account of a Connect event, else null. */
  account: string | null;
  livemode: boolean;
  attempt: number;
  /** HTTP status of the endpoint's answer, or null when the request failed (`error`). */
  status: number | null;
  ok: boolean;
  responseBody: string;
  error?: string;
  payload: string;
  signature: string;
  at: number;
}

interface Item {
  event: Json;
  endpointId: string;
  attempt: number;
}

/** Stripe's `Stripe-Signature` header value for a payload. */
export function signPayload(payload: string, secret: string, timestamp = now()): string {
  const sig = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
  return `t=${timestamp},v1=${sig}`;
}

export class Webhooks {
  private queue: Item[] = [];
  private retries: { item: Item; timer: NodeJS.Timeout }[] = [];
  private log: Delivery[] = [];
  private paused = false;
  private mode: Required<WebhookMode> = { duplicate: false, outOfOrder: false, delayMs: 0 };
  private pumping: Promise<void> | null = null;
  private closed = false;
  /** Ends the delay of a batch waiting for `delayMs` (flush, close). */
  private wake: (() => void) | null = null;

  constructor(
    private state: State,
    private retryDelaysMs: number[] = [200, 1000, 3000],
  ) {
    state.onEvent = (e) => this.enqueue(e);
  }

  // ---- API handlers -----------------------------------------------------------------------------------

  create(ctx: Ctx, params: Json): Json {
    const url = str(params, 'url', { required: true })!;
    if (!/^https?:\/\//.test(url)) throw invalid('Invalid URL: must be an http(s) URL.', { param: 'url', code: 'url_invalid' });
    const events = Array.isArray(params.enabled_events) ? params.enabled_events : params.enabled_events ? Object.values(params.enabled_events) : [];
    if (events.length === 0) throw invalid('Missing required param: enabled_events.', { code: 'parameter_missing', param: 'enabled_events' });
    const secret = `whsec_${rand(32)}`;
    const obj: Json = {
      id: newId('we'),
      object: 'webhook_endpoint',
      api_version: str(params, 'api_version') ?? null,
      application: null,
      created: now(),
      description: str(params, 'description') ?? null,
      enabled_events: events,
      livemode: ctx.livemode,
      metadata: mergeMetadata({}, params.metadata),
      status: 'enabled',
      url,
    };
    if (bool(params, 'connect')) obj.connect = true;
    const rec = this.state.put('webhook_endpoint', ctx.acct, ctx.livemode, obj, { secret, connect: !!obj.connect });
    return { ...rec.obj, secret };
  }

  update(ctx: Ctx, id: string, params: Json): Json {
    const rec = this.state.get(ctx, id, 'webhook_endpoint');
    const o = rec.obj;
    if (params.url !== undefined) o.url = str(params, 'url');
    if (params.enabled_events !== undefined) o.enabled_events = Array.isArray(params.enabled_events) ? params.enabled_events : Object.values(params.enabled_events);
    if (params.description !== undefined) o.description = str(params, 'description') ?? null;
    const disabled = bool(params, 'disabled');
    if (disabled !== undefined) o.status = disabled ? 'disabled' : 'enabled';
    o.metadata = mergeMetadata(o.metadata, params.metadata);
    return o;
  }

  remove(ctx: Ctx, id: string): Json {
    const rec = this.state.get(ctx, id, 'webhook_endpoint');
    this.state.recs.delete(rec.id);
    return { id: rec.id, object: 'webhook_endpoint', deleted: true };
  }

  // ---- Delivery ---------------------------------------------------------------------------------------

  /** Endpoints receiving an event: the owner's endpoints, or the platform's Connect endpoints for a connected account. */
  private targets(e: EmittedEvent): string[] {
    const platform = this.state.accounts.get(e.acct)?.platform ?? null;
    const owner = platform ?? e.acct;
    const out: string[] = [];
    for (const r of this.state.recs.values()) {
      if (r.type !== 'webhook_endpoint' || r.acct !== owner || r.livemode !== e.event.livemode) continue;
      if (r.x.connect !== !!platform || r.obj.status !== 'enabled') continue;
      const ev: string[] = r.obj.enabled_events;
      if (ev.includes('*') || ev.includes(e.event.type)) out.push(r.id);
    }
    return out;
  }

  private enqueue(e: EmittedEvent): void {
    const targets = this.targets(e);
    e.event.pending_webhooks = targets.length;
    for (const endpointId of targets) this.queue.push({ event: e.event, endpointId, attempt: 1 });
    if (targets.length) this.schedule();
  }

  private schedule(): void {
    if (this.paused || this.pumping || this.closed) return;
    this.pumping = (async () => {
      if (this.mode.delayMs > 0)
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.mode.delayMs);
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
      this.wake = null;
      while (this.queue.length && !this.paused && !this.closed) await this.deliverBatch();
    })().finally(() => {
      this.pumping = null;
      if (this.queue.length && !this.paused) this.schedule();
    });
  }

  private async deliverBatch(): Promise<Delivery[]> {
    const batch = this.queue.splice(0);
    if (this.mode.outOfOrder) batch.reverse();
    const out: Delivery[] = [];
    for (const item of batch) {
      const d = await this.deliver(item);
      out.push(d);
      if (this.mode.duplicate) out.push(await this.deliver(item));
      if (!d.ok) this.retryLater(item);
    }
    return out;
  }

  private retryLater(item: Item): void {
    const delay = this.retryDelaysMs[item.attempt - 1];
    if (delay === undefined || this.closed) return;
    const next = { ...item, attempt: item.attempt + 1 };
    const entry = {
      item: next,
      timer: setTimeout(() => {
        this.retries = this.retries.filter((r) => r !== entry);
        this.queue.push(next);
        this.schedule();
      }, delay),
    };
    entry.timer.unref();
    this.retries.push(entry);
  }

  private async deliver(item: Item): Promise<Delivery> {
    const ep = this.state.recs.get(item.endpointId);
    const event: Json = { ...item.event, api_version: ep?.obj.api_version ?? this.state.apiVersion };
    const payload = JSON.stringify(event, null, 2);
    const signature = ep ? signPayload(payload, ep.x.secret) : '';
    const d: Delivery = {
      eventId: event.id,
      type: event.type,
      endpointId: item.endpointId,
      url: ep?.obj.url ?? '',
      account: event.account ?? null,
      livemode: event.livemode,
      attempt: item.attempt,
      status: null,
      ok: false,
      responseBody: '',
      payload,
      signature,
      at: Date.now(),
    };
    if (!ep) {
      d.error = 'endpoint deleted';
      this.log.push(d);
      return d;
    }
    try {
      const res = await fetch(ep.obj.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
        body: payload,
        signal: AbortSignal.timeout(10_000),
      });
      d.status = res.status;
      d.ok = res.status >= 200 && res.status < 300;
      d.responseBody = await res.text();
    } catch (e) {
      d.error = (e as Error).message;
    }
    this.log.push(d);
    return d;
  }

  // ---- Test controls ----------------------------------------------------------------------------------

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  setMode(mode: WebhookMode): void {
    this.mode = { ...this.mode, ...mode };
  }

  /**
   * Delivers everything queued now (even when paused, without the delay) and resolves with this flush's deliveries once
   * done, including a delivery already under way. Failures are scheduled for retry. With `{retries: true}` the retries
   * scheduled when the flush starts get one more attempt now as well.
   */
  async flush(opts: { retries?: boolean } = {}): Promise<Delivery[]> {
    this.wake?.();
    if (this.pumping) await this.pumping;
    if (opts.retries)
      for (const r of this.retries.splice(0)) {
        clearTimeout(r.timer);
        this.queue.push(r.item);
      }
    const out: Delivery[] = [];
    while (this.queue.length) out.push(...(await this.deliverBatch()));
    return out;
  }

  /** Every delivery attempt so far, in order. */
  delivered(): Delivery[] {
    return [...this.log];
  }

  /** Events that would be delivered (queued or awaiting a retry). */
  pending(): Json[] {
    return [...this.queue.map((i) => i.event), ...this.retries.map((r) => r.item.event)];
  }

  /** The signing secret of an endpoint (Stripe shows it in the Dashboard at any time). */
  secretOf(endpointId: string): string {
    return this.state.must(endpointId, 'webhook_endpoint').x.secret;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.retries.splice(0)) clearTimeout(r.timer);
    this.wake?.();
    if (this.pumping) await this.pumping.catch(() => {});
  }
}

/**
 * Shared state of the Stripe fake: object records, ids, errors, lists, expansion and event emission.
 * Test-only code: never imported by `src/`.
 */
import { randomBytes } from 'node:crypto';

export const PINNED_API_VERSION = '2026-10-28.endive';

export type Json = Record<string, any>;

/** One stored Stripe object. `acct` is the account owning it (a connected account when made with `Stripe-Account`). */
export interface Rec {
  id: string;
  type: string;
  acct: string;
  livemode: boolean;
  seq: number;
  obj: Json;
  /** Fake-internal data never serialised (test PM behaviour, return URLs, challenge tokens...). */
  x: Json;
}

/** Who is acting: an API request (with its key) or the fake itself (dashboard, browser page, test control). */
export interface Ctx {
  /** Account the request acts on: the Stripe-Account header's account, else the key's account. */
  acct: string;
  livemode: boolean;
  requestId: string | null;
  idempotencyKey: string | null;
}

export class StripeError extends Error {
  constructor(
    public status: number,
    public body: Json,
  ) {
    super(String(body.message ?? body.type));
  }
}

export function err(status: number, type: string, message: string, extra: Json = {}): StripeError {
  const body: Json = { type, message, ...extra };
  if (body.code) body.doc_url = `https://stripe.com/docs/error-codes/${String(body.code).replace(/_/g, '-')}`;
  return new StripeError(status, body);
}

export const invalid = (message: string, extra: Json = {}): StripeError => err(400, 'invalid_request_error', message, extra);
export const missing = (id: string, param = 'id'): StripeError =>
  err(404, 'invalid_request_error', `No such object: '${id}'`, { code: 'resource_missing', param });

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function rand(n = 24): string {
  const b = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[b[i] % ALNUM.length];
  return s;
}
export const newId = (prefix: string): string => `${prefix}_${rand(24)}`;
export const now = (): number => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------------------------
// Parameter coercion (the SDK sends everything as strings)

export function int(params: Json, name: string, opts: { required?: boolean; min?: number } = {}): number | undefined {
  const v = params[name];
  if (v === undefined || v === '') {
    if (opts.required) throw invalid(`Missing required param: ${name}.`, { code: 'parameter_missing', param: name });
    return undefined;
  }
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${String(v)}`, { code: 'parameter_invalid_integer', param: name });
  const n = Number(v);
  if (opts.min !== undefined && n < opts.min)
    throw invalid(`This value must be greater than or equal to ${opts.min}.`, { code: 'parameter_invalid_integer', param: name });
  return n;
}

export function str(params: Json, name: string, opts: { required?: boolean; oneOf?: string[] } = {}): string | undefined {
  const v = params[name];
  if (v === undefined || v === '') {
    if (opts.required) throw invalid(`Missing required param: ${name}.`, { code: 'parameter_missing', param: name });
    return undefined;
  }
  if (typeof v !== 'string') throw invalid(`Invalid string: ${name}`, { code: 'parameter_invalid_string', param: name });
  if (opts.oneOf && !opts.oneOf.includes(v))
    throw invalid(`Invalid ${name}: must be one of ${opts.oneOf.join(', ')}`, { code: 'parameter_invalid_string', param: name });
  return v;
}

export function bool(params: Json, name: string): boolean | undefined {
  const v = params[name];
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === true) return true;
  if (v === 'false' || v === false) return false;
  throw invalid(`Invalid boolean: ${String(v)}`, { code: 'parameter_invalid_boolean', param: name });
}

/** Stripe's metadata rules: ≤ 50 keys, key ≤ 40 chars, value ≤ 500 chars; an empty value removes the key. */
export function mergeMetadata(current: Json, patch: unknown, param = 'metadata'): Json {
  if (patch === undefined) return current;
  if (patch === '') return {};
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw invalid('Invalid metadata', { param });
  const out: Json = { ...current };
  for (const [k, v] of Object.entries(patch as Json)) {
    if (k.length > 40) throw invalid(`Metadata keys can have up to 40 characters.`, { param: `${param}[${k}]` });
    if (typeof v !== 'string') throw invalid(`Invalid metadata value for ${k}`, { param: `${param}[${k}]` });
    if (v.length > 500) throw invalid(`Metadata values can have up to 500 characters.`, { param: `${param}[${k}]` });
    if (v === '') delete out[k];
    else out[k] = v;
  }
  if (Object.keys(out).length > 50) throw invalid('Metadata can have up to 50 keys.', { param });
  return out;
}

/** Converts Stripe form values ("true", "123") of free-form hashes (shipping, billing) to JSON with nulls for absent keys. */
export function address(a: Json | undefined): Json | null {
  if (!a || typeof a !== 'object') return null;
  return {
    city: a.city ?? null,
    country: a.country ?? null,
    line1: a.line1 ?? null,
    line2: a.line2 ?? null,
    postal_code: a.postal_code ?? null,
    state: a.state ?? null,
  };
}

export function shipping(s: Json | undefined): Json | null {
  if (!s || typeof s !== 'object') return null;
  return {
    address: address(s.address),
    carrier: s.carrier ?? null,
    name: s.name ?? null,
    phone: s.phone ?? null,
    tracking_number: s.tracking_number ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// State

export interface KeyRec {
  key: string;
  acct: string;
  livemode: boolean;
  kind: 'secret' | 'restricted' | 'publishable';
  /** Restricted keys: resources (`payment_intents`, `refunds:read`, ...) or '*' */
  permissions: string[] | '*';
}

export interface AccountState {
  /** Parent platform for connected accounts, null for platform accounts. */
  platform: string | null;
  /** Balances per mode and currency. */
  balance: Map<string, { available: number; pending: number }>;
}

export interface EmittedEvent {
  event: Json;
  /** account owning the object (connected account → delivered to the platform's Connect endpoints). */
  acct: string;
}

export class State {
  base = '';
  apiVersion = PINNED_API_VERSION;
  seq = 0;
  recs = new Map<string, Rec>();
  keys = new Map<string, KeyRec>();
  accounts = new Map<string, AccountState>();
  defaultAccount = '';
  /** Called for every event (the webhook dispatcher subscribes). */
  onEvent: (e: EmittedEvent) => void = () => {};
  refundsPending = false;
  multicaptureCancelStatus: 'canceled' | 'succeeded' = 'canceled';

  put(type: string, acct: string, livemode: boolean, obj: Json, x: Json = {}): Rec {
    const rec: Rec = { id: obj.id, type, acct, livemode, seq: ++this.seq, obj, x };
    this.recs.set(rec.id, rec);
    return rec;
  }

  /** Object visible to the context (same owning account and mode), else 404 like Stripe. */
  get(ctx: Ctx, id: unknown, type: string, param = 'id'): Rec {
    const sid = typeof id === 'string' ? id : '';
    const rec = this.recs.get(sid);
    if (!rec || rec.type !== type || rec.acct !== ctx.acct || rec.livemode !== ctx.livemode) throw missing(sid, param);
    return rec;
  }

  /** Any record by id, for test controls. */
  must(id: string, type?: string): Rec {
    const rec = this.recs.get(id);
    if (!rec || (type && rec.type !== type)) throw new Error(`stripe fake: no ${type ?? 'object'} ${id}`);
    return rec;
  }

  ctxOf(rec: Rec): Ctx {
    return { acct: rec.acct, livemode: rec.livemode, requestId: null, idempotencyKey: null };
  }

  list(ctx: Ctx, type: string, params: Json, url: string, filter: (r: Rec) => boolean = () => true): Json {
    const all = [...this.recs.values()]
      .filter((r) => r.type === type && r.acct === ctx.acct && r.livemode === ctx.livemode && filter(r))
      .sort((a, b) => b.seq - a.seq);
    return page(all.map((r) => r.obj), params, url);
  }

  balance(acct: string, livemode: boolean, currency: string): { available: number; pending: number } {
    const st = this.accounts.get(acct);
    if (!st) throw new Error(`stripe fake: no account ${acct}`);
    const k = `${livemode ? 'live' : 'test'}:${currency}`;
    let b = st.balance.get(k);
    if (!b) st.balance.set(k, (b = { available: 0, pending: 0 }));
    return b;
  }

  /** Emits an event (snapshot of the object now) for webhook delivery. */
  emit(ctx: Ctx, type: string, obj: Json, previous?: Json): Json {
    const platform = this.accounts.get(ctx.acct)?.platform ?? null;
    const event: Json = {
      id: newId('evt'),
      object: 'event',
      api_version: this.apiVersion,
      created: now(),
      data: { object: structuredClone(obj), ...(previous ? { previous_attributes: structuredClone(previous) } : {}) },
      livemode: ctx.livemode,
      pending_webhooks: 0,
      request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
      type,
    };
    if (platform) event.account = ctx.acct;
    this.put('event', ctx.acct, ctx.livemode, event);
    this.onEvent({ event, acct: ctx.acct });
    return event;
  }
}

export function page(items: Json[], params: Json, url: string): Json {
  const limit = Math.min(Math.max(Number(params.limit ?? 10) || 10, 1), 100);
  let start = 0;
  if (typeof params.starting_after === 'string') {
    const i = items.findIndex((o) => o.id === params.starting_after);
    start = i < 0 ? items.length : i + 1;
  }
  let end = items.length;
  if (typeof params.ending_before === 'string') {
    const i = items.findIndex((o) => o.id === params.ending_before);
    end = i < 0 ? 0 : i;
    start = Math.max(0, end - limit);
  }
  const data = items.slice(start, Math.min(end, start + limit));
  return { object: 'list', data, has_more: start + limit < end, url };
}

/** Applies `expand[]` paths (dotted, `data.` prefix for lists) by replacing id strings with stored objects. */
export function expand(state: State, body: Json, paths: unknown): Json {
  const list = Array.isArray(paths) ? paths : typeof paths === 'string' ? [paths] : paths && typeof paths === 'object' ? Object.values(paths) : [];
  if (list.length === 0) return body;
  const out = structuredClone(body);
  for (const p of list) if (typeof p === 'string') expandPath(state, out, p.split('.'));
  return out;
}

function expandPath(state: State, node: any, parts: string[]): void {
  if (!node || typeof node !== 'object' || parts.length === 0) return;
  const [head, ...rest] = parts;
  if (Array.isArray(node)) {
    for (const n of node) expandPath(state, n, parts);
    return;
  }
  let v = node[head];
  if (typeof v === 'string') {
    const rec = state.recs.get(v);
    if (rec) node[head] = v = structuredClone(rec.obj);
  }
  if (rest.length) expandPath(state, v, rest);
}

/**
 * Stripe webhooks seen from the app (stripe.md 1.8–1.10): parse (unverified), verify `Stripe-Signature` with the SDK's
 * signature helper against each of the endpoint tenant's secrets, map each event to a port outcome.
 */
import type { ParsedWebhook, ParsedWebhookRequest, WebhookContext, WebhookOutcome, WebhookRequest } from '../types.js';
import { stripeSdk } from './client.js';
import { fromStripeAmount } from './currency.js';
import { declineOf, merchantStatusOf, paymentState, publicDetailsOf, refundStatus } from './mapping.js';

export const SIGNATURE_HEADER = 'stripe-signature';
/** Stripe's default tolerance (never 0: since SDK 23.0.0 that disables the time check). */
export const SIGNATURE_TOLERANCE_S = 300;

/** Events the tenant's account endpoint subscribes to (1.8); `transfer.*` only for marketplaces (8). */
export const ACCOUNT_EVENTS = [
  'payment_intent.amount_capturable_updated',
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'payment_intent.requires_action',
  'payment_intent.processing',
  'charge.captured',
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.refund.updated',
] as const;
export const TRANSFER_EVENTS = ['transfer.created', 'transfer.reversed', 'transfer.updated'] as const;
export const CONNECT_EVENTS = ['account.updated', 'account.application.deauthorized', 'capability.updated'] as const;

type Obj = Record<string, any>;

/** The `Stripe-Signature` header (Node lower-cases names; a repeated header is joined). */
function signatureHeader(headers: WebhookRequest['headers']): string | undefined {
  const v = Object.entries(headers).find(([k]) => k.toLowerCase() === SIGNATURE_HEADER)?.[1];
  return Array.isArray(v) ? v.join(',') : v;
}

interface StripeEventBody {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  account?: string;
  data: { object: Obj; previous_attributes?: Obj };
}

function parseEvent(raw: Buffer): StripeEventBody | null {
  let v: any;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  if (v.object !== undefined && v.object !== 'event') return null;
  if (typeof v.id !== 'string' || !/^evt_[A-Za-z0-9_]{1,200}$/.test(v.id) || typeof v.type !== 'string' || !/^[a-z_.]{1,100}$/.test(v.type)) return null;
  if (typeof v.created !== 'number' || !Number.isFinite(v.created)) return null;
  const obj = v.data?.object;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
  return { id: v.id, type: v.type, created: v.created, livemode: v.livemode === true, ...(typeof v.account === 'string' ? { account: v.account } : {}), data: { object: obj, ...(v.data.previous_attributes ? { previous_attributes: v.data.previous_attributes } : {}) } };
}

const idOf = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : v && typeof v === 'object' && typeof (v as Obj).id === 'string' ? (v as Obj).id : null);

const lastReversal = (tr: Obj): Obj | null => {
  const list = Array.isArray(tr.reversals?.data) ? tr.reversals.data : Array.isArray(tr.reversals) ? tr.reversals : [];
  if (list.length === 0) return null;
  // Stripe lists newest first; take the newest by `created` to be safe.
  return [...list].sort((a: Obj, b: Obj) => Number(b?.created ?? 0) - Number(a?.created ?? 0))[0] ?? null;
};

/** PSP object ids an event concerns (1.8 column 2): the primary one first. */
function objectIdsOf(ev: StripeEventBody): string[] {
  const o = ev.data.object;
  const ids: string[] = [];
  const push = (v: unknown): void => {
    const id = idOf(v);
    if (id && !ids.includes(id)) ids.push(id);
  };
  if (ev.type.startsWith('account.') || ev.type === 'capability.updated') {
    push(ev.type === 'capability.updated' ? o.account : ev.type === 'account.updated' ? o.id : ev.account);
    push(ev.account);
    return ids;
  }
  if (ev.type === 'charge.captured') {
    push(o.id);
    push(o.payment_intent);
    return ids;
  }
  push(o.id);
  if (o.object === 'refund' || ev.type.startsWith('refund.') || ev.type === 'charge.refund.updated') push(o.payment_intent);
  if (ev.type === 'transfer.reversed') push(lastReversal(o));
  return ids;
}

const firstString = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : Array.isArray(v) && typeof v[0] === 'string' && v[0].trim() !== '' ? v[0].trim() : undefined);

/** Parses one Stripe webhook request (unverified). Only requests carrying a `Stripe-Signature` header are Stripe's. */
export function parseStripeWebhook(req: WebhookRequest): ParsedWebhookRequest | null {
  if (!signatureHeader(req.headers)) return null;
  const ev = parseEvent(req.rawBody);
  if (!ev) return null;
  const o = ev.data.object;
  const hint = o.metadata && typeof o.metadata.tenantIdentifier === 'string' ? (o.metadata.tenantIdentifier as string) : undefined;
  const event: ParsedWebhook = {
    eventId: ev.id,
    eventType: ev.type,
    mode: ev.livemode ? 'live' : 'test',
    objectIds: objectIdsOf(ev),
    ...(hint ? { tenantHint: hint } : {}),
    createdAt: new Date(ev.created * 1000),
    payload: req.rawBody,
  };
  const endpoint = firstString(req.query.endpoint);
  return { events: [event], ...(endpoint ? { endpointTenant: endpoint.slice(0, 255) } : {}) };
}

/**
 * `Stripe-Signature: t=..,v1=..[,v1=..]` checked with the SDK's helper for each secret (current, previous, Connect):
 * valid when one matches and the timestamp is within 300 s of `now` (past, and — our addition — future).
 */
export function verifyStripeWebhook(req: WebhookRequest, secrets: string[], now: Date): boolean {
  const h = signatureHeader(req.headers);
  if (!h || h.length > 4096) return false;
  const t = /(?:^|,)\s*t=(\d{1,12})\s*(?:,|$)/.exec(h)?.[1];
  if (!t || Number(t) * 1000 - now.getTime() > SIGNATURE_TOLERANCE_S * 1000) return false;
  const signature = stripeSdk().webhooks.signature;
  if (!signature) return false;
  let ok = false;
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.trim() === '') continue;
    try {
      if (signature.verifyHeader(req.rawBody, h, secret, SIGNATURE_TOLERANCE_S, undefined, now.getTime())) ok = true;
    } catch {
      // wrong secret, malformed header or too old: try the next secret
    }
  }
  return ok;
}

const amountOf = (v: unknown, currency: unknown): number => fromStripeAmount(Number(v ?? 0), String(currency ?? ''));

/** One verified event → outcome (1.8), given what the app knows of the payment (context). */
export function stripeWebhookOutcome(raw: Buffer, context: WebhookContext): WebhookOutcome {
  const ev = parseEvent(raw);
  if (!ev) return { kind: 'ignored', reason: 'unparseable event' };
  const o = ev.data.object;
  const cur = o.currency;
  const payment = (state: ReturnType<typeof paymentState>, extra: Partial<Extract<WebhookOutcome, { kind: 'payment' }>> = {}): WebhookOutcome => ({
    kind: 'payment',
    transactionId: String(o.id),
    state,
    publicDetails: publicDetailsOf(o),
    ...extra,
  });
  const received = (): number => amountOf(o.amount_received, cur);
  const appStatus = context.payment?.status ?? null;
  const automatic = o.capture_method === 'automatic' || o.capture_method === 'automatic_async';

  switch (ev.type) {
    case 'payment_intent.amount_capturable_updated':
      if (o.status !== 'requires_capture') return { kind: 'ignored', reason: `PaymentIntent is ${String(o.status)}` };
      if (received() > 0) return { kind: 'capture', transactionId: o.id, amountCaptured: received(), succeeded: true, final: false };
      return payment('authorized');
    case 'payment_intent.succeeded':
      // Automatic capture, or a manual PI whose authorization the app has not seen yet (events arrive unordered).
      if (automatic || appStatus === 'new') return payment('captured', { amountCaptured: received() });
      return { kind: 'capture', transactionId: o.id, amountCaptured: received(), succeeded: true, final: true };
    case 'charge.captured': {
      const pi = idOf(o.payment_intent);
      if (!pi) return { kind: 'ignored', reason: 'charge without PaymentIntent' };
      const multicapture = o.payment_method_details?.card?.multicapture?.status === 'available';
      return { kind: 'capture', transactionId: pi, amountCaptured: amountOf(o.amount_captured, cur), succeeded: true, ...(multicapture ? {} : { final: true }) };
    }
    case 'payment_intent.payment_failed': {
      const d = declineOf(o);
      return payment('pending', d ? { decline: d } : {});
    }
    case 'payment_intent.requires_action':
      return payment('requires_action');
    case 'payment_intent.processing':
      return payment('pending');
    case 'payment_intent.canceled':
      if (received() > 0) return payment('captured', { amountCaptured: received() });
      // Our own cancel at the declined-attempts cap (3.4): the app reports authorization_failed, not a cancel.
      if (appStatus === 'authorization_failed') return { kind: 'ignored', reason: 'the payment failed at the declined-attempts cap' };
      if (appStatus === 'new' && o.cancellation_reason === 'abandoned' && o.last_payment_error) return payment('failed', declineOf(o) ? { decline: declineOf(o)! } : {});
      return payment('canceled');
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed':
    case 'charge.refund.updated': {
      const pi = idOf(o.payment_intent);
      if (!pi || typeof o.id !== 'string') return { kind: 'ignored', reason: 'refund without PaymentIntent' };
      const status = ev.type === 'refund.failed' ? 'failed' : refundStatus(o.status);
      const refundId = typeof o.metadata?.refundId === 'string' ? o.metadata.refundId : undefined;
      return {
        kind: 'refund',
        transactionId: pi,
        pspRefundId: o.id,
        amount: amountOf(o.amount, cur),
        status,
        ...(o.failure_reason ? { reason: String(o.failure_reason) } : {}),
        ...(refundId ? { refundId } : {}),
      };
    }
    case 'transfer.created':
      return { kind: 'transfer', pspTransferId: String(o.id), status: 'succeeded' };
    case 'transfer.reversed': {
      const last = lastReversal(o);
      return { kind: 'transfer', pspTransferId: String(o.id), status: 'succeeded', ...(idOf(last) ? { reversalId: idOf(last)! } : {}) };
    }
    case 'account.updated':
      return { kind: 'account', accountId: String(o.id), merchantStatus: merchantStatusOf(o) };
    case 'account.application.deauthorized':
      return ev.account ? { kind: 'account', accountId: ev.account, merchantStatus: 'rejected' } : { kind: 'ignored', reason: 'deauthorization without account' };
    case 'capability.updated':
      // The port's outcome mapping cannot call Stripe to re-read the Account; Stripe sends `account.updated` for
      // the same change, which carries the whole Account.
      return { kind: 'ignored', reason: 'capability changes are applied from account.updated' };
    default:
      return { kind: 'ignored', reason: `event type ${ev.type} is not used` };
  }
}

/**
 * Sandbox webhooks seen from the app: parse (unverified), verify `Sandbox-Signature`, map to a WebhookOutcome.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ParsedWebhook, PspPaymentState, WebhookOutcome } from '../types.js';
import { mapPaymentState, publicDetailsOf } from './mapping.js';

export const SIGNATURE_HEADER = 'sandbox-signature';
export const SIGNATURE_TOLERANCE_S = 300;

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(',') : v;
  }
  return undefined;
}

interface EventBody {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  data: { object: Record<string, any> };
}

function parseBody(raw: Buffer): EventBody | null {
  let v: any;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  if (typeof v.id !== 'string' || !v.id.startsWith('evt_') || typeof v.type !== 'string' || !v.type) return null;
  if (typeof v.created !== 'number' || !Number.isFinite(v.created)) return null;
  const obj = v.data?.object;
  if (!obj || typeof obj !== 'object' || typeof obj.id !== 'string') return null;
  return { id: v.id, type: v.type, created: v.created, livemode: v.livemode === true, data: { object: obj } };
}

export function parseWebhook(raw: Buffer): ParsedWebhook | null {
  const ev = parseBody(raw);
  if (!ev) return null;
  const o = ev.data.object;
  const ids = [o.id as string];
  if (typeof o.payment === 'string') ids.push(o.payment); // refund → its payment
  if (ev.type === 'transfer.reversed' && Array.isArray(o.reversals) && o.reversals.length > 0) {
    const last = o.reversals[o.reversals.length - 1];
    if (typeof last?.id === 'string') ids.push(last.id);
  }
  const hint = o.metadata && typeof o.metadata.tenantIdentifier === 'string' ? (o.metadata.tenantIdentifier as string) : undefined;
  return { eventId: ev.id, eventType: ev.type, mode: ev.livemode ? 'live' : 'test', objectIds: ids, tenantHint: hint, createdAt: new Date(ev.created * 1000), payload: raw };
}

/** `t=<unix>,v1=<hex>[,v1=<hex>...]`; valid when |now - t| ≤ 300 s and one v1 matches one secret (constant time). */
export function verifyWebhook(raw: Buffer, headers: Record<string, string | string[] | undefined>, secrets: string[], now: Date): boolean {
  const h = header(headers, SIGNATURE_HEADER);
  if (!h) return false;
  let t: number | undefined;
  const sigs: Buffer[] = [];
  for (const part of h.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k === 't' && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === 'v1' && /^[0-9a-fA-F]{64}$/.test(v)) sigs.push(Buffer.from(v, 'hex'));
  }
  if (t === undefined || sigs.length === 0) return false;
  if (Math.abs(now.getTime() / 1000 - t) > SIGNATURE_TOLERANCE_S) return false;
  let ok = false;
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret === '') continue;
    const expected = createHmac('sha256', secret).update(`${t}.`).update(raw).digest();
    for (const s of sigs) if (timingSafeEqual(expected, s)) ok = true; // no early exit
  }
  return ok;
}

const declineOf = (o: Record<string, any>): { code: string; message: string } | undefined =>
  o.lastDecline && typeof o.lastDecline.code === 'string' ? { code: o.lastDecline.code, message: String(o.lastDecline.message ?? o.lastDecline.code) } : undefined;

/**
 * Event → outcome. Payment events carry the payment as it is after the change:
 * - payment.authorized → payment `authorized`; payment.attempt_failed → `pending` + decline; payment.failed → `failed`;
 * - payment.captured → with automatic capture at confirmation: payment `captured`; otherwise a `capture` outcome with the
 *   payment's cumulative `amountCaptured`;
 * - payment.capture_failed → automatic capture: payment `capture_failed`; manual: failed `capture` outcome;
 * - payment.canceled → `canceled`, or `captured` when part was captured and only the remainder was released.
 */
export function webhookOutcome(raw: Buffer): WebhookOutcome {
  const ev = parseBody(raw);
  if (!ev) return { kind: 'ignored', reason: 'unparseable event' };
  const o = ev.data.object;
  const payment = (state: PspPaymentState, extra: Partial<Extract<WebhookOutcome, { kind: 'payment' }>> = {}): WebhookOutcome => ({
    kind: 'payment',
    transactionId: o.id,
    state,
    publicDetails: publicDetailsOf(o),
    ...extra,
  });
  const automatic = o.captureMethod === 'automatic';
  switch (ev.type) {
    case 'payment.authorized':
      return payment('authorized');
    case 'payment.attempt_failed':
      return payment('pending', { decline: declineOf(o) });
    case 'payment.failed':
      return payment('failed', { decline: declineOf(o) });
    case 'payment.captured':
      if (automatic && o.amountCaptured === o.amount && o.amountRefunded === 0) return payment('captured', { amountCaptured: o.amountCaptured });
      return { kind: 'capture', transactionId: o.id, amountCaptured: Number(o.amountCaptured), succeeded: true };
    case 'payment.capture_failed':
      if (automatic && Number(o.amountCaptured) === 0) return payment('capture_failed', { decline: o.captureError ?? undefined });
      return { kind: 'capture', transactionId: o.id, amountCaptured: Number(o.amountCaptured), succeeded: false, reason: String(o.captureError?.code ?? 'capture_failed') };
    case 'payment.canceled':
      return Number(o.amountCaptured) > 0 ? payment('captured', { amountCaptured: Number(o.amountCaptured) }) : payment('canceled');
    case 'refund.succeeded':
    case 'refund.failed':
      return {
        kind: 'refund',
        transactionId: String(o.payment),
        pspRefundId: o.id,
        amount: Number(o.amount),
        status: ev.type === 'refund.succeeded' ? 'succeeded' : 'failed',
        ...(o.failureReason ? { reason: String(o.failureReason) } : {}),
      };
    case 'transfer.created':
      return { kind: 'transfer', pspTransferId: o.id, status: 'succeeded' };
    case 'transfer.reversed': {
      const last = Array.isArray(o.reversals) ? o.reversals[o.reversals.length - 1] : undefined;
      return { kind: 'transfer', pspTransferId: o.id, status: 'succeeded', ...(typeof last?.id === 'string' ? { reversalId: last.id } : {}) };
    }
    case 'account.updated':
      return { kind: 'account', accountId: o.id, merchantStatus: mapAccountStatus(o.status) };
    default:
      return { kind: 'ignored', reason: `event type ${ev.type} is not used` };
  }
}

export function mapAccountStatus(s: unknown): 'pending' | 'enabled' | 'rejected' {
  return s === 'active' ? 'enabled' : s === 'rejected' ? 'rejected' : 'pending';
}

export { mapPaymentState };

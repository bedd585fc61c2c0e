/**
 * Receiving a PSP webhook (sync-api.md 4.10, flows.md 12 steps 1-6): parse, check the mode, attribute to a tenant,
 * verify the signature with the tenant's secrets, check the tenant, de-duplicate, store in the inbox (`received`).
 * Processing (step 7 ff.) is in webhook-processing.ts; the caller runs it after this returns.
 *
 * Rejections before the signature is verified (empty, unparseable, wrong mode, invalid signature) count per source
 * address; beyond 60 in one minute the source gets 429 `RATE_LIMITED` with `Retry-After` until that minute ends.
 * Verified webhooks are never limited, and 503 (unattributed: the PSP legitimately retries) is not counted.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import { tenantForPspObject } from '../store/payments.js';
import { loadTenant, webhookSecrets } from '../store/tenants.js';
import type { AppDeps } from './context.js';
import { LEASE_MS, payloadForStorage } from './webhook-processing.js';

export type WebhookMode = 'test' | 'live';

export const REJECTIONS_PER_MINUTE = 60;

/** Fixed one-minute windows of rejected (unverified) webhooks per source address. In-process. */
export class RejectionLimiter {
  private readonly windows = new Map<string, { window: number; count: number }>();
  constructor(
    private readonly limit = REJECTIONS_PER_MINUTE,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Counts one rejection; returns the seconds to wait when the source is beyond the limit, else null. */
  reject(source: string): number | null {
    const now = this.clock();
    const window = Math.floor(now / 60_000);
    if (this.windows.size > 10_000) for (const [k, v] of this.windows) if (v.window !== window) this.windows.delete(k);
    const w = this.windows.get(source);
    const entry = w && w.window === window ? w : { window, count: 0 };
    entry.count++;
    this.windows.set(source, entry);
    if (entry.count <= this.limit) return null;
    return Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
  }
}

export interface IncomingWebhook {
  raw: Buffer | undefined;
  headers: Record<string, string | string[] | undefined>;
  mode: WebhookMode;
  /** Source address (rate limit key). */
  source: string;
  now?: Date;
}

export interface ReceivedWebhook {
  tenantIdentifier: string;
  /** The new inbox row; null for a duplicate (nothing stored, nothing to process). */
  inboxId: string | null;
  pspObjectId: string | null;
}

/** Steps of the 4.10 table. Throws AppError for every refusal; returns once the event is stored (or was a duplicate). */
export async function receiveWebhook(deps: AppDeps, limiter: RejectionLimiter, input: IncomingWebhook): Promise<ReceivedWebhook> {
  const unverified = (err: AppError): AppError => {
    const wait = limiter.reject(input.source);
    if (wait === null) return err;
    return new AppError('RATE_LIMITED', 'Too many rejected webhooks from this address; retry later.', { headers: { 'Retry-After': String(wait) } });
  };

  const raw = input.raw;
  if (!raw || raw.length === 0) throw unverified(new AppError('INVALID_REQUEST', 'POST content is required.'));

  let parsed;
  try {
    parsed = deps.connector.parseWebhook(raw, input.headers);
  } catch {
    parsed = null;
  }
  if (!parsed) throw unverified(new AppError('INVALID_REQUEST', 'The webhook payload cannot be parsed.'));
  if (parsed.mode !== input.mode) throw unverified(new AppError('VALIDATION_FAILED', 'Webhook mode does not match the endpoint.'));

  // Tenant: our own mapping of PSP object ids first, else the (unverified) hint from PSP metadata.
  let tenantId: string | null = null;
  for (const id of parsed.objectIds) {
    tenantId = await tenantForPspObject(deps.db, deps.connector.id, id);
    if (tenantId) break;
  }
  if (!tenantId && parsed.tenantHint) tenantId = parsed.tenantHint.slice(0, 255);
  const tenant = tenantId ? await loadTenant(deps.db, tenantId) : null;
  if (!tenant) {
    throw new AppError('WEBHOOK_UNATTRIBUTED', 'Webhook cannot be attributed yet; retry later.', { headers: { 'Retry-After': '60' } });
  }

  const now = input.now ?? new Date();
  const secrets = webhookSecrets(deps.secrets, tenant, now, deps.connector.webhookSecretField);
  let valid = false;
  try {
    valid = secrets.length > 0 && deps.connector.verifyWebhook(raw, input.headers, secrets, now);
  } catch {
    valid = false;
  }
  if (!valid) throw unverified(new AppError('VALIDATION_FAILED', 'Invalid webhook signature.'));

  if (tenant.status === 'DISCONNECTED') throw new AppError('TENANT_DISCONNECTED', 'Tenant is disconnected.');

  const id = randomUUID();
  const pspObjectId = parsed.objectIds[0] ?? null;
  const r = await deps.db.query<{ id: string }>(
    `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, next_attempt_at, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'received', $9, clock_timestamp())
     ON CONFLICT (tenant_identifier, connector, event_id) DO NOTHING
     RETURNING id`,
    [
      id,
      tenant.tenant_identifier,
      deps.connector.id,
      parsed.eventId.slice(0, 500),
      parsed.eventType.slice(0, 200),
      input.mode,
      pspObjectId,
      JSON.stringify(payloadForStorage(raw)),
      // reserved for the inline processing that follows; the worker takes it after the lease if that dies
      new Date(now.getTime() + LEASE_MS),
    ],
  );
  if (!r.rows[0]) {
    deps.log.info({ tenantIdentifier: tenant.tenant_identifier, eventId: parsed.eventId }, 'duplicate webhook event ignored');
    return { tenantIdentifier: tenant.tenant_identifier, inboxId: null, pspObjectId };
  }
  deps.log.info({ tenantIdentifier: tenant.tenant_identifier, eventId: parsed.eventId, eventType: parsed.eventType, webhookInboxId: id }, 'webhook stored');
  return { tenantIdentifier: tenant.tenant_identifier, inboxId: id, pspObjectId };
}

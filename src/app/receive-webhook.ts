/**
 * Receiving a PSP webhook (sync-api.md 4.10, flows.md 12 steps 1-6): parse, check the mode, attribute to a tenant,
 * verify the signature with the tenant's secrets, check the tenant, de-duplicate, store in the inbox (`received`).
 * Processing (step 7 ff.) is in webhook-processing.ts; the caller runs it after this returns.
 *
 * Rejections before the signature is verified (empty, unparseable, wrong mode, invalid signature) count per source
 * address in the database (shared by every instance); beyond 60 in one minute the source gets 429 `RATE_LIMITED` with
 * `Retry-After` until that minute ends.
 * Verified webhooks are never limited, and 503 (unattributed: the PSP legitimately retries) is not counted.
 */
import { randomUUID } from 'node:crypto';
import type { Connector, ParsedWebhookRequest, WebhookAck, WebhookRequest } from '../connectors/types.js';
import { AppError } from '../domain/errors.js';
import { insertInboxEvent } from '../store/webhook-inbox.js';
import { tenantForPspObject } from '../store/payments.js';
import { decryptedSettings, webhookSecrets, type TenantRecord } from '../store/tenants.js';
import type { AppDeps } from './context.js';
import { knownOwner, rememberOwner } from './psp-owners.js';
import { LEASE_MS, payloadForStorage } from './webhook-processing.js';

export type WebhookMode = 'test' | 'live';

export const REJECTIONS_PER_MINUTE = 60;

/**
 * The shared count of rejected webhooks per source address and one-minute window (src/store/webhook-rate-limit.ts):
 * every app instance on the database counts into the same windows, so N instances enforce one limit.
 */
export interface RejectionCounter {
  /** Counts one rejection of `source` in window `windowMinute` (minutes since the epoch); returns the window's count. */
  count(source: string, windowMinute: number): Promise<number>;
  /** Forgets the windows before `beforeMinute`. */
  prune(beforeMinute: number): Promise<void>;
}

/** Fixed one-minute windows of rejected (unverified) webhooks per source address, counted in the shared counter. */
export class RejectionLimiter {
  private prunedWindow = -1;
  constructor(
    private readonly counter: RejectionCounter,
    private readonly limit = REJECTIONS_PER_MINUTE,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Counts one rejection; returns the seconds to wait when the source is beyond the limit, else null. */
  async reject(source: string): Promise<number | null> {
    const now = this.clock();
    const window = Math.floor(now / 60_000);
    if (this.prunedWindow !== window) {
      this.prunedWindow = window; // once per window and instance: past windows no longer count
      await this.counter.prune(window);
    }
    const count = await this.counter.count(source, window);
    if (count <= this.limit) return null;
    return Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
  }
}

export interface IncomingWebhook {
  raw: Buffer | undefined;
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, unknown>;
  method?: string;
  mode: WebhookMode;
  /** Source address (rate limit key). */
  source: string;
  now?: Date;
  /** The caller processes the stored events right after answering (default): they are reserved for it for a lease. False: due at once for the worker. */
  processInline?: boolean;
}

export interface ReceivedEvent {
  tenantIdentifier: string;
  /** The new inbox row; null for a duplicate or an event recorded as ignored (nothing to process). */
  inboxId: string | null;
  pspObjectId: string | null;
}

export interface ReceivedWebhook {
  events: ReceivedEvent[];
  /** The acknowledgement the connector wants the PSP to get. */
  ack: WebhookAck;
}

interface Candidate {
  connector: Connector;
  parsed: ParsedWebhookRequest;
}

/**
 * Steps of the 4.10 table for one request (one or many events: P8). Throws AppError for every refusal; returns once every
 * event is stored (or was a duplicate, or is recorded as ignored).
 */
export async function receiveWebhook(deps: AppDeps, limiter: RejectionLimiter, input: IncomingWebhook): Promise<ReceivedWebhook> {
  const unverified = async (err: AppError): Promise<AppError> => {
    let wait: number | null = null;
    try {
      wait = await limiter.reject(input.source);
    } catch (e) {
      // The refusal stands either way; only the count is lost (the database is failing, which /ready reports).
      deps.log.warn({ err: e instanceof Error ? e.message : String(e), source: input.source }, 'webhook rejection not counted: rate limit store failed');
    }
    if (wait === null) return err;
    return new AppError('RATE_LIMITED', 'Too many rejected webhooks from this address; retry later.', { headers: { 'Retry-After': String(wait) } });
  };

  const raw = input.raw;
  if (!raw || raw.length === 0) throw await unverified(new AppError('INVALID_REQUEST', 'POST content is required.'));
  const request: WebhookRequest = { method: input.method ?? 'POST', headers: input.headers, query: input.query ?? {}, rawBody: raw };

  // Every enabled connector may own the request (one deployment can serve the payments of a previous connector);
  // the first whose parse succeeds and whose signature verifies takes it.
  const candidates: Candidate[] = [];
  for (const connector of deps.connectors.all()) {
    let parsed: ParsedWebhookRequest | null = null;
    try {
      parsed = connector.parseWebhook(request);
    } catch (err) {
      deps.log.warn({ connector: connector.id, err: err instanceof Error ? err.message : String(err) }, 'webhook parser threw; treated as unparseable');
    }
    if (parsed && parsed.events.length > 0) candidates.push({ connector, parsed });
  }
  if (candidates.length === 0) throw await unverified(new AppError('INVALID_REQUEST', 'The webhook payload cannot be parsed.'));

  let firstError: AppError | null = null;
  for (const candidate of candidates) {
    try {
      return await receiveWith(deps, candidate, request, input);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'VALIDATION_FAILED' || candidates.length === 1) {
        if (err instanceof AppError && err.code === 'VALIDATION_FAILED') throw await unverified(err);
        throw err;
      }
      firstError ??= err;
    }
  }
  throw await unverified(firstError!);
}

/** The tenant whose secrets verify the request: the one the endpoint URL names, else the one owning its objects. */
async function attributedTenant(deps: AppDeps, connector: Connector, parsed: ParsedWebhookRequest, ownerOf: (id: string) => Promise<string | null>): Promise<TenantRecord | null> {
  if (parsed.endpointTenant) return deps.tenants.get(parsed.endpointTenant.slice(0, 255));
  const first = parsed.events[0]!;
  let tenantId: string | null = null;
  for (const id of first.objectIds) {
    tenantId = await ownerOf(id);
    if (tenantId) break;
  }
  if (!tenantId && first.tenantHint) tenantId = first.tenantHint.slice(0, 255);
  return tenantId ? deps.tenants.get(tenantId) : null;
}

async function receiveWith(deps: AppDeps, { connector, parsed }: Candidate, request: WebhookRequest, input: IncomingWebhook): Promise<ReceivedWebhook> {
  // An endpoint that does not name its tenant receives one mode per URL (`/webhooks` live, `/webhooks/test` test).
  if (!parsed.endpointTenant && parsed.events.some((e) => e.mode !== input.mode)) throw new AppError('VALIDATION_FAILED', 'Webhook mode does not match the endpoint.');

  // Owners of PSP objects, each looked up once per request (attribution and the 1.10 check ask the same) and kept by
  // the instance once found (src/app/psp-owners.ts).
  const owners = new Map<string, Promise<string | null>>();
  const ownerOf = (id: string): Promise<string | null> => {
    let owner = owners.get(id);
    if (!owner) {
      const known = knownOwner(deps, connector.id, id);
      owner =
        known !== undefined
          ? Promise.resolve(known)
          : tenantForPspObject(deps.db, connector.id, id).then((t) => {
              if (t !== null) rememberOwner(deps, connector.id, id, t);
              return t;
            });
      owners.set(id, owner);
    }
    return owner;
  };
  const tenant = await attributedTenant(deps, connector, parsed, ownerOf);
  if (!tenant) {
    if (parsed.endpointTenant) throw new AppError('VALIDATION_FAILED', 'Invalid webhook signature.'); // unknown endpoint tenant: nothing to verify with
    throw new AppError('WEBHOOK_UNATTRIBUTED', 'Webhook cannot be attributed yet; retry later.', { headers: { 'Retry-After': '60' } });
  }

  const now = input.now ?? new Date();
  const secrets = webhookSecrets(deps.secrets, tenant, now, connector.settings.webhookSecretFields);
  let valid = false;
  try {
    valid = secrets.length > 0 && connector.verifyWebhook(request, secrets, now);
  } catch (err) {
    // Fail closed, but say why: a verifier that throws is a defect or a hostile header, never a valid signature.
    deps.log.error({ connector: connector.id, tenantIdentifier: tenant.tenant_identifier, err: err instanceof Error ? err.message : String(err) }, 'webhook signature verification threw; rejected');
    valid = false;
  }
  if (!valid) throw new AppError('VALIDATION_FAILED', 'Invalid webhook signature.');

  if (tenant.status === 'DISCONNECTED') throw new AppError('TENANT_DISCONNECTED', 'Tenant is disconnected.');

  const tenantMode = connector.settings.isLive(decryptedSettings(deps.secrets, tenant)) ? 'live' : 'test';
  const events: ReceivedEvent[] = [];
  for (const event of parsed.events) {
    // 1.10: an event of another tenant's object reached this tenant's endpoint (shared PSP account): recorded, not applied.
    let ignoredReason: string | null = null;
    if (event.mode !== tenantMode) ignoredReason = `event mode ${event.mode} differs from the tenant's ${tenantMode} mode`;
    else {
      for (const id of event.objectIds) {
        const owner = await ownerOf(id);
        if (owner && owner !== tenant.tenant_identifier) {
          ignoredReason = 'the event concerns an object of another tenant';
          break;
        }
      }
    }
    const pspObjectId = event.objectIds[0] ?? null;
    const id = randomUUID();
    const stored = await insertInboxEvent(deps.db, {
      id,
      tenantIdentifier: tenant.tenant_identifier,
      connector: connector.id,
      eventId: event.eventId.slice(0, 500),
      eventType: event.eventType.slice(0, 200),
      mode: event.mode,
      pspObjectId,
      payload: payloadForStorage(event.payload),
      state: ignoredReason ? 'ignored' : 'received',
      reason: ignoredReason,
      // reserved for the inline processing that follows (the worker takes it after the lease if that dies), else due now
      nextAttemptAt: new Date(now.getTime() + (input.processInline === false ? 0 : LEASE_MS)),
    });
    if (!stored) {
      deps.log.info({ tenantIdentifier: tenant.tenant_identifier, eventId: event.eventId }, 'duplicate webhook event ignored');
      events.push({ tenantIdentifier: tenant.tenant_identifier, inboxId: null, pspObjectId });
      continue;
    }
    if (ignoredReason) {
      deps.log.info({ tenantIdentifier: tenant.tenant_identifier, eventId: event.eventId, reason: ignoredReason }, 'webhook recorded as ignored');
      events.push({ tenantIdentifier: tenant.tenant_identifier, inboxId: null, pspObjectId });
      continue;
    }
    deps.log.info({ tenantIdentifier: tenant.tenant_identifier, eventId: event.eventId, eventType: event.eventType, webhookInboxId: id }, 'webhook stored');
    events.push({ tenantIdentifier: tenant.tenant_identifier, inboxId: id, pspObjectId });
  }
  return { events, ack: connector.webhookAck() };
}

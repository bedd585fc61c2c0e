/**
 * Merchant onboarding (sync-api.md 4.9, flows.md 13, states.md 6) and the PSP's account webhooks.
 *
 * `onboardMerchant`:
 * 1. tx: upsert the merchant (a new one is stored `pending` with `status_seq` 0 = not announced yet); `rejected` → 409;
 * 2. no PSP account yet → create one (idempotency key derived from tenant + merchant, so a retry after a crash or a
 *    concurrent first call gets the same account), no transaction open during the call;
 * 3. tx: store the account id and its psp_objects mapping; the first time, write `MerchantAppOnboardingStatusChanged`
 *    (`pending`, additionalInfo with the account id); a PSP status other than `pending` goes through the machine as a
 *    second change;
 * 4. fresh onboarding link → `{url, strategy: "redirect", content: null, merchantReference, status}`, 201 when this call
 *    created (announced) the merchant, 200 otherwise.
 *
 * `applyAccountOutcome` (webhook inbox): account status → `merchantTransition`; a message only when the status changes.
 */
import { derivedUuid, uuidNamespace } from '../domain/derived-id.js';
import type { WebhookOutcome, PspFailure } from '../connectors/types.js';
import { AppError } from '../domain/errors.js';
import { merchantTransition } from '../domain/merchant-status.js';
import { isObject } from '../domain/input.js';
import type { TenantRow } from '../http/tenant.js';
import { enqueue, type OutgoingMessage } from '../messaging/outbox.js';
import type { Tx } from '../store/db.js';
import { findMerchant, findMerchantByAccount, insertMerchant, setMerchantAccount, updateMerchantName, writeMerchantStatus, type MerchantRow } from '../store/merchants.js';
import { recordPspObject } from '../store/payments.js';
import { decryptedSettings } from '../store/tenants.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { processWaitingWebhooksFor } from './webhook-processing.js';

const KEY_NAMESPACE = uuidNamespace('6ba7b811-9dad-11d1-80b4-00c04fd430c8');

function absoluteUrl(v: unknown): boolean {
  if (typeof v !== 'string' || v === '') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export interface OnboardingRequest {
  merchantReference: string;
  name: string | null;
  successUrl: string;
  refreshUrl: string;
}

/** Validates the 4.9 body against the `x-merchant-reference` header. Throws 400 VALIDATION_FAILED. */
export function parseOnboardingRequest(headerRef: string | undefined, body: unknown): OnboardingRequest {
  if (!isObject(body)) throw new AppError('VALIDATION_FAILED', 'Field "merchant" is required.', { field: 'merchant' });
  const merchant = body.merchant;
  if (!isObject(merchant)) throw new AppError('VALIDATION_FAILED', 'Field "merchant" is required.', { field: 'merchant' });
  const ref = merchant.merchantReference;
  if (typeof ref !== 'string' || ref.trim() === '') {
    throw new AppError('VALIDATION_FAILED', 'Field "merchant.merchantReference" is required.', { field: 'merchant.merchantReference' });
  }
  if (headerRef === undefined) throw new AppError('VALIDATION_FAILED', 'Header "x-merchant-reference" is required.', { field: 'x-merchant-reference' });
  if (ref !== headerRef) {
    throw new AppError('VALIDATION_FAILED', 'merchant.merchantReference does not match x-merchant-reference.', { field: 'merchant.merchantReference' });
  }
  if (ref.length > 255) throw new AppError('VALIDATION_FAILED', 'Field "merchant.merchantReference" is too long.', { field: 'merchant.merchantReference' });
  const name = merchant.name;
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw new AppError('VALIDATION_FAILED', 'Field "merchant.name" must be a string.', { field: 'merchant.name' });
  }
  for (const f of ['successUrl', 'refreshUrl'] as const) {
    if (body[f] === undefined || body[f] === null) throw new AppError('VALIDATION_FAILED', `Field "${f}" is required.`, { field: f });
    if (!absoluteUrl(body[f])) throw new AppError('VALIDATION_FAILED', `Field "${f}" must be an absolute URL.`, { field: f });
  }
  for (const f of ['cancelUrl', 'errorUrl'] as const) {
    if (body[f] !== undefined && body[f] !== null && !absoluteUrl(body[f])) throw new AppError('VALIDATION_FAILED', `Field "${f}" must be an absolute URL.`, { field: f });
  }
  return { merchantReference: ref, name: typeof name === 'string' && name !== '' ? name : null, successUrl: body.successUrl as string, refreshUrl: body.refreshUrl as string };
}

export function merchantStatusMessage(
  deps: Pick<AppDeps, 'config'>,
  tenant: string,
  merchantReference: string,
  status: string,
  seq: number,
  accountId: string | null,
  correlationId?: string,
): OutgoingMessage {
  return {
    tenantIdentifier: tenant,
    channel: 'merchant-app-events',
    name: 'MerchantAppOnboardingStatusChanged',
    eventKey: `merchant/${merchantReference}/seq/${seq}`,
    orderingKey: `merchant/${merchantReference}`,
    payload: {
      merchantReference,
      appIdentifier: deps.config.appIdentifier,
      type: 'payment',
      status,
      ...(accountId ? { additionalInfo: JSON.stringify({ accountId, requirements: [] }) } : {}),
    },
    correlationId,
  };
}

function pspError(f: PspFailure): AppError {
  if (f.kind === 'timeout') return new AppError('PSP_TIMEOUT', 'The payment provider did not answer in time.');
  return new AppError('PSP_ERROR', 'The payment provider could not be reached or answered with an error.');
}

async function pspCall<T>(fn: (signal: AbortSignal) => Promise<{ ok: true; value: T } | { ok: false; failure: PspFailure }>) {
  const signal = AbortSignal.timeout(PSP_CALL_TIMEOUT_MS);
  try {
    return await fn(signal);
  } catch (err) {
    return { ok: false as const, failure: signal.aborted ? ({ kind: 'timeout' } as const) : ({ kind: 'error', message: (err as Error).message } as const) };
  }
}

export interface OnboardingAnswer {
  httpStatus: 200 | 201;
  body: { url: string; strategy: 'redirect'; content: null; merchantReference: string; status: string };
}

export async function onboardMerchant(deps: AppDeps, tenantRow: TenantRow, headerRef: string | undefined, body: unknown, requestId: string): Promise<OnboardingAnswer> {
  const connector = deps.connectors.require(tenantRow.connector);
  const onboarding = connector.onboarding;
  const settings = decryptedSettings(deps.secrets, tenantRow);
  if (!connector.capabilities.onboarding || !onboarding || !connector.settings.marketplace(settings)) {
    throw new AppError('UNSUPPORTED_OPERATION', 'Platform plugin does not provide merchant onboarding.');
  }
  const req = parseOnboardingRequest(headerRef, body);
  const tenant = tenantRow.tenant_identifier;

  // 1. upsert
  const before = await deps.db.tx(async (tx) => {
    let m = await findMerchant(tx, tenant, req.merchantReference, { forUpdate: true });
    if (!m) {
      m = (await insertMerchant(tx, { tenantIdentifier: tenant, merchantReference: req.merchantReference, name: req.name })) ??
        (await findMerchant(tx, tenant, req.merchantReference, { forUpdate: true }));
      if (!m) throw new Error('merchant vanished');
    } else if (req.name && req.name !== m.name && m.pspAccountId) {
      await updateMerchantName(tx, tenant, req.merchantReference, req.name);
    }
    return m;
  });
  if (before.status === 'rejected') {
    const t = merchantTransition('rejected', 'pending');
    throw new AppError('ILLEGAL_TRANSITION', t.ok ? 'Merchant is rejected.' : t.error.message);
  }
  const created = before.statusSeq === 0;

  // 2. PSP account
  let merchant: MerchantRow = before;
  if (!merchant.pspAccountId) {
    const idempotencyKey = derivedUuid(`urn:open-acp-pay:merchant-account:${tenant}:${req.merchantReference}`, KEY_NAMESPACE);
    const acct = await pspCall((signal) =>
      onboarding.createAccount(
        settings,
        { merchantReference: req.merchantReference, ...(before.name ? { name: before.name } : {}), tenantIdentifier: tenant },
        { idempotencyKey, signal },
      ),
    );
    if (!acct.ok) throw pspError(acct.failure);
    const accountId = acct.value.accountId;
    // 3. store account, announce
    merchant = await deps.db.tx(async (tx) => {
      const m = await findMerchant(tx, tenant, req.merchantReference, { forUpdate: true });
      if (!m) throw new Error('merchant vanished');
      if (m.pspAccountId) return m; // a concurrent call stored it first
      await setMerchantAccount(tx, tenant, req.merchantReference, accountId);
      await recordPspObject(tx, connector.id, accountId, tenant, 'account');
      const messages: OutgoingMessage[] = [];
      let status = m.status;
      if (m.statusSeq === 0) {
        const t = merchantTransition(null, 'pending');
        if (!t.ok) throw new Error(t.error.message);
        const seq = await writeMerchantStatus(tx, tenant, req.merchantReference, 'pending');
        status = 'pending';
        messages.push(merchantStatusMessage(deps, tenant, req.merchantReference, 'pending', seq, accountId, requestId));
      }
      const t2 = merchantTransition(status, acct.value.status);
      if (t2.ok && t2.changed) {
        const seq = await writeMerchantStatus(tx, tenant, req.merchantReference, acct.value.status);
        status = acct.value.status;
        messages.push(merchantStatusMessage(deps, tenant, req.merchantReference, status, seq, accountId, requestId));
      }
      if (messages.length > 0) await enqueue(tx, deps.config.appIdentifier, messages);
      return (await findMerchant(tx, tenant, req.merchantReference))!;
    });
    // Account webhooks that arrived before the account id was stored.
    await processWaitingWebhooksFor(deps, tenant, accountId);
    merchant = (await findMerchant(deps.db, tenant, req.merchantReference)) ?? merchant;
  }

  // 4. fresh link
  const link = await pspCall((signal) => onboarding.onboardingLink(settings, merchant.pspAccountId!, { successUrl: req.successUrl, refreshUrl: req.refreshUrl }, signal));
  if (!link.ok) throw pspError(link.failure);
  return {
    httpStatus: created ? 201 : 200,
    body: { url: link.value.url, strategy: 'redirect', content: null, merchantReference: merchant.merchantReference, status: merchant.status },
  };
}

/** What processing an account webhook did to its inbox row. */
export interface InboxVerdict {
  state: 'processed' | 'ignored' | 'waiting_for_payment';
  reason: string | null;
}

/** Applies a PSP account status (webhook) through the merchant machine, inside the inbox row's transaction. */
export async function applyAccountOutcome(
  deps: Pick<AppDeps, 'config'>,
  tx: Tx,
  tenant: string,
  outcome: Extract<WebhookOutcome, { kind: 'account' }>,
  correlationId: string,
): Promise<InboxVerdict> {
  const m = await findMerchantByAccount(tx, tenant, outcome.accountId, { forUpdate: true });
  if (!m || m.statusSeq === 0) return { state: 'waiting_for_payment', reason: `merchant account ${outcome.accountId} is not stored yet` };
  const t = merchantTransition(m.status, outcome.merchantStatus);
  if (!t.ok) return { state: 'ignored', reason: t.error.message };
  if (!t.changed) return { state: 'processed', reason: null };
  const seq = await writeMerchantStatus(tx, tenant, m.merchantReference, outcome.merchantStatus);
  await enqueue(tx, deps.config.appIdentifier, [merchantStatusMessage(deps, tenant, m.merchantReference, outcome.merchantStatus, seq, outcome.accountId, correlationId)]);
  return { state: 'processed', reason: null };
}

/**
 * The hosted payment page (sync-api.md 4.11) and the PSP return handler (4.12, flows.md 4 steps 7-10, 15).
 * Use cases return what to answer; src/http/payment-page.ts renders it.
 *
 * Decision (spec README "open points", `/app-payment` for `capture_failed` / `cancellation_failed`):
 * - `capture_failed` → 302 to `redirectSuccessUrl`: the shopper did pay (the authorization exists); the failed
 *   capture is the merchant's business, so the page must not offer the card form again.
 * - `cancellation_failed` → 302 to `redirectCancelUrl`: a cancellation was requested for this order, so the shopper
 *   is not invited to pay it again.
 * Other statuses after payment (`authorized`, `capture_requested`, `partially_captured`, `captured`) → success URL;
 * `canceled`, `authorization_failed` → cancel URL (the 4.11 table). A payment without the URL it would redirect to
 * (pre-order payments carry none) gets a short status page instead.
 */
import type { CheckoutView, Connector, CspSources, PspPayment, PspResult } from '../connectors/types.js';
import { findPaymentByTransaction, findPaymentsByTransactionAnyTenant, type PaymentRow } from '../store/payments.js';
import { decryptedSettings, loadTenant } from '../store/tenants.js';
import { applyPaymentOutcome, enforceDeclineCap } from './apply-payment-outcome.js';
import { returnUrlFor } from './initialize-payment.js';
import { formatAmount } from '../domain/money.js';
import type { AppDeps } from './context.js';

export const PSP_CALL_TIMEOUT_MS = 15_000;

const SUCCESS_STATUSES = new Set(['authorized', 'capture_requested', 'partially_captured', 'captured', 'capture_failed']);
const CANCEL_STATUSES = new Set(['canceled', 'authorization_failed', 'cancellation_failed']);

export interface PageItem {
  name: string;
  quantity: number | null;
  /** Line total (unit price × quantity) in minor units, when known. */
  total: number | null;
}

export interface PaymentPageView {
  transactionId: string;
  tenantIdentifier: string;
  amount: number;
  currency: string;
  orderReference: string | null;
  items: PageItem[];
  locale: string;
  /** The connector's form HTML (already escaped by the connector). */
  formHtml: string;
  /** The connector's inline script (tagged with the response's CSP nonce) and external scripts, when it needs JavaScript. */
  script: { inline: string; external: string[] } | null;
  /** A message key of the app's catalog from the `error` query parameter (never text from the URL). */
  error: string | null;
  cancelUrl: string | null;
  backUrl: string | null;
}

export type PageOutcome =
  | { kind: 'page'; view: PaymentPageView; csp: CspSources; frameOrigin: string | null; navigationOrigins: string[] }
  | { kind: 'redirect'; location: string }
  | { kind: 'error-page'; status: number; message: string; retryUrl?: string; frameOrigin: string | null; locale: string }
  | { kind: 'status-page'; status: number; message: string; frameOrigin: string | null; locale: string }
  | { kind: 'text'; status: number; text: string };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

export function originOf(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/** `{APP_BASE_URL}/app-payment?transactionId=..&tenantIdentifier=..[&error=..]` */
export function paymentPageUrl(appBaseUrl: string, transactionId: string, tenant: string, error?: string): string {
  const q = new URLSearchParams({ transactionId, tenantIdentifier: tenant });
  if (error) q.set('error', error);
  return `${appBaseUrl.replace(/\/+$/, '')}/app-payment?${q.toString()}`;
}

function localeOf(p: PaymentRow): string {
  return str(p.orderData.localeName) ?? str(p.localeName) ?? 'en_US';
}

function itemsOf(p: PaymentRow): PageItem[] {
  const items = Array.isArray(p.orderData.items) ? (p.orderData.items as unknown[]) : [];
  const out: PageItem[] = [];
  for (const it of items.slice(0, 200)) {
    if (!it || typeof it !== 'object') continue;
    const o = it as Record<string, unknown>;
    const int = (v: unknown): number | null => {
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
      if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
      return null;
    };
    const quantity = int(o.quantity);
    const unit = int(o.unitPrice);
    out.push({ name: str(o.name) ?? str(o.sku) ?? 'Item', quantity, total: unit === null ? null : unit * (quantity ?? 1) });
  }
  return out;
}

function statusPage(p: PaymentRow, status: string): PageOutcome {
  const paid = SUCCESS_STATUSES.has(status);
  return {
    kind: 'status-page',
    status: 200,
    message: paid ? 'This payment has been completed.' : 'This payment can no longer be paid.',
    frameOrigin: originOf(p.redirectSuccessUrl),
    locale: localeOf(p),
  };
}

/** Where a payment that is no longer payable sends the shopper (null: keep the page). */
function afterPaymentTarget(p: PaymentRow, status: string): PageOutcome | null {
  if (SUCCESS_STATUSES.has(status)) return p.redirectSuccessUrl ? { kind: 'redirect', location: p.redirectSuccessUrl } : statusPage(p, status);
  if (CANCEL_STATUSES.has(status)) return p.redirectCancelUrl ? { kind: 'redirect', location: p.redirectCancelUrl } : statusPage(p, status);
  return null;
}

async function askPsp(deps: AppDeps, p: PaymentRow): Promise<{ connector: Connector; settings: Record<string, unknown>; result: PspResult<PspPayment> } | null> {
  const tenant = await loadTenant(deps.db, p.tenantIdentifier);
  if (!tenant) return null;
  const settings = decryptedSettings(deps.secrets, tenant);
  const connector = deps.connectors.require(p.connector);
  const ctl = AbortSignal.timeout(PSP_CALL_TIMEOUT_MS);
  try {
    return { connector, settings, result: await connector.getPayment(settings, p.transactionId, ctl) };
  } catch (err) {
    deps.log.warn({ err, tenantIdentifier: p.tenantIdentifier, transactionId: p.transactionId }, 'payment page: PSP status call failed');
    return { connector, settings, result: { ok: false, failure: { kind: 'error', message: 'PSP call failed' } } };
  }
}

/** Applies what the PSP says through the one apply-outcome path (flows.md 4 step 9). Errors are logged (states.md 8: redirect check). */
async function applyPspState(deps: AppDeps, p: PaymentRow, psp: PspPayment, ref: string): Promise<boolean> {
  try {
    const r = await deps.db.tx((tx) =>
      applyPaymentOutcome(
        deps,
        tx,
        p.id,
        {
          state: psp.state,
          ...(psp.lastDecline ? { decline: psp.lastDecline } : {}),
          publicDetails: psp.publicDetails,
          ...(psp.state === 'captured' ? { amountCaptured: psp.amountCaptured } : {}),
        },
        { trigger: 'redirect', ref },
      ),
    );
    // Declined-attempts cap reached (capability finalDeclines: false): cancel at the PSP, then authorization_failed.
    if (r.declineCapReached && psp.lastDecline) return (await enforceDeclineCap(deps, p.id, psp.lastDecline, { trigger: 'redirect', ref }))?.status === 'authorization_failed';
  } catch (err) {
    deps.log.error({ err, tenantIdentifier: p.tenantIdentifier, transactionId: p.transactionId }, 'redirect check: applying the PSP state failed');
  }
  return false;
}

/** The 4.12 answer for what the PSP says. Decline codes become message keys of the app's catalog (the connector maps them). */
function redirectFor(deps: AppDeps, connector: Connector, p: PaymentRow, psp: PspPayment): PageOutcome {
  const page = (error?: string): PageOutcome => ({ kind: 'redirect', location: paymentPageUrl(deps.config.appBaseUrl, p.transactionId, p.tenantIdentifier, error) });
  switch (psp.state) {
    case 'authorized':
    case 'captured':
    case 'capture_failed':
      return p.redirectSuccessUrl ? { kind: 'redirect', location: p.redirectSuccessUrl } : statusPage(p, 'authorized');
    case 'requires_action':
      // No URL: the challenge runs in the page itself (the connector's script finishes it there).
      return psp.actionUrl ? { kind: 'redirect', location: psp.actionUrl } : page();
    case 'pending':
      return page(psp.lastDecline ? connector.declineMessageKey(psp.lastDecline.code) : undefined);
    case 'failed':
    case 'canceled':
      return p.redirectCancelUrl ? { kind: 'redirect', location: p.redirectCancelUrl } : statusPage(p, 'canceled');
    default:
      return page('status_unavailable');
  }
}

/** `GET /app-payment` (sync-api.md 4.11). */
export async function showPaymentPage(deps: AppDeps, query: Record<string, unknown>, requestId: string): Promise<PageOutcome> {
  const transactionId = str(query.transactionId);
  const tenant = str(query.tenantIdentifier);
  if (!transactionId || !tenant) return { kind: 'error-page', status: 400, message: 'The payment link is incomplete.', frameOrigin: null, locale: 'en_US' };
  const p = await findPaymentByTransaction(deps.db, tenant.slice(0, 255), transactionId.slice(0, 255));
  if (!p) return { kind: 'error-page', status: 404, message: 'Payment not found.', frameOrigin: null, locale: 'en_US' };

  const done = afterPaymentTarget(p, p.status);
  if (done) return done;
  if (p.status !== 'new') return statusPage(p, p.status);

  const selfUrl = paymentPageUrl(deps.config.appBaseUrl, p.transactionId, p.tenantIdentifier);
  const asked = await askPsp(deps, p);
  if (!asked || !asked.result.ok) {
    return { kind: 'error-page', status: 502, message: 'The payment provider is not available right now. Please try again.', retryUrl: selfUrl, frameOrigin: originOf(p.redirectSuccessUrl), locale: localeOf(p) };
  }
  const psp = asked.result.value;
  if (psp.state !== 'pending' && psp.state !== 'requires_action') {
    // The shopper already finished at the PSP (e.g. reload before the return): settle it like the return handler.
    await applyPspState(deps, p, psp, requestId);
    return redirectFor(deps, asked.connector, p, psp);
  }
  let form: CheckoutView;
  try {
    form = asked.connector.checkout(asked.settings, psp, {
      locale: localeOf(p),
      returnUrl: returnUrlFor(deps.config.appBaseUrl, p.tenantIdentifier, p.transactionId),
      pageUrl: selfUrl,
      cancelUrl: p.redirectCancelUrl,
      amountLabel: formatAmount(p.amount, p.currency, localeOf(p)),
      pspData: p.pspData,
    });
  } catch (err) {
    deps.log.error({ err, transactionId: p.transactionId }, 'payment page: connector could not render its form');
    return { kind: 'error-page', status: 502, message: 'The payment provider is not available right now. Please try again.', retryUrl: selfUrl, frameOrigin: originOf(p.redirectSuccessUrl), locale: localeOf(p) };
  }
  if (form.kind === 'redirect') return { kind: 'redirect', location: form.url }; // a PSP-hosted page
  const error = str(query.error);
  const navigationOrigins = [originOf(p.redirectSuccessUrl), originOf(p.redirectCancelUrl), originOf(psp.actionUrl)].filter((o): o is string => o !== null);
  return {
    kind: 'page',
    view: {
      transactionId: p.transactionId,
      tenantIdentifier: p.tenantIdentifier,
      amount: p.amount,
      currency: p.currency,
      orderReference: p.orderReference,
      items: itemsOf(p),
      locale: localeOf(p),
      formHtml: form.html,
      script: form.kind === 'sdk' ? { inline: form.script, external: form.externalScripts } : null,
      error: error ? error.slice(0, 100) : null,
      cancelUrl: p.redirectCancelUrl,
      backUrl: p.checkoutSummaryPageUrl,
    },
    csp: form.csp,
    frameOrigin: originOf(p.redirectSuccessUrl),
    navigationOrigins,
  };
}

/**
 * `GET /app-payment/redirect` (sync-api.md 4.12). The PSP's own return parameters name the transaction (e.g.
 * `payment_intent`); each enabled connector reads the query, the app's `transactionId` is the fallback.
 */
export async function handlePaymentReturn(deps: AppDeps, query: Record<string, unknown>, requestId: string): Promise<PageOutcome> {
  let transactionId: string | undefined;
  for (const c of deps.connectors.all()) {
    const id = c.returnTransactionId(query);
    if (id) {
      transactionId = id;
      break;
    }
  }
  transactionId ??= str(query.transactionId);
  if (!transactionId) return { kind: 'text', status: 400, text: 'Transaction ID is missing.' };
  const tenant = str(query.tenantIdentifier);
  let p: PaymentRow | null;
  if (tenant) p = await findPaymentByTransaction(deps.db, tenant.slice(0, 255), transactionId.slice(0, 255));
  else {
    const all = await findPaymentsByTransactionAnyTenant(deps.db, transactionId.slice(0, 255));
    p = all.length === 1 ? all[0]! : null;
  }
  if (!p) return { kind: 'error-page', status: 404, message: 'Payment not found.', frameOrigin: null, locale: 'en_US' };

  const asked = await askPsp(deps, p);
  if (!asked || !asked.result.ok) {
    if (asked && !asked.result.ok) deps.log.warn({ tenantIdentifier: p.tenantIdentifier, transactionId: p.transactionId, failure: asked.result.failure.kind }, 'redirect check: PSP status unavailable');
    return { kind: 'redirect', location: paymentPageUrl(deps.config.appBaseUrl, p.transactionId, p.tenantIdentifier, 'status_unavailable') };
  }
  const psp = asked.result.value;
  const capped = await applyPspState(deps, p, psp, requestId);
  if (capped) return p.redirectCancelUrl ? { kind: 'redirect', location: p.redirectCancelUrl } : statusPage(p, 'authorization_failed');
  return redirectFor(deps, asked.connector, p, psp);
}

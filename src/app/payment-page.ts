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
import { decryptedSettings } from '../store/tenants.js';
import { applyPaymentOutcome, enforceDeclineCap, outcomeRestatesStatus } from './apply-payment-outcome.js';
import { returnUrlFor } from './initialize-payment.js';
import { formatAmount, parseMinorUnits } from '../domain/money.js';
import { type AppDeps, PSP_CALL_TIMEOUT_MS } from './context.js';
import { isMessageKey, t, type Locale, type MessageKey } from '../i18n/messages.js';

const SUCCESS_STATUSES = new Set(['authorized', 'capture_requested', 'partially_captured', 'captured', 'capture_failed']);
const CANCEL_STATUSES = new Set(['canceled', 'authorization_failed', 'cancellation_failed']);

/** One line of the order summary: an item or an expense (shipping), as sent in `orderData`. */
export interface PageLine {
  /** null: the line had no name (the page uses its generic label). */
  name: string | null;
  quantity: number | null;
  /** Line total in minor units, when known. */
  total: number | null;
}

/** A decline notice: the catalog key of its text and the card field it concerns (null: the whole payment). */
export interface DeclineNotice {
  key: MessageKey;
  field: 'number' | 'expiry' | 'cvc' | null;
}

export interface PaymentPageView {
  transactionId: string;
  tenantIdentifier: string;
  amount: number;
  currency: string;
  orderReference: string | null;
  /** `orderData.storeName` when sent. */
  storeName: string | null;
  items: PageLine[];
  expenses: PageLine[];
  /** `orderData.discountTotal` (minor units, > 0) when sent. */
  discountTotal: number | null;
  /** `orderData.taxTotal` when the order is in net mode (gross prices already include it). */
  taxTotal: number | null;
  locale: Locale;
  /** The connector's form HTML (already escaped by the connector). */
  formHtml: string;
  /**
   * The connector's inline script (tagged with the response's CSP nonce) and external scripts. `required`: the form
   * needs JavaScript (a `<noscript>` notice); false: the script only improves a form that works without it.
   */
  script: { inline: string; external: string[]; required: boolean } | null;
  /** What the `error` query parameter names (a code mapped to the catalog; never text from the URL). */
  error: DeclineNotice | null;
  cancelUrl: string | null;
  backUrl: string | null;
}

/** Links back to the shop an error or status page offers (only for a known payment). */
export interface ShopLinks {
  retryUrl?: string;
  backUrl?: string | null;
  cancelUrl?: string | null;
  /** A neutral "back to the shop" target when neither of the others applies (e.g. the success URL of a paid payment). */
  shopUrl?: string | null;
}

export type PageOutcome =
  | { kind: 'page'; view: PaymentPageView; csp: CspSources; frameOrigin: string | null; navigationOrigins: string[] }
  | { kind: 'redirect'; location: string }
  | { kind: 'error-page'; status: number; message: MessageKey; help?: MessageKey; links: ShopLinks; frameOrigin: string | null; locale: Locale }
  | { kind: 'text'; status: number; text: string };

/** The element id of the page's decline message (fields point their `aria-describedby` at it). */
export const ERROR_MESSAGE_ID = 'payment-error';

/**
 * The `error` query parameter → what the page shows. Only codes with a `decline_<code>` catalog entry show their own
 * text (a connector's `declineMessageKey` may answer the code or the key itself); anything else shows the generic
 * decline text. Nothing of the parameter is ever displayed.
 */
export function declineNotice(error: string): DeclineNotice {
  const code = /^[a-z0-9_]{1,60}$/.test(error) ? error.replace(/^decline_/, '') : '';
  const key = `decline_${code}`;
  const known = code !== '' && code !== 'generic' && isMessageKey(key);
  return { key: known ? key : 'decline_generic', field: known ? DECLINE_FIELDS[code] ?? null : null };
}

/** The text a decline notice shows: its catalog text, plus "try again" for a decline (not for a pending status check). */
export function declineText(locale: Locale, key: MessageKey): string {
  return key === 'decline_status_unavailable' ? t(locale, key) : `${t(locale, key)} ${t(locale, 'page_try_again')}`;
}

const DECLINE_FIELDS: Record<string, DeclineNotice['field']> = {
  card_declined: 'number',
  insufficient_funds: 'number',
  card_blocked: 'number',
  authentication_failed: 'number',
  invalid_number: 'number',
  incorrect_number: 'number',
  processing_error: 'number',
  expired_card: 'expiry',
  invalid_expiry: 'expiry',
  incorrect_cvc: 'cvc',
  invalid_cvc: 'cvc',
};

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

function localeOf(p: PaymentRow): Locale {
  return pageLocale(str(p.orderData.localeName) ?? str(p.localeName));
}

/** `de…` → de_DE, anything else en_US (the catalog's two locales). */
export function pageLocale(locale: string | undefined | null): Locale {
  return locale && locale.toLowerCase().startsWith('de') ? 'de_DE' : 'en_US';
}

const int = parseMinorUnits;

/** Items or expenses of `orderData`: line total = `sumPrice`, else `unitPrice` (or `unitGrossPrice`) × `quantity`. */
function linesOf(p: PaymentRow, key: 'items' | 'expenses'): PageLine[] {
  const lines = Array.isArray(p.orderData[key]) ? (p.orderData[key] as unknown[]) : [];
  const out: PageLine[] = [];
  for (const it of lines.slice(0, 200)) {
    if (!it || typeof it !== 'object') continue;
    const o = it as Record<string, unknown>;
    const quantity = int(o.quantity);
    const unit = int(o.unitPrice) ?? int(o.unitGrossPrice);
    const sum = int(o.sumPrice);
    out.push({ name: str(o.name) ?? str(o.sku) ?? null, quantity, total: sum ?? (unit === null ? null : unit * (quantity ?? 1)) });
  }
  return out;
}

const positive = (v: unknown): number | null => {
  const n = int(v);
  return n !== null && n > 0 ? n : null;
};

function statusPage(p: PaymentRow, status: string): PageOutcome {
  const paid = SUCCESS_STATUSES.has(status);
  return {
    kind: 'error-page',
    status: 200,
    message: paid ? 'page_payment_completed' : 'page_payment_closed',
    links: paid ? { shopUrl: p.redirectSuccessUrl } : { backUrl: p.checkoutSummaryPageUrl, shopUrl: p.redirectCancelUrl },
    frameOrigin: originOf(p.redirectSuccessUrl),
    locale: localeOf(p),
  };
}

/** The 502 page for a known payment: retry, and the ways back to the shop. */
function unavailablePage(p: PaymentRow, selfUrl: string): PageOutcome {
  return {
    kind: 'error-page',
    status: 502,
    message: 'page_psp_unavailable',
    links: { retryUrl: selfUrl, backUrl: p.checkoutSummaryPageUrl, cancelUrl: p.redirectCancelUrl },
    frameOrigin: originOf(p.redirectSuccessUrl),
    locale: localeOf(p),
  };
}

/** 400/404 pages: nothing is known of the payment, so no link to any shop (a link built from the request would be attacker-chosen). */
const unknownPaymentPage = (status: 400 | 404, locale: Locale): PageOutcome => ({
  kind: 'error-page',
  status,
  message: status === 400 ? 'page_link_incomplete' : 'page_not_found',
  help: 'page_unknown_payment_help',
  links: {},
  frameOrigin: null,
  locale,
});

/** Where a payment that is no longer payable sends the shopper (null: keep the page). */
function afterPaymentTarget(p: PaymentRow, status: string): PageOutcome | null {
  if (SUCCESS_STATUSES.has(status)) return p.redirectSuccessUrl ? { kind: 'redirect', location: p.redirectSuccessUrl } : statusPage(p, status);
  if (CANCEL_STATUSES.has(status)) return p.redirectCancelUrl ? { kind: 'redirect', location: p.redirectCancelUrl } : statusPage(p, status);
  return null;
}

async function askPsp(deps: AppDeps, p: PaymentRow): Promise<{ connector: Connector; settings: Record<string, unknown>; result: PspResult<PspPayment> } | null> {
  const tenant = await deps.tenants.get(p.tenantIdentifier);
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
  // Usually the webhook was first: the payment already has the status the PSP reports (no transaction needed).
  if (outcomeRestatesStatus(p.status, { state: psp.state, ...(psp.lastDecline ? { decline: psp.lastDecline } : {}) })) return false;
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

/** A decline shown in place by the connector's form (CheckoutContext.inPageDeclines): the same text and field as `?error=`. */
function inPageNotice(locale: Locale, messageKey: string): { text: string; field: DeclineNotice['field'] } {
  const n = declineNotice(messageKey);
  return { text: declineText(locale, n.key), field: n.field };
}

/** `GET /app-payment` (sync-api.md 4.11). `requestLocale`: the browser's language, for pages of an unknown payment. */
export async function showPaymentPage(deps: AppDeps, query: Record<string, unknown>, requestId: string, requestLocale: Locale = 'en_US'): Promise<PageOutcome> {
  const transactionId = str(query.transactionId);
  const tenant = str(query.tenantIdentifier);
  if (!transactionId || !tenant) return unknownPaymentPage(400, requestLocale);
  const p = await findPaymentByTransaction(deps.db, tenant.slice(0, 255), transactionId.slice(0, 255));
  if (!p) return unknownPaymentPage(404, requestLocale);

  const done = afterPaymentTarget(p, p.status);
  if (done) return done;
  if (p.status !== 'new') return statusPage(p, p.status);

  const selfUrl = paymentPageUrl(deps.config.appBaseUrl, p.transactionId, p.tenantIdentifier);
  const asked = await askPsp(deps, p);
  if (!asked || !asked.result.ok) return unavailablePage(p, selfUrl);
  const psp = asked.result.value;
  if (psp.state !== 'pending' && psp.state !== 'requires_action') {
    // The shopper already finished at the PSP (e.g. reload before the return): settle it like the return handler.
    await applyPspState(deps, p, psp, requestId);
    return redirectFor(deps, asked.connector, p, psp);
  }
  const errorCode = str(query.error);
  const error = errorCode ? declineNotice(errorCode) : null;
  let form: CheckoutView;
  try {
    form = asked.connector.checkout(asked.settings, psp, {
      locale: localeOf(p),
      returnUrl: returnUrlFor(deps.config.appBaseUrl, p.tenantIdentifier, p.transactionId),
      pageUrl: selfUrl,
      cancelUrl: p.redirectCancelUrl,
      amountLabel: formatAmount(p.amount, p.currency, localeOf(p)),
      pspData: p.pspData,
      ...(error?.field ? { fieldError: { field: error.field, messageId: ERROR_MESSAGE_ID } } : {}),
      inPageDeclines: { messageId: ERROR_MESSAGE_ID, notice: (key) => inPageNotice(localeOf(p), key) },
    });
  } catch (err) {
    deps.log.error({ err, transactionId: p.transactionId }, 'payment page: connector could not render its form');
    return unavailablePage(p, selfUrl);
  }
  if (form.kind === 'redirect') return { kind: 'redirect', location: form.url }; // a PSP-hosted page
  const navigationOrigins = [originOf(p.redirectSuccessUrl), originOf(p.redirectCancelUrl), originOf(psp.actionUrl)].filter((o): o is string => o !== null);
  return {
    kind: 'page',
    view: {
      transactionId: p.transactionId,
      tenantIdentifier: p.tenantIdentifier,
      amount: p.amount,
      currency: p.currency,
      orderReference: p.orderReference,
      storeName: str(p.orderData.storeName) ?? null,
      items: linesOf(p, 'items'),
      expenses: linesOf(p, 'expenses'),
      discountTotal: positive(p.orderData.discountTotal),
      taxTotal: str(p.orderData.priceMode) === 'NET_MODE' ? positive(p.orderData.taxTotal) : null,
      locale: localeOf(p),
      formHtml: form.html,
      script: form.kind === 'sdk' ? { inline: form.script, external: form.externalScripts, required: true } : form.script ? { inline: form.script, external: [], required: false } : null,
      error,
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
export async function handlePaymentReturn(deps: AppDeps, query: Record<string, unknown>, requestId: string, requestLocale: Locale = 'en_US'): Promise<PageOutcome> {
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
  if (!p) return unknownPaymentPage(404, requestLocale);

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

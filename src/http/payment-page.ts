/**
 * `GET /app-payment` (hosted payment page, sync-api.md 4.11) and `GET /app-payment/redirect` (PSP return, 4.12).
 * Server-rendered HTML, no JavaScript, phone-width CSS, every value HTML-escaped, restrictive CSP.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CspSources } from '../connectors/types.js';
import type { AppDeps } from '../app/context.js';
import { handlePaymentReturn, showPaymentPage, type PageOutcome, type PaymentPageView } from '../app/payment-page.js';
import { formatAmount } from '../domain/money.js';

export const escapeHtml = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const e = escapeHtml;

type Lang = 'en' | 'de';
const langOf = (locale: string): Lang => (locale.toLowerCase().startsWith('de') ? 'de' : 'en');

const TEXT: Record<Lang, Record<string, string>> = {
  en: {
    title: 'Payment',
    order: 'Order',
    total: 'Total',
    items: 'Items',
    cancel: 'Cancel payment',
    back: 'Back to the order summary',
    retry: 'Try again',
    tryAgain: 'Please try again or use another card.',
  },
  de: {
    title: 'Zahlung',
    order: 'Bestellung',
    total: 'Gesamt',
    items: 'Artikel',
    cancel: 'Zahlung abbrechen',
    back: 'Zurück zur Bestellübersicht',
    retry: 'Erneut versuchen',
    tryAgain: 'Bitte versuchen Sie es erneut oder verwenden Sie eine andere Karte.',
  },
};

const DECLINES: Record<Lang, Record<string, string>> = {
  en: {
    card_declined: 'Your card was declined.',
    insufficient_funds: 'Your card has insufficient funds.',
    authentication_failed: 'The card authentication failed.',
    expired_card: 'Your card has expired.',
    incorrect_cvc: 'The security code is incorrect.',
    invalid_number: 'The card number is not valid.',
    status_unavailable: 'We could not confirm the payment status yet. If you have paid, you will be notified; otherwise please try again.',
  },
  de: {
    card_declined: 'Ihre Karte wurde abgelehnt.',
    insufficient_funds: 'Ihre Karte ist nicht ausreichend gedeckt.',
    authentication_failed: 'Die Kartenauthentifizierung ist fehlgeschlagen.',
    expired_card: 'Ihre Karte ist abgelaufen.',
    incorrect_cvc: 'Die Prüfnummer ist falsch.',
    invalid_number: 'Die Kartennummer ist ungültig.',
    status_unavailable: 'Der Zahlungsstatus konnte noch nicht bestätigt werden. Falls Sie bezahlt haben, werden Sie benachrichtigt; andernfalls versuchen Sie es bitte erneut.',
  },
};

export function declineMessage(code: string, locale: string): string {
  const lang = langOf(locale);
  const known = DECLINES[lang][code];
  if (known) return code === 'status_unavailable' ? known : `${known} ${TEXT[lang].tryAgain}`;
  // Only catalog messages are shown: text taken from the URL would let anyone put words on a real payment page.
  return lang === 'de' ? `Die Zahlung wurde nicht abgeschlossen. ${TEXT.de.tryAgain}` : `The payment was not completed. ${TEXT.en.tryAgain}`;
}

/** Minor units → display string (domain/money.ts). */
export const formatMoney = formatAmount;

const STYLE = `*{box-sizing:border-box}body{font-family:system-ui,-apple-system,sans-serif;margin:0;padding:1rem;background:#f4f5f7;color:#1d1f23;line-height:1.4}
main{max-width:30rem;margin:0 auto;background:#fff;border-radius:.5rem;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.25rem;margin:0 0 .5rem}.amount{font-size:1.6rem;font-weight:600;margin:.25rem 0 1rem}
table{width:100%;border-collapse:collapse;margin:0 0 1rem;font-size:.95rem}td{padding:.3rem 0;border-bottom:1px solid #eceef1;vertical-align:top}td.n{text-align:right;white-space:nowrap;padding-left:.5rem}
.error{background:#fdecec;color:#8a1c1c;padding:.6rem;border-radius:.35rem;margin:0 0 1rem}
form label{font-size:.9rem}form input{width:100%;padding:.6rem;font-size:1rem;border:1px solid #b8bcc4;border-radius:.35rem}
form button{width:100%;padding:.75rem;font-size:1rem;border:0;border-radius:.35rem;background:#2451d6;color:#fff;cursor:pointer}
.links{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.5rem;margin-top:1rem;font-size:.95rem}a{color:#2451d6}
.sandbox-hint,.note{font-size:.85rem;color:#555}`;

interface Csp {
  frameOrigin: string | null;
  /** Sources the connector's checkout declares (P6). */
  sources?: CspSources;
  navigationOrigins?: string[];
  /** Per-response nonce of the connector's inline script. */
  nonce?: string;
}

const uniq = (xs: Array<string | undefined>): string[] => [...new Set(xs.filter((x): x is string => typeof x === 'string' && x !== ''))];

function cspHeader(c: Csp): string {
  const src = c.sources ?? {};
  // form-action also covers the redirects after a form post (PSP → /app-payment/redirect → the shop's URLs).
  const formAction = uniq(["'self'", ...(src.formAction ?? []), ...(c.navigationOrigins ?? [])]).join(' ');
  const parts = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `img-src ${uniq(["'self'", 'data:', ...(src.img ?? [])]).join(' ')}`,
    "base-uri 'none'",
    `form-action ${formAction}`,
    `frame-ancestors ${c.frameOrigin ?? "'none'"}`,
  ];
  const script = uniq([...(c.nonce ? [`'nonce-${c.nonce}'`] : []), ...(src.script ?? [])]);
  if (script.length > 0) parts.push(`script-src ${script.join(' ')}`);
  const frame = uniq(src.frame ?? []);
  if (frame.length > 0) parts.push(`frame-src ${frame.join(' ')}`);
  const connect = uniq(src.connect ?? []);
  if (connect.length > 0) parts.push(`connect-src ${connect.join(' ')}`);
  return parts.join('; ');
}

function htmlHeaders(reply: FastifyReply, csp: Csp): FastifyReply {
  return reply
    .type('text/html; charset=utf-8')
    .header('Cache-Control', 'no-store')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', cspHeader(csp));
}

function document(lang: Lang, title: string, body: string): string {
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${e(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export function renderPaymentPage(v: PaymentPageView, nonce?: string): string {
  const lang = langOf(v.locale);
  const t = TEXT[lang];
  const items = v.items.length
    ? `<table aria-label="${e(t.items)}"><tbody>${v.items
        .map((i) => `<tr><td>${i.quantity !== null ? `${e(i.quantity)} × ` : ''}${e(i.name)}</td><td class="n">${i.total !== null ? e(formatMoney(i.total, v.currency, v.locale)) : ''}</td></tr>`)
        .join('')}</tbody></table>`
    : '';
  const error = v.error ? `<p class="error" role="alert">${e(declineMessage(v.error, v.locale))}</p>` : '';
  const links = [
    v.backUrl ? `<a class="back" href="${e(v.backUrl)}">${e(t.back)}</a>` : '',
    v.cancelUrl ? `<a class="cancel" href="${e(v.cancelUrl)}">${e(t.cancel)}</a>` : '',
  ].join('');
  const body = `<h1>${e(t.title)}${v.orderReference ? ` · ${e(t.order)} ${e(v.orderReference)}` : ''}</h1>
<p class="amount"><span class="total-label">${e(t.total)}:</span> <span class="amount-value">${e(formatMoney(v.amount, v.currency, v.locale))}</span> <span class="currency">${e(v.currency)}</span></p>
${items}${error}
${v.formHtml}
${scripts(v, nonce)}
<div class="links">${links}</div>`;
  return document(lang, `${t.title} – ${formatMoney(v.amount, v.currency, v.locale)}`, body);
}

const NOSCRIPT: Record<Lang, string> = {
  en: 'This payment page needs JavaScript. Please enable it, or return to the shop.',
  de: 'Diese Zahlungsseite benötigt JavaScript. Bitte aktivieren Sie es oder kehren Sie zum Shop zurück.',
};

/** The connector's scripts (external ones first, then its inline script with the nonce), and the no-JavaScript notice (S1). */
function scripts(v: PaymentPageView, nonce: string | undefined): string {
  if (!v.script || !nonce) return '';
  const lang = langOf(v.locale);
  const back = v.cancelUrl ? ` <a href="${e(v.cancelUrl)}">${e(TEXT[lang].cancel)}</a>` : '';
  return `<noscript><p class="error">${e(NOSCRIPT[lang])}${back}</p></noscript>
${v.script.external.map((u) => `<script nonce="${e(nonce)}" src="${e(u)}"></script>`).join('\n')}
<script nonce="${e(nonce)}">${v.script.inline.replace(/<\/(script)/gi, '<\\/$1')}</script>`;
}

function send(reply: FastifyReply, o: PageOutcome): FastifyReply {
  switch (o.kind) {
    case 'redirect':
      return reply.code(302).header('Location', o.location).header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer').send();
    case 'text':
      return reply.code(o.status).type('text/plain; charset=utf-8').header('Cache-Control', 'no-store').send(o.text);
    case 'page': {
      const nonce = o.view.script ? randomBytes(18).toString('base64') : undefined;
      return htmlHeaders(reply.code(200), { frameOrigin: o.frameOrigin, sources: o.csp, navigationOrigins: o.navigationOrigins, nonce }).send(renderPaymentPage(o.view, nonce));
    }
    case 'error-page': {
      const lang = langOf(o.locale);
      const retry = o.retryUrl ? `<p><a class="retry" href="${e(o.retryUrl)}">${e(TEXT[lang].retry)}</a></p>` : '';
      return htmlHeaders(reply.code(o.status), { frameOrigin: o.frameOrigin }).send(document(lang, o.message, `<h1>${e(o.message)}</h1>${retry}`));
    }
    case 'status-page': {
      const lang = langOf(o.locale);
      return htmlHeaders(reply.code(o.status), { frameOrigin: o.frameOrigin }).send(document(lang, o.message, `<h1>${e(o.message)}</h1>`));
    }
  }
}

const querySchema = {
  type: 'object',
  properties: {
    transactionId: { type: 'string', description: 'The payment\'s transaction id.' },
    tenantIdentifier: { type: 'string', description: 'The tenant.' },
  },
} as const;

export async function paymentPageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get(
    '/app-payment',
    {
      schema: {
        tags: ['payment page'],
        summary: 'Hosted payment page (HTML)',
        querystring: { ...querySchema, properties: { ...querySchema.properties, error: { type: 'string', description: 'Decline reason code to show.' } } },
        response: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } }, 302: { description: 'Already paid or cancelled', type: 'null' } },
      },
    },
    async (req, reply) => send(reply, await showPaymentPage(deps, (req.query ?? {}) as Record<string, unknown>, req.id)),
  );
  app.get(
    '/app-payment/redirect',
    {
      schema: {
        tags: ['payment page'],
        summary: 'Return address for the PSP: checks the payment status and redirects the shopper',
        querystring: querySchema,
        response: { 302: { description: 'Redirect per payment status', type: 'null' } },
      },
    },
    async (req, reply) => send(reply, await handlePaymentReturn(deps, (req.query ?? {}) as Record<string, unknown>, req.id)),
  );
}

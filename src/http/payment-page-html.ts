/**
 * The hosted payment page's HTML (sync-api.md 4.11): the order summary (shop, items, expenses, discount, total), the
 * connector's form, the decline message, and the error/status pages with their ways back to the shop.
 * Every text comes from the message catalog (src/i18n/messages.ts); every value is HTML-escaped. No script of its own:
 * only a connector brings one (an `sdk` checkout that needs it, or a `page` form it improves), tagged with the response's nonce.
 */
import type { PageLine, PageOutcome, PaymentPageView } from '../app/payment-page.js';
import { declineText, ERROR_MESSAGE_ID } from '../app/payment-page.js';
import { formatAmount } from '../domain/money.js';
import { t, type Locale, type MessageKey } from '../i18n/messages.js';

import { escapeHtml } from '../html.js';

export { escapeHtml };
const e = escapeHtml;

const htmlLang = (locale: Locale): string => locale.slice(0, 2);

/** Phone first; from 48rem the summary and the form sit side by side. Colours keep WCAG AA contrast. */
const STYLE = `*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:.75rem;background:#f4f5f7;color:#1d1f23;line-height:1.45}
main{max-width:30rem;margin:0 auto;background:#fff;border-radius:.5rem;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.shop{margin:0;font-size:.85rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:#4b5260}
h1{font-size:1.35rem;margin:.1rem 0 .1rem}.order{margin:0 0 1rem;color:#4b5260;font-size:.95rem}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
table.summary{width:100%;border-collapse:collapse;margin:0 0 1.25rem;font-size:.95rem}
.summary th{font-weight:400;text-align:left;padding:.35rem 0;border-bottom:1px solid #e3e5e9;vertical-align:top}
.summary td{text-align:right;white-space:nowrap;padding:.35rem 0 .35rem .75rem;border-bottom:1px solid #e3e5e9;vertical-align:top}
.summary .qty{color:#4b5260}.summary .discount td{color:#1a6b35}
.summary tfoot th,.summary tfoot td{font-weight:700;font-size:1.1rem;border-bottom:0;padding-top:.6rem}
.error{background:#fdecec;color:#8a1c1c;border-left:4px solid #c62828;padding:.6rem .75rem;border-radius:.35rem;margin:0 0 1rem}
.card-form .field{margin:0 0 .75rem}.card-form .row{display:flex;gap:.5rem}.card-form .row .field{flex:1;min-width:0}
.card-form label{display:block;font-size:.85rem;margin:0 0 .2rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.card-form input{width:100%;padding:.6rem;font-size:1rem;border:1px solid #8a909c;border-radius:.35rem;background:#fff;color:#1d1f23}
.card-form input[aria-invalid="true"]{border:2px solid #c62828;background:#fffafa}
button.pay,.card-form button{width:100%;margin:.25rem 0 0;padding:.8rem;font-size:1.05rem;font-weight:600;border:0;border-radius:.35rem;background:#2451d6;color:#fff;cursor:pointer}
button.pay:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
.sandbox-hint,.note{font-size:.85rem;color:#4b5260;margin:.75rem 0 0}
.links{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.75rem;margin-top:1.25rem;font-size:.95rem}a{color:#2451d6}
.notice h1{font-size:1.2rem}.notice .links{flex-direction:column;align-items:stretch}
a.retry{display:block;text-align:center;padding:.75rem;border-radius:.35rem;background:#2451d6;color:#fff;font-weight:600;text-decoration:none}
@media (min-width:48rem){body{padding:2rem}main.pay{max-width:58rem;display:grid;grid-template-columns:1fr 1fr;column-gap:2.5rem;padding:2rem}
main.pay>header,main.pay>.links{grid-column:1/-1}}`;

export function pageDocument(locale: Locale, title: string, body: string, mainClass = ''): string {
  return `<!doctype html>
<html lang="${htmlLang(locale)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${e(title)}</title><style>${STYLE}</style></head>
<body><main${mainClass ? ` class="${mainClass}"` : ''}>${body}</main></body></html>`;
}

function summaryRows(v: PaymentPageView): string {
  const money = (n: number): string => formatAmount(n, v.currency, v.locale);
  const row = (l: PageLine, fallback: MessageKey, cls: string): string =>
    `<tr class="${cls}"><th scope="row">${l.quantity !== null && l.quantity !== 1 ? `<span class="qty">${e(l.quantity)} ×</span> ` : ''}${e(l.name ?? t(v.locale, fallback))}</th><td>${l.total !== null ? e(money(l.total)) : ''}</td></tr>`;
  const rows = [
    ...v.items.map((l) => row(l, 'page_item_default', 'item')),
    ...v.expenses.map((l) => row(l, 'page_expense_default', 'expense')),
    v.discountTotal !== null ? `<tr class="discount"><th scope="row">${e(t(v.locale, 'page_discount'))}</th><td>−${e(money(v.discountTotal))}</td></tr>` : '',
    v.taxTotal !== null ? `<tr class="tax"><th scope="row">${e(t(v.locale, 'page_tax'))}</th><td>${e(money(v.taxTotal))}</td></tr>` : '',
  ];
  return rows.join('');
}

export function renderPaymentPage(v: PaymentPageView, nonce?: string): string {
  const L = v.locale;
  const total = formatAmount(v.amount, v.currency, L);
  const header = `<header>${v.storeName ? `<p class="shop">${e(v.storeName)}</p>` : ''}<h1>${e(t(L, 'page_title'))}</h1>${
    v.orderReference ? `<p class="order">${e(t(L, 'page_order', { reference: v.orderReference }))}</p>` : ''
  }</header>`;
  const summary = `<section class="summary-col" aria-labelledby="summary-h"><h2 id="summary-h" class="vh">${e(t(L, 'page_summary'))}</h2>
<table class="summary"><tbody>${summaryRows(v)}</tbody>
<tfoot><tr class="total"><th scope="row">${e(t(L, 'page_total'))}</th><td class="amount-value">${e(total)}</td></tr></tfoot></table></section>`;
  const error = v.error ? `<p id="${ERROR_MESSAGE_ID}" class="error" role="alert">${e(declineText(L, v.error.key))}</p>` : '';
  const links = [
    v.backUrl ? `<a class="back" href="${e(v.backUrl)}">${e(t(L, 'page_back'))}</a>` : '',
    v.cancelUrl ? `<a class="cancel" href="${e(v.cancelUrl)}">${e(t(L, 'page_cancel'))}</a>` : '',
  ].join('');
  const body = `${header}
${summary}
<section class="form-col" aria-labelledby="form-h"><h2 id="form-h" class="vh">${e(t(L, 'page_card_details'))}</h2>
${error}${v.formHtml}
${scripts(v, nonce)}</section>
${links ? `<nav class="links" aria-label="${e(t(L, 'page_back_to_shop'))}">${links}</nav>` : ''}`;
  return pageDocument(L, `${t(L, 'page_title')} – ${total}`, body, 'pay');
}

/**
 * The connector's scripts (external ones first, then its inline script with the nonce), and the no-JavaScript notice (S1)
 * when its form needs JavaScript (not for a script that only improves a form working without it).
 */
function scripts(v: PaymentPageView, nonce: string | undefined): string {
  if (!v.script || !nonce) return '';
  const back = v.cancelUrl ? ` <a href="${e(v.cancelUrl)}">${e(t(v.locale, 'page_cancel'))}</a>` : '';
  const noscript = v.script.required ? `<noscript><p class="error">${e(t(v.locale, 'page_noscript'))}${back}</p></noscript>\n` : '';
  return `${noscript}${v.script.external.map((u) => `<script nonce="${e(nonce)}" src="${e(u)}"></script>`).join('\n')}
<script nonce="${e(nonce)}">${v.script.inline.replace(/<\/(script)/gi, '<\\/$1')}</script>`;
}

/** An error or status page: the message, what to do, and every way back to the shop the payment gives. */
export function renderErrorPage(o: Extract<PageOutcome, { kind: 'error-page' }>): string {
  const L = o.locale;
  const l = o.links;
  const links = [
    l.retryUrl ? `<a class="retry" href="${e(l.retryUrl)}">${e(t(L, 'page_retry'))}</a>` : '',
    l.backUrl ? `<a class="back" href="${e(l.backUrl)}">${e(t(L, 'page_back'))}</a>` : '',
    l.cancelUrl ? `<a class="cancel" href="${e(l.cancelUrl)}">${e(t(L, 'page_cancel'))}</a>` : '',
    !l.backUrl && !l.cancelUrl && l.shopUrl ? `<a class="shop-link" href="${e(l.shopUrl)}">${e(t(L, 'page_back_to_shop'))}</a>` : '',
  ].join('');
  const message = t(L, o.message);
  const body = `<h1>${e(message)}</h1>${o.help ? `<p class="note">${e(t(L, o.help))}</p>` : ''}${links ? `<nav class="links" aria-label="${e(t(L, 'page_back_to_shop'))}">${links}</nav>` : ''}`;
  return pageDocument(L, message, body, 'notice');
}

/**
 * The sandbox's card form for the app's hosted payment page: the card goes straight to the sandbox, never to app code.
 *
 * Without JavaScript the form posts to the sandbox (`POST <checkoutUrl>/confirm`), which sends the browser back through
 * the app's return URL; after a decline the page is rendered anew with the message, the field it is about carries
 * `aria-invalid` and `aria-describedby` (CheckoutContext.fieldError), and the expiry of the declined card is filled in
 * again from what the sandbox reports (the card number never comes back from a PSP).
 *
 * With JavaScript (when the page offers in-place declines, CheckoutContext.inPageDeclines) a small script sends the
 * card to the sandbox's storefront API instead (`POST /v1/payments/{id}/confirm`, authenticated by the client secret,
 * JSON body, never a URL). A retryable decline stays on the page: the catalog text the page gave for the answer's code
 * goes into the message element, the field it concerns is marked, and everything typed (the number too) stays. Any other
 * answer leaves the page as the form post would: a challenge to the sandbox's challenge page (with the cancel URL),
 * everything else to the app's return URL, which asks the sandbox and redirects. No answer at all: the plain form post.
 *
 * Compact: the name and the number take a full row each, expiry month, expiry year and CVC share one row. Every field has
 * its `autocomplete` token and the numeric ones `inputmode="numeric"`.
 */
import type { CheckoutContext, CheckoutView, PspPayment } from '../types.js';
import { escapeHtml } from '../../html.js';

const LABELS: Record<string, Record<string, string>> = {
  en: {
    name: 'Name on card',
    cardNumber: 'Card number',
    expMonth: 'Exp. month',
    expYear: 'Exp. year',
    cvc: 'CVC',
    mm: 'MM',
    yyyy: 'YYYY',
    pay: 'Pay {amount}',
    hint: 'Test card 4242 4242 4242 4242, any future date, any CVC.',
  },
  de: {
    name: 'Name auf der Karte',
    cardNumber: 'Kartennummer',
    expMonth: 'Ablaufmonat',
    expYear: 'Ablaufjahr',
    cvc: 'Prüfnummer',
    mm: 'MM',
    yyyy: 'JJJJ',
    pay: '{amount} bezahlen',
    hint: 'Testkarte 4242 4242 4242 4242, beliebiges zukünftiges Datum, beliebige Prüfnummer.',
  },
};

const esc = escapeHtml;

const httpUrl = (u: string | null | undefined): string | null => {
  if (!u) return null;
  try {
    const p = new URL(u).protocol;
    return p === 'http:' || p === 'https:' ? u : null;
  } catch {
    return null;
  }
};

type Field = 'number' | 'expiry' | 'cvc';

/** The texts (from the app's catalog) the script shows per sandbox decline code (`*`: any other), and the message element's id. */
export interface InPageDeclines {
  messageId: string;
  byCode: Record<string, { text: string; field: Field | null }>;
}

/** Reads everything from the form's data attributes (escaped HTML), nothing from the URL; shows only catalog texts. */
const SCRIPT = `(function () {
  var form = document.getElementById('sbx-form');
  if (!form || !window.fetch) return;
  var d = form.dataset;
  var notices;
  try { notices = JSON.parse(d.declines); } catch (e) { return; }
  var button = form.querySelector('button[type="submit"]');
  var fields = { number: ['sbx-cardNumber'], expiry: ['sbx-expMonth', 'sbx-expYear'], cvc: ['sbx-cvc'] };
  var busy = false;
  var value = function (name) { var el = form.elements.namedItem(name); return el ? el.value : ''; };
  var go = function (url) { window.location.assign(url); };
  var idle = function () { busy = false; button.disabled = false; form.removeAttribute('aria-busy'); };
  function show(notice) {
    var msg = document.getElementById(d.messageId);
    if (!msg) {
      msg = document.createElement('p');
      msg.id = d.messageId;
      msg.className = 'error';
      msg.setAttribute('role', 'alert');
      form.parentNode.insertBefore(msg, form);
    }
    msg.textContent = notice.text;
    var first = null;
    Object.keys(fields).forEach(function (f) {
      fields[f].forEach(function (id) {
        var el = document.getElementById(id);
        if (!el) return;
        if (f === notice.field) {
          el.setAttribute('aria-invalid', 'true');
          el.setAttribute('aria-describedby', d.messageId);
          if (!first) first = el;
        } else {
          el.removeAttribute('aria-invalid');
          el.removeAttribute('aria-describedby');
        }
      });
    });
    (first || button).focus();
  }
  function challenge(url) {
    var cancel = value('cancelUrl');
    return cancel ? url + (url.indexOf('?') < 0 ? '?' : '&') + 'cancelUrl=' + encodeURIComponent(cancel) : url;
  }
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    var body = { clientSecret: value('clientSecret'), card: { number: value('cardNumber'), expMonth: value('expMonth'), expYear: value('expYear'), cvc: value('cvc') } };
    fetch(d.confirmUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'omit', cache: 'no-store' }).then(function (res) {
      return res.json().then(function (j) { return { status: res.status, body: j || {} }; }, function () { return { status: res.status, body: {} }; });
    }).then(function (r) {
      var e = r.body.error;
      if (r.status === 402 && e && e.type === 'card_error' && (e.declineType === 'retryable' || e.declineType === 'invalid')) {
        idle();
        show(notices[e.code] || notices['*']);
        return;
      }
      var next = r.body.nextAction;
      if (r.status === 200 && r.body.status === 'requires_action' && next && typeof next.url === 'string') return go(challenge(next.url));
      go(d.returnUrl);
    }, function () {
      form.submit();
    });
  });
})();`;

type Ctx = Pick<CheckoutContext, 'locale' | 'amountLabel' | 'cancelUrl' | 'fieldError' | 'returnUrl'>;

export function renderPaymentForm(payment: PspPayment, publicBaseUrl: string, ctx: Ctx, declines?: InPageDeclines): CheckoutView {
  const checkoutUrl = typeof payment.preOrderPaymentData.checkoutUrl === 'string' ? payment.preOrderPaymentData.checkoutUrl : `${publicBaseUrl}/checkout/${encodeURIComponent(payment.id)}`;
  const action = `${checkoutUrl}/confirm`;
  const l = LABELS[ctx.locale.slice(0, 2).toLowerCase()] ?? LABELS.en!;
  const clientSecret = String(payment.preOrderPaymentData.clientSecret ?? '');
  const err = ctx.fieldError;
  const invalid = (field: 'number' | 'expiry' | 'cvc'): string => (err && err.field === field ? ` aria-invalid="true" aria-describedby="${esc(err.messageId)}"` : '');
  // the declined card's expiry (public details of the last attempt), only to save typing it again
  const d = payment.publicDetails;
  const keepExpiry = err !== undefined && err.field !== 'expiry';
  const month = keepExpiry && Number.isInteger(d.cardExpMonth) ? ` value="${esc(String(d.cardExpMonth).padStart(2, '0'))}"` : '';
  const year = keepExpiry && Number.isInteger(d.cardExpYear) ? ` value="${esc(d.cardExpYear)}"` : '';
  const cancel = httpUrl(ctx.cancelUrl);
  const confirmUrl = `${publicBaseUrl}/v1/payments/${encodeURIComponent(payment.id)}/confirm`;
  const data = declines
    ? ` id="sbx-form" data-confirm-url="${esc(confirmUrl)}" data-return-url="${esc(ctx.returnUrl)}" data-message-id="${esc(declines.messageId)}" data-declines="${esc(JSON.stringify(declines.byCode))}"`
    : '';
  const html = `<form class="card-form" method="post" action="${esc(action)}" autocomplete="on"${data}>
<input type="hidden" name="clientSecret" value="${esc(clientSecret)}">${cancel ? `\n<input type="hidden" name="cancelUrl" value="${esc(cancel)}">` : ''}
<div class="field"><label for="sbx-name">${esc(l.name)}</label><input id="sbx-name" name="cardholderName" autocomplete="cc-name" maxlength="100"></div>
<div class="field"><label for="sbx-cardNumber">${esc(l.cardNumber)}</label><input id="sbx-cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" maxlength="23" placeholder="1234 1234 1234 1234" required${invalid('number')}></div>
<div class="row">
<div class="field"><label for="sbx-expMonth">${esc(l.expMonth)}</label><input id="sbx-expMonth" name="expMonth" inputmode="numeric" autocomplete="cc-exp-month" placeholder="${esc(l.mm)}" maxlength="2" required${month}${invalid('expiry')}></div>
<div class="field"><label for="sbx-expYear">${esc(l.expYear)}</label><input id="sbx-expYear" name="expYear" inputmode="numeric" autocomplete="cc-exp-year" placeholder="${esc(l.yyyy)}" maxlength="4" required${year}${invalid('expiry')}></div>
<div class="field"><label for="sbx-cvc">${esc(l.cvc)}</label><input id="sbx-cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" maxlength="4" required${invalid('cvc')}></div>
</div>
<button type="submit" class="pay">${esc(l.pay!.replace('{amount}', ctx.amountLabel))}</button>
<p class="sandbox-hint">${esc(l.hint)}</p>
</form>`;
  const formAction = [new URL(action).origin];
  if (!declines) return { kind: 'page', html, csp: { formAction } };
  return { kind: 'page', html, csp: { formAction, connect: [new URL(confirmUrl).origin] }, script: SCRIPT };
}

/**
 * The sandbox's card form for the app's hosted payment page: posts the card straight to the sandbox
 * (`POST <checkoutUrl>/confirm`), never to app code. No scripts.
 *
 * Compact: the name and the number take a full row each, expiry month, expiry year and CVC share one row. Every field has
 * its `autocomplete` token and the numeric ones `inputmode="numeric"`. After a decline the field the page's message is
 * about carries `aria-invalid` and `aria-describedby` (CheckoutContext.fieldError); the expiry of the declined card is
 * filled in again from what the sandbox reports (the card number never comes back from a PSP: it is not kept anywhere
 * but in the sandbox's own pages).
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

type Ctx = Pick<CheckoutContext, 'locale' | 'amountLabel' | 'cancelUrl' | 'fieldError'>;

export function renderPaymentForm(payment: PspPayment, publicBaseUrl: string, ctx: Ctx): CheckoutView {
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
  const html = `<form class="card-form" method="post" action="${esc(action)}" autocomplete="on">
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
  return { kind: 'page', html, csp: { formAction: [new URL(action).origin] } };
}

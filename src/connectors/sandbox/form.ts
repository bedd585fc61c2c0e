/**
 * The sandbox's card form for the app's hosted payment page: posts the card straight to the sandbox
 * (`POST <checkoutUrl>/confirm`), never to app code. No scripts.
 */
import type { CheckoutView, PspPayment } from '../types.js';

const LABELS: Record<string, Record<string, string>> = {
  en: { cardNumber: 'Card number', expMonth: 'Month', expYear: 'Year', cvc: 'CVC', pay: 'Pay', hint: 'Test card 4242 4242 4242 4242, any future date, any CVC.' },
  de: { cardNumber: 'Kartennummer', expMonth: 'Monat', expYear: 'Jahr', cvc: 'Prüfnummer', pay: 'Bezahlen', hint: 'Testkarte 4242 4242 4242 4242, beliebiges zukünftiges Datum, beliebige Prüfnummer.' },
};

const esc = (s: unknown): string => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function renderPaymentForm(payment: PspPayment, publicBaseUrl: string, locale: string): CheckoutView {
  const checkoutUrl = typeof payment.preOrderPaymentData.checkoutUrl === 'string' ? payment.preOrderPaymentData.checkoutUrl : `${publicBaseUrl}/checkout/${encodeURIComponent(payment.id)}`;
  const action = `${checkoutUrl}/confirm`;
  const l = LABELS[locale.slice(0, 2).toLowerCase()] ?? LABELS.en!;
  const clientSecret = String(payment.preOrderPaymentData.clientSecret ?? '');
  const html = `<form class="sandbox-card-form" method="post" action="${esc(action)}" autocomplete="on">
<input type="hidden" name="clientSecret" value="${esc(clientSecret)}">
<p><label for="sbx-cardNumber">${esc(l.cardNumber)}</label><br><input id="sbx-cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" maxlength="23" required></p>
<p><label for="sbx-expMonth">${esc(l.expMonth)}</label><br><input id="sbx-expMonth" name="expMonth" inputmode="numeric" autocomplete="cc-exp-month" placeholder="MM" maxlength="2" required></p>
<p><label for="sbx-expYear">${esc(l.expYear)}</label><br><input id="sbx-expYear" name="expYear" inputmode="numeric" autocomplete="cc-exp-year" placeholder="YYYY" maxlength="4" required></p>
<p><label for="sbx-cvc">${esc(l.cvc)}</label><br><input id="sbx-cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" maxlength="4" required></p>
<p><button type="submit">${esc(l.pay)}</button></p>
<p class="sandbox-hint">${esc(l.hint)}</p>
</form>`;
  return { kind: 'page', html, csp: { formAction: [new URL(action).origin] } };
}

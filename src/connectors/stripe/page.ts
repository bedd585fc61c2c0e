/**
 * The Stripe checkout on `/app-payment` (stripe.md 2, option B): Stripe.js from STRIPE_JS_URL, the Payment Element
 * mounted with the PaymentIntent's client secret, `confirmPayment` back to our return URL, `handleNextAction` when the
 * PaymentIntent waits for an in-page challenge. The inline script gets the app's per-response nonce.
 */
import type { CheckoutContext, CheckoutView, CspSources, PspPayment, TenantSettings } from '../types.js';
import { escapeHtml } from '../../html.js';

const LABELS: Record<string, { pay: string; processing: string; failed: string }> = {
  en: { pay: 'Pay', processing: 'Processing…', failed: 'The payment could not be started. Please try again.' },
  de: { pay: 'Bezahlen', processing: 'Wird verarbeitet…', failed: 'Die Zahlung konnte nicht gestartet werden. Bitte versuchen Sie es erneut.' },
};

const esc = escapeHtml;

const originOf = (url: string): string | null => {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
};

/** CSP sources of the page (stripe.md 2 and 8): Stripe.js origin for scripts and frames, the API origin for connect. */
export function stripeCsp(jsUrl: string, apiBase: string): CspSources {
  const js = originOf(jsUrl) ?? 'https://js.stripe.com';
  const api = originOf(apiBase) ?? 'https://api.stripe.com';
  return { script: [js], frame: [js, 'https://hooks.stripe.com'], connect: [api], img: ['https://*.stripe.com'] };
}

const COLOR = /^#[0-9A-Fa-f]{6}$/;

/** The script reads its inputs from data attributes (escaped HTML), never from the URL. */
const SCRIPT = `(function () {
  var box = document.getElementById('oacp-stripe');
  if (!box || typeof Stripe !== 'function') return;
  var d = box.dataset;
  var stripe = Stripe(d.publishableKey, d.locale ? { locale: d.locale } : undefined);
  var appearance = d.color ? { variables: { colorPrimary: d.color } } : {};
  var elements = stripe.elements({ clientSecret: d.clientSecret, appearance: appearance });
  var form = document.getElementById('oacp-stripe-form');
  var button = document.getElementById('oacp-stripe-pay');
  var message = document.getElementById('oacp-stripe-message');
  var back = function () { window.location.assign(d.returnUrl); };
  if (d.requiresAction === '1') {
    stripe.handleNextAction({ clientSecret: d.clientSecret }).then(back, back);
    return;
  }
  elements.create('payment').mount('#oacp-payment-element');
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    button.disabled = true;
    button.textContent = d.processing;
    message.textContent = '';
    stripe.confirmPayment({ elements: elements, confirmParams: { return_url: d.returnUrl } }).then(function (r) {
      if (r && r.error && (r.error.type === 'validation_error')) {
        button.disabled = false;
        button.textContent = d.pay;
        return;
      }
      // A decline or any other result: the server reads the PaymentIntent and shows a catalog message.
      back();
    }, function () {
      button.disabled = false;
      button.textContent = d.pay;
      message.textContent = d.failed;
    });
  });
})();`;

export function renderStripeCheckout(settings: TenantSettings, payment: PspPayment, ctx: CheckoutContext, env: { jsUrl: string; apiBase: string }): CheckoutView {
  const clientSecret = payment.preOrderPaymentData.clientSecret;
  const publishableKey = typeof settings.publishableKey === 'string' ? settings.publishableKey : '';
  if (typeof clientSecret !== 'string' || !clientSecret || !publishableKey) throw new Error('PaymentIntent without client secret or tenant without publishable key');
  const lang = ctx.locale.slice(0, 2).toLowerCase();
  const l = LABELS[lang] ?? LABELS.en!;
  const color = typeof settings.payButtonColor === 'string' && COLOR.test(settings.payButtonColor) ? settings.payButtonColor : '';
  const pay = `${l.pay} ${ctx.amountLabel}`;
  const html = `<div id="oacp-stripe" class="stripe-checkout" data-publishable-key="${esc(publishableKey)}" data-client-secret="${esc(clientSecret)}" data-return-url="${esc(ctx.returnUrl)}" data-locale="${esc(lang)}" data-color="${esc(color)}" data-requires-action="${payment.state === 'requires_action' ? '1' : '0'}" data-pay="${esc(pay)}" data-processing="${esc(l.processing)}" data-failed="${esc(l.failed)}">
<form id="oacp-stripe-form">
<div id="oacp-payment-element"></div>
<p><button id="oacp-stripe-pay" type="submit">${esc(pay)}</button></p>
<p id="oacp-stripe-message" class="error" role="alert"></p>
</form>
</div>`;
  return { kind: 'sdk', html, script: SCRIPT, externalScripts: [env.jsUrl], csp: stripeCsp(env.jsUrl, env.apiBase) };
}

/**
 * The sandbox's own browser pages: hosted checkout, challenge, merchant onboarding. No JavaScript,
 * phone-width, everything HTML-escaped, a restrictive Content-Security-Policy.
 */
import type { FastifyReply } from 'fastify';
import type { Payment } from './model.js';
import { escapeHtml as e } from './util.js';

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;padding:1rem;background:#f4f5f7;color:#1d1f23}
main{max-width:28rem;margin:0 auto;background:#fff;border-radius:.5rem;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.25rem;margin:0 0 .75rem}.amount{font-size:1.5rem;font-weight:600;margin:.25rem 0 1rem}
label{display:block;margin:.6rem 0 .2rem;font-size:.9rem}input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #b8bcc4;border-radius:.35rem}
.row{display:flex;gap:.5rem}.row>div{flex:1}button{width:100%;margin-top:1rem;padding:.75rem;font-size:1rem;border:0;border-radius:.35rem;background:#2451d6;color:#fff}
button.secondary{background:#5b6270}.links{margin-top:1rem;text-align:center}a{color:#2451d6}.error{background:#fdecec;color:#8a1c1c;padding:.6rem;border-radius:.35rem}.note{font-size:.85rem;color:#555}`;

export function formatAmount(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(amount / 100);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency}`;
  }
}

/**
 * Sends a full page with the sandbox's security headers. `form-action` allows any http(s) target: Chromium applies it to
 * every redirect after a form post, and the chain (sandbox -> app return URL -> shop success URL) ends at an origin the
 * sandbox cannot know. `formTargets` are kept for callers that name extra origins.
 */
export function sendPage(reply: FastifyReply, status: number, title: string, body: string, formTargets: string[] = []): FastifyReply {
  const origins = [...new Set([...formTargets, 'http:', 'https:'])].join(' ');
  reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('Cache-Control', 'no-store')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'self'${origins ? ' ' + origins : ''}`);
  return reply.send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} – Sandbox PSP</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`);
}

export function originOf(url: string | null): string[] {
  if (!url) return [];
  try {
    return [new URL(url).origin];
  } catch {
    return [];
  }
}

/** What the shopper typed, shown again on the sandbox's own page after a decline (it never leaves the sandbox). */
export interface EnteredCard {
  number: string;
  expMonth: string;
  expYear: string;
}

/** Which field a sandbox decline code is about. */
const FIELD_OF: Record<string, 'cardNumber' | 'expiry' | 'cvc'> = { invalid_number: 'cardNumber', invalid_expiry: 'expiry', expired_card: 'expiry', invalid_cvc: 'cvc' };

/** The card fields of the standalone checkout page (the connector renders its own copy for the app's page). */
function cardForm(action: string, p: Payment, error: string | null, entered: EnteredCard | null): string {
  const field = error ? (FIELD_OF[p.lastDecline?.code ?? ''] ?? 'cardNumber') : null;
  const invalid = (f: string): string => (field === f ? ' aria-invalid="true" aria-describedby="sbx-error"' : '');
  const value = (v: string | undefined): string => (v ? ` value="${e(v)}"` : '');
  return `${error ? `<p id="sbx-error" class="error" role="alert">${e(error)}</p>` : ''}
<form method="post" action="${e(action)}">
<input type="hidden" name="clientSecret" value="${e(p.clientSecret)}"><input type="hidden" name="origin" value="checkout">
<label for="cardNumber">Card number</label><input id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" required${value(entered?.number)}${invalid('cardNumber')}>
<div class="row"><div><label for="expMonth">Month</label><input id="expMonth" name="expMonth" inputmode="numeric" autocomplete="cc-exp-month" placeholder="MM" required${value(entered?.expMonth)}${invalid('expiry')}></div>
<div><label for="expYear">Year</label><input id="expYear" name="expYear" inputmode="numeric" autocomplete="cc-exp-year" placeholder="YYYY" required${value(entered?.expYear)}${invalid('expiry')}></div>
<div><label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" required${invalid('cvc')}></div></div>
<button type="submit">Pay ${e(formatAmount(p.amount, p.currency))}</button></form>
<p class="note">Test card 4242 4242 4242 4242, any future date, any CVC.</p>`;
}

/** The standalone checkout page; `entered`: the card typed in the attempt just declined (number and expiry kept, CVC not). */
export function checkoutPage(reply: FastifyReply, base: string, p: Payment, error: string | null, entered: EnteredCard | null = null): FastifyReply {
  const head = `<h1>Sandbox checkout</h1>${p.reference ? `<p>Order ${e(p.reference)}</p>` : ''}<p class="amount">${e(formatAmount(p.amount, p.currency))}</p>`;
  let body: string;
  if (p.status === 'requires_payment_method') body = cardForm(`${base}/checkout/${p.id}/confirm`, p, error ?? p.lastDecline?.message ?? null, entered);
  else if (p.status === 'requires_action') body = `<p>This payment needs authentication.</p><p><a href="${e(`${base}/checkout/${p.id}/challenge`)}">Continue to the authentication</a></p>`;
  else body = `<p>This payment is <b>${e(p.status.replace(/_/g, ' '))}</b>.</p>${p.returnUrl ? `<p><a href="${e(p.returnUrl)}">Back to the shop</a></p>` : ''}`;
  return sendPage(reply, 200, 'Checkout', head + body, originOf(p.returnUrl));
}

export function challengePage(reply: FastifyReply, base: string, p: Payment, cancelUrl: string | null = null): FastifyReply {
  const cancel = cancelUrl ? `<p class="links"><a class="cancel" href="${e(cancelUrl)}">Cancel and return to the shop</a></p>` : '';
  const body =
    p.status === 'requires_action'
      ? `<h1>Authenticate this payment</h1><p class="amount">${e(formatAmount(p.amount, p.currency))}</p>
<p>Your bank asks you to confirm this payment (simulated 3-D Secure).</p>
<form method="post" action="${e(`${base}/checkout/${p.id}/challenge`)}">
<button type="submit" name="outcome" value="complete">Complete</button>
<button type="submit" name="outcome" value="fail" class="secondary">Fail</button></form>${cancel}`
      : `<h1>Authentication</h1><p>There is nothing to authenticate: this payment is <b>${e(p.status.replace(/_/g, ' '))}</b>.</p>${cancel}`;
  return sendPage(reply, 200, 'Authentication', body, originOf(p.returnUrl));
}

export function onboardingPage(reply: FastifyReply, base: string, account: Record<string, any>, returnUrl: string | null): FastifyReply {
  const action = `${base}/onboarding/${account.id}${returnUrl ? `?returnUrl=${encodeURIComponent(returnUrl)}` : ''}`;
  const body =
    account.status === 'pending'
      ? `<h1>Merchant onboarding</h1><p>Account for <b>${e(account.name ?? account.reference ?? account.id)}</b>.</p>
<p>Submit to finish the (simulated) verification of this merchant.</p>
<form method="post" action="${e(action)}">
<button type="submit" name="outcome" value="complete">Complete</button>
<button type="submit" name="outcome" value="fail" class="secondary">Fail</button></form>`
      : `<h1>Merchant onboarding</h1><p>This account is <b>${e(account.status)}</b>.</p>${returnUrl ? `<p><a href="${e(returnUrl)}">Continue</a></p>` : ''}`;
  return sendPage(reply, 200, 'Onboarding', body, originOf(returnUrl));
}

export function errorPage(reply: FastifyReply, status: number, message: string): FastifyReply {
  return sendPage(reply, status, 'Error', `<h1>Sandbox PSP</h1><p class="error">${e(message)}</p>`);
}

/**
 * Sandbox Express (sandbox-psp.md, flows.md 6): the widget script announced for the `sandbox-express` method
 * (`GET /sandbox/express.js`), the express dialog page it opens in an overlay iframe (`GET /sandbox/express/{id}`) and
 * that page's script (`GET /sandbox/express-page.js`).
 *
 * Storefront use (CSP: `script-src` and `frame-src` must allow the sandbox origin; no inline script, no eval, styles
 * set through the CSSOM only):
 *
 *   <script src="https://app.example/sandbox/express.js"></script>
 *   <div data-sandbox-express data-pre-order-payment-data='{"transactionId":"sbx_pay_..","clientSecret":".."}'></div>
 *   or SandboxExpress.render(element, { createPayment: async () => preOrderPaymentData, onApprove, onCancel, onError })
 *
 * The widget renders a button; a click gets `preOrderPaymentData` (from the attribute or `createPayment()`, typically
 * the storefront's `POST /payments`), opens the express page where the payer enters name, e-mail, addresses and a
 * test card; the page confirms the payment through the sandbox API (`POST /sandbox/v1/payments/{id}/confirm` with
 * `clientSecret` and `payer`) and tells the widget (postMessage, origin checked). The widget then fires
 * `sandbox-express:approve` / `:cancel` / `:error` DOM events on the element (and the callbacks). The `clientSecret`
 * travels in the URL fragment, so it never reaches a server log.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { loadPayment } from './model.js';
import { errorPage, formatAmount } from './pages.js';
import { escapeHtml as e } from './util.js';

const WIDGET_JS = String.raw`/* Sandbox Express widget */
(function () {
  'use strict';
  var me = document.currentScript;
  var base = me && me.src ? me.src.replace(/\/express\.js(?:[?#].*)?$/, '') : '';
  var origin = base ? new URL(base, location.href).origin : location.origin;
  function css(el, s) { for (var k in s) el.style[k] = s[k]; return el; }
  function fire(el, name, detail, cb) {
    el.dispatchEvent(new CustomEvent('sandbox-express:' + name, { detail: detail, bubbles: true }));
    if (typeof cb === 'function') { try { cb(detail); } catch (err) { console.error(err); } }
  }
  function render(el, opts) {
    opts = opts || {};
    if (el.__sandboxExpress) return el.__sandboxExpress;
    var button = css(document.createElement('button'), { padding: '.7rem 1.2rem', fontSize: '1rem', border: '0', borderRadius: '.4rem', background: '#111827', color: '#fff', cursor: 'pointer' });
    button.type = 'button';
    button.className = 'sandbox-express-button';
    button.textContent = opts.label || 'Sandbox Express';
    el.appendChild(button);
    var overlay = null, pod = null;
    function close() { if (overlay) { overlay.remove(); overlay = null; } window.removeEventListener('message', onMessage); button.disabled = false; }
    function onMessage(ev) {
      if (ev.origin !== origin || !ev.data || ev.data.type !== 'sandbox-express' || !pod || ev.data.transactionId !== pod.transactionId) return;
      var detail = { preOrderPaymentData: pod, status: ev.data.status, message: ev.data.message || null };
      if (ev.data.status === 'approved') { close(); fire(el, 'approve', detail, opts.onApprove); }
      else if (ev.data.status === 'canceled') { close(); fire(el, 'cancel', detail, opts.onCancel); }
      else if (ev.data.status === 'failed') { close(); fire(el, 'error', detail, opts.onError); }
    }
    function open(data) {
      if (!data || typeof data.transactionId !== 'string' || typeof data.clientSecret !== 'string') throw new Error('preOrderPaymentData needs transactionId and clientSecret');
      pod = data;
      overlay = css(document.createElement('div'), { position: 'fixed', inset: '0', background: 'rgba(0,0,0,.45)', display: 'flex', alignItems: 'center', justifyContent: 'center', zIndex: '2147483647' });
      overlay.className = 'sandbox-express-overlay';
      var frame = css(document.createElement('iframe'), { width: 'min(30rem, 96vw)', height: 'min(46rem, 94vh)', border: '0', borderRadius: '.5rem', background: '#fff' });
      frame.title = 'Sandbox Express';
      frame.name = 'sandbox-express';
      frame.src = base + '/express/' + encodeURIComponent(data.transactionId) + '#' + encodeURIComponent(data.clientSecret);
      overlay.appendChild(frame);
      window.addEventListener('message', onMessage);
      document.body.appendChild(overlay);
    }
    button.addEventListener('click', function () {
      button.disabled = true;
      Promise.resolve(opts.preOrderPaymentData || (typeof opts.createPayment === 'function' ? opts.createPayment() : null))
        .then(open)
        .catch(function (err) { button.disabled = false; fire(el, 'error', { preOrderPaymentData: null, status: 'failed', message: String(err && err.message || err) }, opts.onError); });
    });
    el.__sandboxExpress = { close: close, button: button };
    return el.__sandboxExpress;
  }
  function auto() {
    var els = document.querySelectorAll('[data-sandbox-express]');
    for (var i = 0; i < els.length; i++) {
      var raw = els[i].getAttribute('data-pre-order-payment-data');
      var data = null;
      try { data = raw ? JSON.parse(raw) : null; } catch (err) { data = null; }
      if (data || !els[i].hasAttribute('data-manual')) render(els[i], { preOrderPaymentData: data });
    }
  }
  window.SandboxExpress = { render: render, base: base };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', auto); else auto();
})();
`;

const PAGE_JS = String.raw`/* Sandbox Express dialog */
(function () {
  'use strict';
  var form = document.getElementById('express');
  var msg = document.getElementById('message');
  var id = form.getAttribute('data-payment');
  var secret = decodeURIComponent(location.hash.slice(1));
  var target = window.parent !== window ? window.parent : window.opener;
  function tell(status, message) { if (target) target.postMessage({ type: 'sandbox-express', transactionId: id, status: status, message: message || null }, '*'); }
  function show(text) { msg.textContent = text; msg.hidden = !text; }
  function v(name) { var el = form.elements[name]; var s = el ? String(el.value).trim() : ''; return s === '' ? null : s; }
  function address(prefix) {
    return { salutation: v(prefix + 'salutation'), firstName: v(prefix + 'firstName'), lastName: v(prefix + 'lastName'), address1: v(prefix + 'address1'), address2: v(prefix + 'address2'),
      zipCode: v(prefix + 'zipCode'), city: v(prefix + 'city'), iso2Code: (v(prefix + 'iso2Code') || '').toUpperCase() || null, email: v('email'), phone: v('phone') };
  }
  document.getElementById('cancel').addEventListener('click', function () { tell('canceled'); });
  document.getElementById('sameAddress').addEventListener('change', function (ev) { document.getElementById('shipping').hidden = ev.target.checked; });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    show('');
    var billing = address('');
    var payer = { salutation: v('salutation'), firstName: v('firstName'), lastName: v('lastName'), email: v('email'), phone: v('phone'),
      billingAddress: billing, shippingAddress: form.elements.sameAddress.checked ? billing : address('ship_') };
    var body = { clientSecret: secret, card: { number: v('cardNumber') || '', expMonth: v('expMonth') || '', expYear: v('expYear') || '', cvc: v('cvc') || '' }, payer: payer };
    var button = form.querySelector('button[type=submit]');
    button.disabled = true;
    fetch(new URL('../v1/payments/' + encodeURIComponent(id) + '/confirm', location.href).toString(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (res) { return res.json().then(function (b) { return { status: res.status, body: b }; }); })
      .then(function (r) {
        button.disabled = false;
        if (r.status === 200 && (r.body.status === 'authorized' || r.body.status === 'captured')) { show('Approved.'); tell('approved'); return; }
        if (r.status === 200) { show('This card needs a challenge, which Sandbox Express does not support. Use another test card.'); return; }
        var err = r.body && r.body.error || {};
        show(err.message || 'The payment could not be confirmed.');
        if (err.declineType === 'final') { button.disabled = true; tell('failed', err.message); }
      })
      .catch(function () { button.disabled = false; show('The payment provider could not be reached. Try again.'); });
  });
})();
`;

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#1d1f23}h1{font-size:1.2rem;margin:0 0 .25rem}
.amount{font-size:1.4rem;font-weight:600;margin:0 0 .75rem}fieldset{border:1px solid #d4d7dd;border-radius:.4rem;margin:.6rem 0;padding:.4rem .7rem .7rem}
label{display:block;margin:.4rem 0 .15rem;font-size:.85rem}input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #b8bcc4;border-radius:.3rem}
.row{display:flex;gap:.5rem}.row>div{flex:1}.check{display:flex;gap:.4rem;align-items:center}.check input{width:auto}
button{width:100%;margin-top:.7rem;padding:.7rem;font-size:1rem;border:0;border-radius:.35rem;background:#111827;color:#fff}
button.secondary{background:#6b7280}#message{background:#fdecec;color:#8a1c1c;padding:.5rem;border-radius:.3rem}.note{font-size:.8rem;color:#555}`;

const field = (name: string, label: string, attrs = ''): string =>
  `<div><label for="${name}">${e(label)}</label><input id="${name}" name="${name}" ${attrs}></div>`;

function addressFields(prefix: string, required: boolean): string {
  const r = required ? 'required' : '';
  return `<div class="row">${field(`${prefix}firstName`, 'First name', `autocomplete="given-name" ${r}`)}${field(`${prefix}lastName`, 'Last name', `autocomplete="family-name" ${r}`)}</div>
${field(`${prefix}address1`, 'Street', `autocomplete="address-line1" ${r}`)}${field(`${prefix}address2`, 'House number / addition', 'autocomplete="address-line2"')}
<div class="row">${field(`${prefix}zipCode`, 'ZIP', `autocomplete="postal-code" ${r}`)}${field(`${prefix}city`, 'City', `autocomplete="address-level2" ${r}`)}${field(`${prefix}iso2Code`, 'Country (ISO 2)', `maxlength="2" autocomplete="country" ${r}`)}</div>`;
}

function sendJs(reply: FastifyReply, js: string): FastifyReply {
  return reply
    .code(200)
    .type('text/javascript; charset=utf-8')
    .header('Cache-Control', 'public, max-age=300')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Cross-Origin-Resource-Policy', 'cross-origin')
    .send(js);
}

/** Registers the express routes inside the sandbox plugin (prefix `/sandbox`). */
export async function expressRoutes(s: FastifyInstance, opts: { db: Parameters<typeof loadPayment>[0] }): Promise<void> {
  const page = { schema: { tags: ['sandbox'], hide: true } };
  s.get('/express.js', { schema: { tags: ['sandbox'], summary: 'Sandbox Express widget script (announced with the sandbox-express method)' } }, async (_req, reply) => sendJs(reply, WIDGET_JS));
  s.get('/express-page.js', page, async (_req, reply) => sendJs(reply, PAGE_JS));
  s.get<{ Params: { id: string } }>('/express/:id', page, async (req, reply) => {
    const p = await loadPayment(opts.db, req.params.id);
    if (!p) return errorPage(reply, 404, 'Payment not found.');
    const open = p.status === 'requires_payment_method';
    const body = open
      ? `<h1>Sandbox Express</h1><p class="amount">${e(formatAmount(p.amount, p.currency))}</p>
<p id="message" role="alert" hidden></p>
<form id="express" data-payment="${e(p.id)}" novalidate>
<fieldset><legend>Contact</legend><div class="row">${field('salutation', 'Salutation', 'autocomplete="honorific-prefix"')}${field('phone', 'Phone', 'autocomplete="tel"')}</div>
${field('email', 'E-mail', 'type="email" autocomplete="email" required')}</fieldset>
<fieldset><legend>Billing address</legend>${addressFields('', true)}</fieldset>
<p class="check"><input type="checkbox" id="sameAddress" name="sameAddress" checked><label for="sameAddress">Ship to the billing address</label></p>
<fieldset id="shipping" hidden><legend>Shipping address</legend>${addressFields('ship_', false)}</fieldset>
<fieldset><legend>Card</legend>${field('cardNumber', 'Card number', 'inputmode="numeric" autocomplete="cc-number" required')}
<div class="row">${field('expMonth', 'Month', 'inputmode="numeric" placeholder="MM" required')}${field('expYear', 'Year', 'inputmode="numeric" placeholder="YYYY" required')}${field('cvc', 'CVC', 'inputmode="numeric" required')}</div></fieldset>
<button type="submit">Pay ${e(formatAmount(p.amount, p.currency))}</button><button type="button" id="cancel" class="secondary">Cancel</button></form>
<p class="note">Test card 4242 4242 4242 4242, any future date, any CVC.</p><script src="../express-page.js"></script>`
      : `<h1>Sandbox Express</h1><p id="message" role="alert">This payment is ${e(p.status)}; it cannot be confirmed any more.</p>`;
    return reply
      .code(200)
      .type('text/html; charset=utf-8')
      .header('Cache-Control', 'no-store')
      .header('Referrer-Policy', 'no-referrer')
      .header('X-Content-Type-Options', 'nosniff')
      .header(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors *",
      )
      .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox Express – Sandbox PSP</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`);
  });
}

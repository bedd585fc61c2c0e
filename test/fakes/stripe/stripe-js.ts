/**
 * The stripe.js double served at `${fake.url}/v3/` (placeholders __BASE__, __CARDS__, __PMS__ filled by pages.ts).
 * Plain ES5-ish browser code, no inline styles or eval, so it runs under the payment page's nonce-based CSP.
 */
export const STRIPE_JS = String.raw`/* Stripe.js test double (Open ACP Pay test fake); not Stripe's code. */
(function () {
  'use strict';
  var API = __BASE__;
  var CARDS = __CARDS__;
  var PMS = __PMS__;
  var DEFAULT_PAYER = {
    name: 'Jenny Rosen',
    email: 'jenny.rosen@example.com',
    phone: '+4930123456',
    address: { line1: 'Unter den Linden 1', line2: null, city: 'Berlin', state: null, postal_code: '10117', country: 'DE' }
  };

  function enc(obj, prefix, out) {
    for (var k in obj) {
      if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
      var v = obj[k];
      if (v === undefined || v === null) continue;
      var key = prefix ? prefix + '[' + k + ']' : k;
      if (typeof v === 'object') enc(v, key, out);
      else out.push(encodeURIComponent(key) + '=' + encodeURIComponent(String(v)));
    }
    return out;
  }

  function piId(clientSecret) {
    return String(clientSecret || '').split('_secret_')[0];
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function withParams(returnUrl, pi, status) {
    var u = new URL(returnUrl, location.href);
    u.searchParams.set('payment_intent', pi.id);
    u.searchParams.set('payment_intent_client_secret', pi.client_secret);
    u.searchParams.set('redirect_status', status);
    return u.toString();
  }

  function Element(type, options, group) {
    this.type = type;
    this.options = options || {};
    this.group = group;
    this.handlers = {};
    this.node = null;
  }
  Element.prototype.on = function (name, fn) {
    (this.handlers[name] = this.handlers[name] || []).push(fn);
    return this;
  };
  Element.prototype.off = function (name, fn) {
    this.handlers[name] = (this.handlers[name] || []).filter(function (h) { return h !== fn; });
    return this;
  };
  Element.prototype.once = function (name, fn) {
    var self = this;
    var w = function (e) { self.off(name, w); fn(e); };
    return this.on(name, w);
  };
  Element.prototype.emit = function (name, ev) {
    (this.handlers[name] || []).slice().forEach(function (h) { h(ev); });
  };
  Element.prototype.update = function (o) { for (var k in o) this.options[k] = o[k]; };
  Element.prototype.focus = function () { if (this.input) this.input.focus(); };
  Element.prototype.blur = function () {};
  Element.prototype.clear = function () { if (this.input) this.input.value = ''; };
  Element.prototype.unmount = function () { if (this.node && this.node.parentNode) this.node.parentNode.removeChild(this.node); };
  Element.prototype.destroy = function () { this.unmount(); this.group.els = this.group.els.filter(function (x) { return x !== this; }, this); };
  Element.prototype.showError = function (message) { if (this.errorNode) this.errorNode.textContent = message || ''; };
  Element.prototype.mount = function (target) {
    var host = typeof target === 'string' ? document.querySelector(target) : target;
    if (!host) throw new Error('stripe.js double: mount target not found: ' + target);
    var self = this;
    var root = el('div', { 'class': 'fake-stripe-element', 'data-fake-stripe': this.type });
    var select = el('select', { name: 'test-pm', 'data-testid': 'test-pm', 'aria-label': 'Test payment method' });
    select.appendChild(el('option', { value: '' }, this.type === 'payment' ? 'Use the card number' : 'pm_card_visa'));
    PMS.forEach(function (p) { select.appendChild(el('option', { value: p }, p)); });
    this.select = select;
    if (this.type === 'payment') {
      var label = el('label', {}, 'Card number ');
      var input = el('input', { name: 'cardnumber', 'data-testid': 'card-number', autocomplete: 'cc-number', inputmode: 'numeric', placeholder: '4242 4242 4242 4242' });
      input.addEventListener('input', function () {
        var pm = self.paymentMethod();
        self.showError('');
        self.emit('change', { elementType: 'payment', empty: !input.value, complete: !!pm, collapsed: false, value: { type: 'card' } });
      });
      label.appendChild(input);
      this.input = input;
      root.appendChild(label);
      root.appendChild(el('label', {}, 'or test method '));
      root.lastChild.appendChild(select);
    } else if (this.type === 'expressCheckout') {
      var button = el('button', { type: 'button', 'data-testid': 'express-pay' }, 'Pay with Fake Wallet');
      button.addEventListener('click', function () {
        var resolved = {};
        self.emit('click', { elementType: 'expressCheckout', expressPaymentType: 'fake_wallet', resolve: function (o) { resolved = o || {}; } });
        var payer = self.options.fakePayer || DEFAULT_PAYER;
        self.emit('confirm', {
          elementType: 'expressCheckout',
          expressPaymentType: 'fake_wallet',
          billingDetails: payer,
          shippingAddress: resolved.shippingAddressRequired === false ? null : { name: payer.name, address: payer.address },
          shippingRate: null,
          paymentFailed: function () { self.showError('Payment failed'); }
        });
      });
      root.appendChild(button);
      root.appendChild(select);
    } else {
      root.appendChild(el('span', {}, 'stripe.js double: element ' + this.type));
    }
    this.errorNode = el('div', { 'class': 'fake-stripe-error', role: 'alert', 'data-testid': 'stripe-error' });
    root.appendChild(this.errorNode);
    host.appendChild(root);
    this.node = root;
    setTimeout(function () { self.emit('ready', { elementType: self.type }); }, 0);
    return this;
  };
  /** The test PaymentMethod chosen or typed, or null. */
  Element.prototype.paymentMethod = function () {
    if (this.select && this.select.value) return this.select.value;
    if (this.type === 'expressCheckout') return 'pm_card_visa';
    var digits = this.input ? this.input.value.replace(/\D/g, '') : '';
    return CARDS[digits] || null;
  };
  Element.prototype.payer = function () {
    return this.type === 'expressCheckout' ? this.options.fakePayer || DEFAULT_PAYER : null;
  };

  function Elements(stripe, options) {
    this.stripe = stripe;
    this.options = options || {};
    this.els = [];
  }
  Elements.prototype.create = function (type, options) {
    var e = new Element(type, options, this);
    this.els.push(e);
    return e;
  };
  Elements.prototype.getElement = function (type) {
    for (var i = 0; i < this.els.length; i++) if (this.els[i].type === type) return this.els[i];
    return null;
  };
  Elements.prototype.update = function (o) { for (var k in o) this.options[k] = o[k]; };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype.submit = function () {
    var e = this.els[0];
    if (e && !e.paymentMethod()) {
      var error = { type: 'validation_error', code: 'incomplete_number', message: 'Your card number is incomplete.' };
      e.showError(error.message);
      return Promise.resolve({ error: error });
    }
    return Promise.resolve({});
  };
  Elements.prototype.first = function () { return this.els[0] || null; };

  function StripeDouble(key, options) {
    if (!(this instanceof StripeDouble)) return new StripeDouble(key, options);
    if (!/^pk_(test|live)_/.test(String(key))) throw new Error('stripe.js double: invalid publishable key');
    this.key = key;
    this.account = options && options.stripeAccount;
  }
  StripeDouble.prototype.request = function (method, path, params) {
    var headers = { Authorization: 'Bearer ' + this.key };
    if (this.account) headers['Stripe-Account'] = this.account;
    var body;
    var url = API + path;
    var q = enc(params || {}, '', []).join('&');
    if (method === 'GET') url += '?' + q;
    else {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = q;
    }
    return fetch(url, { method: method, headers: headers, body: body }).then(function (r) { return r.json(); });
  };
  StripeDouble.prototype.elements = function (options) { return new Elements(this, options); };
  StripeDouble.prototype.retrievePaymentIntent = function (clientSecret) {
    return this.request('GET', '/v1/payment_intents/' + piId(clientSecret), { client_secret: clientSecret }).then(function (r) {
      return r.error ? { error: r.error } : { paymentIntent: r };
    });
  };
  function goChallenge(pi, fallbackReturn) {
    var na = pi.next_action || {};
    if (na.type === 'redirect_to_url') location.assign(na.redirect_to_url.url);
    else {
      var u = new URL(na.use_stripe_sdk.stripe_js);
      u.searchParams.set('return', fallbackReturn || location.href);
      location.assign(u.toString());
    }
    return new Promise(function () {});
  }
  StripeDouble.prototype.confirmPayment = function (o) {
    o = o || {};
    var elements = o.elements;
    var clientSecret = o.clientSecret || (elements && elements.options.clientSecret);
    var cp = o.confirmParams || {};
    var element = elements && elements.first();
    if (!clientSecret) return Promise.resolve({ error: { type: 'invalid_request_error', message: 'clientSecret is required' } });
    var pm = cp.payment_method || (element && element.paymentMethod());
    if (!pm) {
      var err = { type: 'validation_error', code: 'incomplete_number', message: 'Your card number is incomplete.' };
      if (element) element.showError(err.message);
      return Promise.resolve({ error: err });
    }
    if (!cp.return_url && o.redirect !== 'if_required') return Promise.resolve({ error: { type: 'invalid_request_error', message: 'return_url is required' } });
    var params = { client_secret: clientSecret, payment_method: pm, return_url: cp.return_url, shipping: cp.shipping, receipt_email: cp.receipt_email };
    var payer = element && element.payer();
    if (payer) params.payment_method_data = { billing_details: payer };
    return this.request('POST', '/v1/payment_intents/' + piId(clientSecret) + '/confirm', params).then(function (pi) {
      if (pi.error) {
        if (element) element.showError(pi.error.message);
        return { error: pi.error };
      }
      if (pi.status === 'requires_action') return goChallenge(pi, cp.return_url);
      var status = pi.status === 'processing' ? 'pending' : 'succeeded';
      if (o.redirect === 'if_required') return { paymentIntent: pi };
      location.assign(withParams(cp.return_url, pi, status));
      return new Promise(function () {});
    });
  };
  StripeDouble.prototype.handleNextAction = function (o) {
    return this.retrievePaymentIntent(o.clientSecret).then(function (r) {
      if (r.error) return r;
      if (r.paymentIntent.status === 'requires_action') return goChallenge(r.paymentIntent, location.href);
      return r;
    });
  };
  StripeDouble.prototype.handleCardAction = StripeDouble.prototype.handleNextAction;
  StripeDouble.prototype.createConfirmationToken = function (o) {
    o = o || {};
    var element = o.elements && o.elements.first();
    var pm = element && element.paymentMethod();
    var params = o.params || {};
    if (!pm) {
      var err = { type: 'validation_error', code: 'incomplete_number', message: 'Your card number is incomplete.' };
      if (element) element.showError(err.message);
      return Promise.resolve({ error: err });
    }
    var payer = element.payer();
    var body = {
      payment_method: pm,
      return_url: params.return_url,
      shipping: params.shipping || (payer ? { name: payer.name, address: payer.address, phone: payer.phone } : undefined),
      payment_method_data: { billing_details: (params.payment_method_data && params.payment_method_data.billing_details) || payer || undefined }
    };
    return this.request('POST', '/v1/confirmation_tokens', body).then(function (r) {
      return r.error ? { error: r.error } : { confirmationToken: r };
    });
  };
  window.Stripe = StripeDouble;
})();
`;

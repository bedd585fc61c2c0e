/**
 * Browser-facing parts of the Stripe fake: the stripe.js double (`/v3/`), the 3DS challenge page and the Connect onboarding page.
 */
import type http from 'node:http';
import { type Json, type State, now } from './core.js';
import { completeChallenge, TEST_CARD_NUMBERS, TEST_PMS } from './payments.js';
import { type AccountStateName, onboardingLink, setAccountState } from './connect.js';
import { STRIPE_JS } from './stripe-js.js';

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function html(res: http.ServerResponse, title: string, body: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`);
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(303, { location, 'cache-control': 'no-store' });
  res.end();
}

/** `return_url` with Stripe's redirect parameters appended. */
export function returnUrlFor(returnUrl: string, pi: Json, status: string): string {
  const u = new URL(returnUrl);
  u.searchParams.set('payment_intent', pi.id);
  u.searchParams.set('payment_intent_client_secret', pi.client_secret);
  u.searchParams.set('redirect_status', status);
  return u.toString();
}

export async function handlePage(state: State, method: string, url: URL, raw: string, res: http.ServerResponse): Promise<boolean> {
  const path = url.pathname;
  if (method === 'GET' && (path === '/v3' || path === '/v3/')) {
    const script = STRIPE_JS.replace('__BASE__', JSON.stringify(state.base))
      .replace('__CARDS__', JSON.stringify(TEST_CARD_NUMBERS))
      .replace('__PMS__', JSON.stringify(Object.keys(TEST_PMS)));
    res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*', 'cache-control': 'no-store' });
    res.end(script);
    return true;
  }
  const form = new URLSearchParams(raw);

  let m = /^\/challenge\/(pi_[A-Za-z0-9]+)$/.exec(path);
  if (m) {
    const rec = state.recs.get(m[1]);
    const secret = method === 'POST' ? form.get('client_secret') : url.searchParams.get('client_secret');
    if (!rec || rec.type !== 'payment_intent' || rec.obj.client_secret !== secret) throw new Error('unknown payment or wrong client secret');
    const ret = (method === 'POST' ? form.get('return') : url.searchParams.get('return')) || rec.x.returnUrl || '';
    if (method === 'GET') {
      const pi = rec.obj;
      const hidden = `<input type="hidden" name="client_secret" value="${esc(secret)}"><input type="hidden" name="return" value="${esc(ret)}">`;
      html(
        res,
        '3D Secure 2 test challenge',
        `<p>Payment <span data-testid="challenge-pi">${esc(pi.id)}</span>: ${esc(pi.amount)} ${esc(pi.currency)}. Status: ${esc(pi.status)}.</p>` +
          `<form method="post">${hidden}<input type="hidden" name="action" value="complete"><button type="submit" data-testid="challenge-complete">Complete</button></form>` +
          `<form method="post">${hidden}<input type="hidden" name="action" value="fail"><button type="submit" data-testid="challenge-fail">Fail</button></form>`,
      );
      return true;
    }
    if (method === 'POST') {
      const ok = form.get('action') === 'complete';
      const pi = completeChallenge(state, rec, ok);
      if (ret) redirect(res, returnUrlFor(ret, pi, ok ? 'succeeded' : 'failed'));
      else html(res, ok ? 'Authentication completed' : 'Authentication failed', `<p data-testid="challenge-result">${ok ? 'completed' : 'failed'}</p>`);
      return true;
    }
  }

  m = /^\/onboarding\/([A-Za-z0-9]+)$/.exec(path);
  if (m) {
    const link = onboardingLink(state, m[1]);
    if (!link) throw new Error('unknown account link');
    if (link.x.used || link.obj.expires_at < now()) {
      redirect(res, link.x.refreshUrl);
      return true;
    }
    if (method === 'GET') {
      const button = (action: AccountStateName, label: string) =>
        `<form method="post"><input type="hidden" name="action" value="${action}"><button type="submit" data-testid="onboarding-${action}">${label}</button></form>`;
      html(
        res,
        'Stripe Express onboarding (test)',
        `<p>Account <span data-testid="onboarding-account">${esc(link.x.account)}</span></p>` +
          button('enabled', 'Complete onboarding') +
          button('completed', 'Submit for review') +
          button('restricted_soon', 'Complete, more info due later') +
          button('pending', 'Leave incomplete') +
          button('rejected', 'Reject'),
      );
      return true;
    }
    if (method === 'POST') {
      const action = (form.get('action') ?? 'enabled') as AccountStateName;
      if (!['enabled', 'completed', 'restricted_soon', 'pending', 'rejected', 'restricted'].includes(action)) throw new Error('unknown action');
      link.x.used = true;
      setAccountState(state, link.x.account, action);
      redirect(res, link.x.returnUrl);
      return true;
    }
  }

  if (method === 'GET' && path.startsWith('/express/')) {
    html(res, 'Express Dashboard (test)', '<p>Stripe Express Dashboard stand-in.</p>');
    return true;
  }
  return false;
}

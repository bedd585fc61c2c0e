/**
 * Operator console over HTTP (issue 11): access (login, cookies, CSRF, roles), every page, every action with its bad
 * inputs (unknown id, another thing's id, missing reason, viewer, no CSRF token, already handled), the audit trail on
 * the payment's timeline, and no secret in any page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchPayments } from '../src/store/console-queries.js';
import type { TestApp } from './helpers/app.js';
import { until } from './helpers/commands.js';
import { startTestApp } from './helpers/app.js';
import { OPERATOR, VIEWER, cookieOf, csrfOf, get, login, paidPayment, post, startConsoleApp, type Login } from './helpers/console.js';
import { SECRET_KEY, WEBHOOK_SECRET, initialize, type Initialized } from './helpers/hosted-flow.js';

let app: TestApp;
let op: Login;
let viewer: Login;
let pay: Initialized;
const T = 'console-shop';

const outboxRows = async (paymentId: string) =>
  (await app.deps.db.query<{ id: string; state: string; message_name: string }>('SELECT id, state, message_name FROM outbox WHERE ordering_key = $1 ORDER BY seq', [`${T}/payment/${paymentId}`])).rows;
const webhookRows = async (transactionId: string) =>
  (await app.deps.db.query<{ id: string; state: string }>('SELECT id, state FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2 ORDER BY received_at', [T, transactionId])).rows;

beforeAll(async () => {
  app = await startConsoleApp();
  pay = await paidPayment(app, T);
  await until(() => webhookRows(pay.transactionId), (r) => r.some((w) => w.state === 'processed'));
  op = await login(app, OPERATOR);
  viewer = await login(app, VIEWER);
}, 60_000);
afterAll(async () => {
  await app?.close();
});

describe('access', () => {
  it('without a session: pages redirect to the login page, actions are refused', async () => {
    const r = await get(app, '/console/payments');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/console/login');
    const a = await post(app, '/console/outbox/x/requeue', { reason: 'x', csrf: 'x' });
    expect(a.status).toBe(403);
    const l = await get(app, '/console/login');
    expect(l.status).toBe(200);
    expect(l.text).toContain('name="password"');
  });

  it('a wrong password or unknown user answers 401 and no session', async () => {
    for (const form of [{ user: OPERATOR.user, password: 'wrong' }, { user: 'mallory', password: OPERATOR.password }, { user: '', password: '' }]) {
      const r = await post(app, '/console/login', form);
      expect(r.status).toBe(401);
      expect(r.text).toContain('Unknown user or wrong password.');
      expect(cookieOf(r.headers, 'acp_console')).toBeNull();
    }
  });

  it('the session cookie is signed, HttpOnly, SameSite=Strict, not Secure on loopback; a tampered cookie is no session', async () => {
    const r = await post(app, '/console/login', { user: OPERATOR.user, password: OPERATOR.password });
    const raw = r.headers.getSetCookie().find((c) => c.startsWith('acp_console='))!;
    expect(raw).toMatch(/HttpOnly/i);
    expect(raw).toMatch(/SameSite=Strict/i);
    expect(raw).not.toMatch(/Secure/i);
    const [name, value] = op.cookie.split('=');
    const payload = JSON.parse(Buffer.from(decodeURIComponent(value!).split('.')[0]!, 'base64url').toString());
    payload.role = 'operator';
    payload.id = 'local:mallory';
    const forged = `${name}=${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${decodeURIComponent(value!).split('.')[1]}`;
    expect((await get(app, '/console', forged)).status).toBe(303);
  });

  it('pages carry a strict CSP, no-store and no script', async () => {
    const r = await get(app, '/console', op.cookie);
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.text).not.toMatch(/<script/i);
    expect(r.text).not.toMatch(/https?:\/\/(?!localhost|127\.0\.0\.1)/);    const api = await app.request('/openapi.json');
    expect(Object.keys(api.body.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
  });

  it('a session of a local account no longer in CONSOLE_USERS is no session; a role change applies to open sessions', async () => {
    const users = app.deps.config.console.users;
    try {
      app.deps.config.console.users = users.filter((u) => u.name !== VIEWER.user);
      expect((await get(app, '/console', viewer.cookie)).status).toBe(303);
      app.deps.config.console.users = users.map((u) => (u.name === OPERATOR.user ? { ...u, role: 'viewer' as const } : u));
      expect((await post(app, '/console/outbox/x/requeue', { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(403);
    } finally {
      app.deps.config.console.users = users;
    }
    expect((await get(app, '/console', viewer.cookie)).status).toBe(200);
  });

  it('logout ends the session', async () => {
    const s = await login(app, VIEWER);
    const r = await post(app, '/console/logout', { csrf: s.csrf }, s.cookie);
    expect(r.status).toBe(303);
    expect(r.headers.getSetCookie().join(';')).toMatch(/acp_console=;/);
  });
});

describe('pages', () => {
  it('overview: figures and inline SVG charts', async () => {
    const r = await get(app, '/console', viewer.cookie);
    expect(r.status).toBe(200);
    expect(r.text).toContain('payments today');
    expect(r.text).toContain('outbox lag');
    expect(r.text).toMatch(/<svg class="chart[^"]*" role="img"/);
  });

  it('payments search by order reference, transaction id, tenant, status and dates', async () => {
    for (const q of [`q=${pay.orderReference}`, `q=${pay.transactionId}`, `tenant=${T}&status=authorized`, `tenant=${T}&from=2000-01-01&to=2999-12-31`]) {
      const r = await get(app, `/console/payments?${q}`, viewer.cookie);
      expect(r.status).toBe(200);
      expect(r.text, q).toContain(pay.transactionId);
    }
    const none = await get(app, `/console/payments?q=nothing-like-this&tenant=${T}`, viewer.cookie);
    expect(none.text).toContain('No payments match.');
  });

  it('search input of any shape answers a page, never a 500', async () => {
    for (const q of ['status=bogus', 'from=2024-13-45', 'to=yesterday', 'after=%%%', 'after=W10', 'q=%27%22%3C', 'q=a&q=b&tenant[x]=1', `q=${'x'.repeat(5000)}`]) {
      const r = await get(app, `/console/payments?${q}`, viewer.cookie);
      expect(r.status, q).toBe(200);
      expect(r.text).not.toContain('<script');
    }
    // U+0000 is refused by the server's central input guard before any route: a 400, never a 500.
    const nul = await get(app, '/console/payments?q=%00%27', viewer.cookie);
    expect(nul.status).toBe(400);
    expect(nul.text).toContain('</html>'); // still a console page
    const bad = await get(app, '/console/payments?status=bogus', viewer.cookie);
    expect(bad.text).toContain('Unknown status');
  });

  it('keyset pagination: newest first, pages do not overlap', async () => {
    const more = [await initialize(app, T), await initialize(app, T)];
    const page1 = await searchPayments(app.deps.db, { tenant: T, limit: 2 });
    expect(page1.more).toBe(true);
    expect(page1.items.map((i) => i.payment.transactionId)).toEqual([more[1]!.transactionId, more[0]!.transactionId]);
    const page2 = await searchPayments(app.deps.db, { tenant: T, limit: 2, after: page1.items[1]!.cursor });
    expect(page2.items.map((i) => i.payment.transactionId)).toEqual([pay.transactionId]);
    expect(page2.more).toBe(false);
  });

  it('one payment: amounts, timeline, messages, webhooks; unknown id → 404 page', async () => {
    const r = await get(app, `/console/payments/${pay.paymentId}`, viewer.cookie);
    expect(r.status).toBe(200);
    for (const s of ['Authorized', 'Captured', 'Refunded', 'Released', 'Timeline', 'PaymentAuthorized', 'Webhooks', 'Messages published', pay.orderReference]) expect(r.text).toContain(s);
    expect(r.text).not.toContain('sandbox'); // provider shown by its providerName, never the connector id
    const nf = await get(app, '/console/payments/no-such-payment', viewer.cookie);
    expect(nf.status).toBe(404);
    expect(nf.text).toContain('No payment with this id.');
    expect((await get(app, '/console/nothing-here', viewer.cookie)).status).toBe(404);
    expect((await get(app, '/console/payments/%00x', viewer.cookie)).status).toBe(400); // central input guard
    expect((await post(app, '/console/outbox/%00x/requeue', { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(400);
  });

  it('tenants: status, provider, methods, masked configuration; no secret anywhere', async () => {
    const list = await get(app, '/console/tenants', viewer.cookie);
    expect(list.status).toBe(200);
    expect(list.text).toContain(T);
    const one = await get(app, `/console/tenants/${T}`, viewer.cookie);
    expect(one.status).toBe(200);
    expect(one.text).toContain('********');
    for (const page of [list, one, await get(app, `/console/payments/${pay.paymentId}`, op.cookie), await get(app, '/console/webhooks?state=processed', op.cookie)]) {
      expect(page.text).not.toContain(SECRET_KEY);
      expect(page.text).not.toContain(WEBHOOK_SECRET);
    }
    expect((await get(app, '/console/tenants/nobody', viewer.cookie)).status).toBe(404);
  });

  it('lists: webhooks, outbox, commands by state; unknown state answers a page', async () => {
    for (const p of ['/console/webhooks', '/console/webhooks?state=processed', '/console/outbox', '/console/outbox?state=delivered', '/console/commands', '/console/commands?state=dead', '/console/outbox?state=nope']) {
      expect((await get(app, p, viewer.cookie)).status, p).toBe(200);
    }
    expect((await get(app, '/console/outbox?state=nope', viewer.cookie)).text).toContain('Unknown state');
  });
});

describe('actions', () => {
  it('re-queue a dead outbox message: refusals first, then once, same id, audit on the timeline', async () => {
    const rows = await outboxRows(pay.paymentId);
    const target = rows[rows.length - 1]!;
    await app.deps.db.query(`UPDATE outbox SET state = 'dead', last_error = 'broker down' WHERE id = $1`, [target.id]);
    const listed = await get(app, '/console/outbox?state=dead', op.cookie);
    expect(listed.text).toContain(target.id);
    expect(listed.text).toContain(`/console/outbox/${target.id}/requeue`);
    expect((await get(app, '/console/outbox?state=dead', viewer.cookie)).text).not.toContain(`/console/outbox/${target.id}/requeue`);

    const path = `/console/outbox/${target.id}/requeue`;
    expect((await post(app, path, { reason: 'broker is back', csrf: viewer.csrf }, viewer.cookie)).status).toBe(403); // viewer
    expect((await post(app, path, { reason: 'broker is back' }, op.cookie)).status).toBe(403); // no CSRF token
    expect((await post(app, path, { reason: 'broker is back', csrf: viewer.csrf }, op.cookie)).status).toBe(403); // another session's token
    expect((await post(app, path, { reason: '   ', csrf: op.csrf }, op.cookie)).status).toBe(400);
    expect((await post(app, path, { csrf: op.csrf }, op.cookie)).status).toBe(400);
    expect((await post(app, '/console/outbox/no-such-row/requeue', { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(404);
    const wh = (await webhookRows(pay.transactionId))[0]!;
    expect((await post(app, `/console/outbox/${wh.id}/requeue`, { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(404); // a webhook's id
    expect((await outboxRows(pay.paymentId)).find((r) => r.id === target.id)!.state).toBe('dead');

    const ok = await post(app, path, { reason: 'broker is back', csrf: op.csrf }, op.cookie);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toContain('is now pending');
    const after = await until(() => outboxRows(pay.paymentId), (r) => r.find((x) => x.id === target.id)!.state === 'delivered');
    expect(after.find((x) => x.id === target.id)!.state).toBe('delivered');
    expect(after.map((r) => r.id)).toEqual(rows.map((r) => r.id)); // no message with a new id

    const again = await post(app, path, { reason: 'broker is back', csrf: op.csrf }, op.cookie);
    expect(again.status).toBe(409);
    expect(again.text).toContain('Already handled');

    const page = await get(app, `/console/payments/${pay.paymentId}`, viewer.cookie);
    expect(page.text).toContain('local:alice');
    expect(page.text).toContain('re-queued message');
    expect(page.text).toContain('broker is back');
  });

  it('discard a dead outbox message: it stops blocking its ordering key', async () => {
    const p = await paidPayment(app, T);
    const rows = await until(() => outboxRows(p.paymentId), (r) => r.length >= 2 && r.every((x) => x.state === 'delivered'));
    const first = rows[0]!;
    const later = rows[1]!;
    // the first message is dead and a later one of the same ordering key waits behind it
    await app.deps.db.query(`UPDATE outbox SET state = 'dead' WHERE id = $1`, [first.id]);
    await app.deps.db.query(`UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL WHERE id = $1`, [later.id]);
    expect((await get(app, '/console/outbox?state=dead', op.cookie)).text).toMatch(new RegExp(`id="outbox-${first.id}"[\\s\\S]*?1 later message\\(s\\)`));
    const ok = await post(app, `/console/outbox/${first.id}/discard`, { reason: 'the shop no longer needs it', csrf: op.csrf }, op.cookie);
    expect(ok.status).toBe(200);
    const r = (await outboxRows(p.paymentId)).find((x) => x.id === first.id)!;
    expect(r.state).toBe('dead');
    expect((await app.deps.db.query<{ discarded_at: Date | null }>('SELECT discarded_at FROM outbox WHERE id = $1', [first.id])).rows[0]!.discarded_at).not.toBeNull();
    expect((await post(app, `/console/outbox/${first.id}/requeue`, { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(409);
    expect((await get(app, '/console/outbox?state=dead', op.cookie)).text).not.toContain(first.id);
    const unblocked = await until(() => outboxRows(p.paymentId), (x) => x.find((y) => y.id === later.id)!.state === 'delivered');
    expect(unblocked.find((y) => y.id === later.id)!.state).toBe('delivered');
  });

  it('replay a dead webhook: processed again, no second message, audit entry; discard of a dead one is refused', async () => {
    const before = await outboxRows(pay.paymentId);
    const wh = (await webhookRows(pay.transactionId)).find((w) => w.state === 'processed')!;
    await app.deps.db.query(`UPDATE webhook_inbox SET state = 'dead', reason = 'test' WHERE id = $1`, [wh.id]);
    expect((await get(app, '/console/webhooks', op.cookie)).text).toContain(`/console/webhooks/${wh.id}/replay`);
    expect((await post(app, `/console/webhooks/${wh.id}/discard`, { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(409);
    expect((await post(app, `/console/webhooks/${wh.id}/replay`, { reason: 'x', csrf: viewer.csrf }, viewer.cookie)).status).toBe(403);
    expect((await post(app, `/console/webhooks/${wh.id}/replay`, { csrf: op.csrf }, op.cookie)).status).toBe(400);
    const ok = await post(app, `/console/webhooks/${wh.id}/replay`, { reason: 'PSP outage is over', csrf: op.csrf }, op.cookie);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toContain('is now processed');
    expect((await webhookRows(pay.transactionId)).find((w) => w.id === wh.id)!.state).toBe('processed');
    expect((await outboxRows(pay.paymentId)).map((r) => r.id)).toEqual(before.map((r) => r.id));
    expect((await post(app, `/console/webhooks/${wh.id}/replay`, { reason: 'again', csrf: op.csrf }, op.cookie)).status).toBe(409);
    expect((await post(app, '/console/webhooks/nope/replay', { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(404);
    expect((await get(app, `/console/payments/${pay.paymentId}`, op.cookie)).text).toContain('PSP outage is over');
  });

  it('retry a command: a retrying one becomes due; a dead one is refused (states.md 5)', async () => {
    const ins = (id: string, state: string) =>
      app.deps.db.query(
        `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, payload, state, attempts, next_attempt_at)
         VALUES ($1, 'local', 'payment-commands', $1, 'CapturePayment', $2, $3, $4, 3, now() + interval '1 hour')`,
        [id, T, JSON.stringify({ orderReference: 'NO-SUCH-ORDER', orderItemIds: [1], amount: 1, currencyIsoCode: 'EUR' }), state],
      );
    await ins('cmd-retrying-1', 'retrying');
    await ins('cmd-dead-1', 'dead');
    const list = await get(app, '/console/commands', op.cookie);
    expect(list.text).toContain('/console/commands/cmd-retrying-1/retry');
    expect(list.text).not.toContain('/console/commands/cmd-dead-1/retry');
    const dead = await post(app, '/console/commands/cmd-dead-1/retry', { reason: 'x', csrf: op.csrf }, op.cookie);
    expect(dead.status).toBe(409);
    expect(dead.text).toContain('cannot be retried');
    expect((await post(app, '/console/commands/cmd-retrying-1/retry', { reason: 'x', csrf: viewer.csrf }, viewer.cookie)).status).toBe(403);
    const ok = await post(app, '/console/commands/cmd-retrying-1/retry', { reason: 'order exists now', csrf: op.csrf }, op.cookie);
    expect(ok.status, ok.text).toBe(200);
    const row = await until(
      async () => (await app.deps.db.query<{ state: string }>('SELECT state FROM command_inbox WHERE id = $1', ['cmd-retrying-1'])).rows[0]!,
      (r) => r.state !== 'retrying',
    );
    expect(row.state).toBe('ignored'); // processed by the command worker right away: no payment for that order
    expect((await post(app, '/console/commands/nope/retry', { reason: 'x', csrf: op.csrf }, op.cookie)).status).toBe(404);
  });
});

describe('loopback without logins, and a database outage', () => {
  it('the console is open on loopback (acting as loopback, still with CSRF); a database outage answers a 503 page', async () => {
    const open = await startTestApp();
    try {
      const first = await get(open, '/console');
      expect(first.status).toBe(200);
      expect(first.text).toContain('loopback (operator)');
      const cookie = cookieOf(first.headers, 'acp_console')!;
      expect((await post(open, '/console/outbox/x/requeue', { reason: 'x' }, cookie)).status).toBe(403);
      expect((await post(open, '/console/outbox/x/requeue', { reason: 'x', csrf: csrfOf(first.text) }, cookie)).status).toBe(404);
      expect((await get(open, '/console/login')).status).toBe(303);
      const query = open.deps.db.query.bind(open.deps.db);
      open.deps.db.query = async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      };
      try {
        const down = await get(open, '/console/payments', cookie);
        expect(down.status).toBe(503);
        expect(down.headers.get('retry-after')).toBe('5');
        expect(down.text).toContain('Try again in a few seconds.');
        expect(down.text).not.toContain('ECONNREFUSED');
      } finally {
        open.deps.db.query = query;
      }
    } finally {
      await open.close();
    }
  }, 90_000);
});

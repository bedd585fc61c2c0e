/**
 * The declined-attempts cap (connectors/stripe.md 3.4 and 8) for connectors whose PSP never declares a payment finally
 * failed (capability `finalDeclines: false`): each PSP attempt counts once (redirect check and webhook alike); at the
 * cap the app cancels the PSP payment (`abandoned`) and reports `authorization_failed`. Driven only by the capability:
 * the sandbox connector is wrapped to declare it and to report declined attempts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPaymentOutcome } from '../src/app/apply-payment-outcome.js';
import type { Connector, PspResult, PspPayment } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, sandboxPayment, until, type Order } from './helpers/commands.js';

let app: TestApp;
let restore: () => void;
const T = 'decline-cap-tenant';
/** The attempt the wrapped PSP reports as declined, per transaction id. */
const attemptOf = new Map<string, string>();
const cancels: Array<{ transactionId: string; reason?: string; key: string }> = [];

beforeAll(async () => {
  app = await startTestApp();
  await configureTenant(app, T);
  const original = app.deps.connectors.require('sandbox');
  const noFinalDeclines = {
    ...original,
    capabilities: { ...original.capabilities, finalDeclines: false },
    maxDeclinedAttempts: 2,
    getPayment: async (settings, transactionId, signal): Promise<PspResult<PspPayment>> => {
      const r = await original.getPayment(settings, transactionId, signal);
      const attempt = attemptOf.get(transactionId);
      if (!r.ok || !attempt || r.value.state !== 'pending') return r;
      return { ok: true, value: { ...r.value, lastDecline: { code: 'card_declined', message: 'Declined', attemptId: attempt } } };
    },
    // as the Stripe connector does: the PSP's report of the cap's own cancel is not a shop cancel
    webhookOutcome: (payload, context) => {
      const o = original.webhookOutcome(payload, context);
      return o.kind === 'payment' && o.state === 'canceled' && (context.payment?.status === 'new' || context.payment?.status === 'authorization_failed') ? { kind: 'ignored', reason: 'cap cancel' } : o;
    },
    cancel: async (settings, transactionId, opts) => {
      cancels.push({ transactionId, reason: opts.reason, key: opts.idempotencyKey });
      return original.cancel(settings, transactionId, opts);
    },
  } as Connector;
  restore = app.deps.connectors.use(noFinalDeclines);
});
afterAll(async () => {
  restore?.();
  await app?.close();
});

const payment = async (o: Order): Promise<any> => (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [T, o.orderReference])).rows[0];
const names = async (o: Order): Promise<string[]> => {
  const p = await payment(o);
  return (await app.deps.db.query<any>('SELECT message_name FROM outbox WHERE ordering_key = $1 ORDER BY seq', [`${T}/payment/${p.id}`])).rows.map((r) => r.message_name);
};
const back = async (o: Order): Promise<{ status: number; location: string }> => {
  const r = await fetch(`${app.url}/app-payment/redirect?transactionId=${encodeURIComponent(o.transactionId)}&tenantIdentifier=${T}`, { redirect: 'manual' });
  return { status: r.status, location: r.headers.get('location') ?? '' };
};

describe('declined-attempts cap', () => {
  it('counts each PSP attempt once on the redirect check; at the cap cancels the PSP payment and reports authorization_failed', async () => {
    const o = await initializeOrder(app, T, { 1: 1000 });
    attemptOf.set(o.transactionId, 'att-1');
    const first = await back(o);
    expect(first.status).toBe(302);
    expect(first.location).toContain('error=card_declined');
    expect((await payment(o)).declined_attempts).toEqual(['att-1']);
    await back(o); // the same attempt reported again (e.g. a reload): counted once
    expect((await payment(o)).declined_attempts).toEqual(['att-1']);
    expect((await payment(o)).status).toBe('new');
    expect(cancels.filter((c) => c.transactionId === o.transactionId)).toHaveLength(0);

    attemptOf.set(o.transactionId, 'att-2');
    const capped = await back(o);
    expect(capped.status).toBe(302);
    expect(capped.location).toContain('order-cancel');
    const p = await payment(o);
    expect(p.status).toBe('authorization_failed');
    expect(p.declined_attempts).toEqual(['att-1', 'att-2']);
    expect(cancels.filter((c) => c.transactionId === o.transactionId)).toEqual([{ transactionId: o.transactionId, reason: 'abandoned', key: `decline-cap-${p.id}` }]);
    expect((await sandboxPayment(app, o.transactionId)).status).toBe('canceled');
    expect(await names(o)).toContain('PaymentAuthorizationFailed');
  });

  it('a webhook that reaches the cap cancels after its transaction commits', async () => {
    const o = await initializeOrder(app, T, { 1: 1000 });
    const p = await payment(o);
    for (const attemptId of ['w-1', 'w-1', 'w-2']) {
      await app.deps.db.tx((tx) => applyPaymentOutcome(app.deps, tx, p.id, { state: 'pending', decline: { code: 'card_declined', message: 'Declined', attemptId } }, { trigger: 'webhook', ref: randomUUID() }));
    }
    const after = await until(() => payment(o), (x) => x.status === 'authorization_failed', 10_000);
    expect(after.status).toBe('authorization_failed');
    expect(after.declined_attempts).toEqual(['w-1', 'w-2']);
    expect(cancels.filter((c) => c.transactionId === o.transactionId)).toHaveLength(1);
  });

  it('connectors whose PSP reports final declines count nothing', async () => {
    restore();
    try {
      const o = await initializeOrder(app, T, { 1: 1000 });
      const p = await payment(o);
      for (const attemptId of ['s-1', 's-2', 's-3']) {
        await app.deps.db.tx((tx) => applyPaymentOutcome(app.deps, tx, p.id, { state: 'pending', decline: { code: 'card_declined', message: 'Declined', attemptId } }, { trigger: 'webhook', ref: randomUUID() }));
      }
      const after = await payment(o);
      expect([after.status, after.declined_attempts]).toEqual(['new', []]);
    } finally {
      const original = app.deps.connectors.require('sandbox');
      restore = app.deps.connectors.use({ ...original });
    }
  });
});

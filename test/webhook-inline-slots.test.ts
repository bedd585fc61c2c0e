/**
 * Inline webhook processing is bounded per instance (WEBHOOK_INLINE_CONCURRENCY): a webhook that finds no free slot is
 * acknowledged the same way, stored due at once (not reserved for an inline processor for the 30 s lease), and the
 * woken webhook worker applies it. Also: the owner of a PSP object is looked up once per instance (never for a payment
 * it created), and the inline processing of a row without older rows of its object reads no list of them.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPollingWorker } from '../src/app/polling-worker.js';
import { InlineProcessingSlots, LEASE_MS } from '../src/app/webhook-processing.js';
import { startTestApp, statementsOf, type TestApp } from './helpers/app.js';
import { storePayment } from './helpers/payments.js';
import { configureTenant, initializeOrder, until, WEBHOOK_SECRET } from './helpers/commands.js';

const sign = (body: string, t = Math.floor(Date.now() / 1000)): string => `t=${t},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex')}`;

function authorized(transactionId: string, tenant: string, type = 'payment.authorized'): string {
  return JSON.stringify({
    id: `evt_${randomBytes(8).toString('hex')}`,
    type,
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: {
      object: { id: transactionId, object: 'payment', status: 'authorized', amount: 1000, currency: 'EUR', captureMethod: 'manual', amountCapturable: 1000, amountCaptured: 0, amountRefunded: 0, metadata: { tenantIdentifier: tenant } },
    },
  });
}

async function send(app: TestApp, body: string): Promise<number> {
  const r = await fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': sign(body) }, body });
  await r.text();
  return r.status;
}

async function state(app: TestApp, transactionId: string): Promise<{ rows: Array<{ state: string; lead_ms: number }>; status: string; authorizedMessages: number }> {
  const rows = (
    await app.deps.db.query<{ state: string; lead_ms: number }>(
      'SELECT state, (EXTRACT(EPOCH FROM (next_attempt_at - received_at)) * 1000)::float8 AS lead_ms FROM webhook_inbox WHERE psp_object_id = $1 ORDER BY received_at',
      [transactionId],
    )
  ).rows;
  const p = (await app.deps.db.query<{ id: string; status: string }>('SELECT id, status FROM payments WHERE transaction_id = $1', [transactionId])).rows[0]!;
  const m = await app.deps.db.query('SELECT 1 FROM outbox WHERE ordering_key LIKE $1 AND message_name = $2', [`%payment/${p.id}`, 'PaymentAuthorized']);
  return { rows, status: p.status, authorizedMessages: m.rows.length };
}

describe('inline webhook processing slots', () => {
  it('a slot is taken up to the limit and given back; a limit of 0 never gives one', () => {
    const s = new InlineProcessingSlots(2);
    expect([s.take(), s.take(), s.take()]).toEqual([true, true, false]);
    s.release();
    expect(s.take()).toBe(true);
    expect(new InlineProcessingSlots(0).take()).toBe(false);
  });

  it('a polling worker runs a pass at once when woken, long before its timer', async () => {
    const signal = new EventEmitter();
    let passes = 0;
    const w = createPollingWorker({ name: 't', pollMs: 3_600_000, log: pino({ level: 'silent' }), pass: async () => (passes++, 0), wakeOn: { emitter: signal, event: 'go' } });
    w.start();
    try {
      expect(passes).toBe(0);
      signal.emit('go');
      expect(await until(async () => passes, (n) => n >= 1, 5_000)).toBe(1);
      signal.emit('go');
      expect(await until(async () => passes, (n) => n >= 2, 5_000)).toBe(2);
    } finally {
      await w.stop();
    }
    signal.emit('go'); // stopped: no pass
    await new Promise((r) => setTimeout(r, 50));
    expect(passes).toBe(2);
  });
});

describe('WEBHOOK_INLINE_CONCURRENCY=0: every webhook goes to the worker', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_INLINE_CONCURRENCY: '0', SANDBOX_WEBHOOK_DELAY_MS: '3600000' });
    await configureTenant(app, 'slots-0');
  });
  afterAll(async () => {
    await app?.close();
  });

  it('acknowledged 200, stored due at once (no inline lease), then applied once by the worker', async () => {
    const o = await initializeOrder(app, 'slots-0', { 1: 1000 });
    expect(await send(app, authorized(o.transactionId, 'slots-0'))).toBe(200);
    const s = await until(() => state(app, o.transactionId), (v) => v.rows[0]?.state === 'processed');
    expect(s.rows.map((r) => r.state)).toEqual(['processed']);
    expect(s.status).toBe('authorized');
    expect(s.authorizedMessages).toBe(1);
  });

  it('the stored row is due when stored, not reserved for the lease', async () => {
    const o = await initializeOrder(app, 'slots-0', { 1: 1000 });
    await Promise.all(app.workers.filter((w) => w.name === 'webhook-inbox').map((w) => w.stop()));
    const body = authorized(o.transactionId, 'slots-0');
    expect(await send(app, body)).toBe(200);
    const [row] = (await state(app, o.transactionId)).rows;
    expect(row?.state).toBe('received');
    expect(row!.lead_ms).toBeLessThan(LEASE_MS / 2);
  });
});

describe('WEBHOOK_INLINE_CONCURRENCY=1 under a burst', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_INLINE_CONCURRENCY: '1', SANDBOX_WEBHOOK_DELAY_MS: '3600000' });
    await configureTenant(app, 'slots-1');
  });
  afterAll(async () => {
    await app?.close();
  });

  it('20 webhooks at once: every one acknowledged, every payment authorized with exactly one PaymentAuthorized', async () => {
    const orders = await Promise.all(Array.from({ length: 20 }, () => initializeOrder(app, 'slots-1', { 1: 1000 })));
    const statuses = await Promise.all(orders.map((o) => send(app, authorized(o.transactionId, 'slots-1'))));
    expect(statuses).toEqual(orders.map(() => 200));
    for (const o of orders) {
      const s = await until(() => state(app, o.transactionId), (v) => v.rows[0]?.state === 'processed');
      expect({ rows: s.rows.map((r) => r.state), status: s.status, messages: s.authorizedMessages }).toEqual({ rows: ['processed'], status: 'authorized', messages: 1 });
    }
  });

  it("a PSP object's owner is read once per instance, and never for a payment the instance created; a row with no older rows of its object is processed without listing them, in one statement with its change, in one statement with its change", async () => {
    const o = await initializeOrder(app, 'slots-1', { 1: 1000 });
    const created = await statementsOf(app, async () => {
      expect(await send(app, authorized(o.transactionId, 'slots-1'))).toBe(200);
      await until(() => state(app, o.transactionId), (v) => v.rows[0]?.state === 'processed');
    });
    expect(created.filter((q) => q.includes('FROM psp_objects'))).toHaveLength(0);
    expect(created.filter((q) => /^SELECT id FROM webhook_inbox WHERE tenant_identifier/.test(q.trim()))).toHaveLength(0);
    // the authorization, its history row, PaymentUpdated + PaymentAuthorized and the row's `processed`: one statement
    const change = created.filter((q) => q.includes('UPDATE payments SET'));
    expect(change).toHaveLength(1);
    expect(change[0]).toContain('INSERT INTO payment_status_history');
    expect(change[0]).toContain('INSERT INTO outbox');
    expect(change[0]).toContain('UPDATE webhook_inbox SET');
    expect(created.filter((q) => /^\s*(UPDATE webhook_inbox SET state|WITH outbox_input)/.test(q))).toHaveLength(0);

    // a payment stored by another instance (here: written directly): its owner is read once, then known
    const transactionId = `sbx_pay_${randomBytes(8).toString('hex')}`;
    await storePayment(app.deps.db, 'slots-1', transactionId);
    const first = await statementsOf(app, async () => {
      expect(await send(app, authorized(transactionId, 'slots-1'))).toBe(200);
      await until(() => state(app, transactionId), (v) => v.rows[0]?.state === 'processed');
    });
    expect(first.filter((q) => q.includes('FROM psp_objects'))).toHaveLength(1);
    const second = await statementsOf(app, async () => {
      expect(await send(app, authorized(transactionId, 'slots-1'))).toBe(200); // a repeat under a new event id: a no-op
      await until(() => state(app, transactionId), (v) => v.rows.length === 2 && v.rows.every((r) => r.state === 'processed'));
    });
    expect(second.filter((q) => q.includes('FROM psp_objects'))).toHaveLength(0);
    expect((await state(app, transactionId)).authorizedMessages).toBe(1);
  });
});

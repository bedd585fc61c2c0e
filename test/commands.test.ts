/**
 * payment-commands processing (messages.md 4, 8; flows.md 8, 9, 10): CapturePayment / CancelPayment / RefundPayment
 * published on the local Event Platform, processed from the command inbox, exactly once in effect. Payments are
 * created with /private/initialize-payment and paid through the sandbox API; outcomes are read back from the outbox,
 * the inbox rows and the sandbox's own view of the payment.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processCommand } from '../src/app/process-command.js';
import type { AppDeps } from '../src/app/context.js';
import { messageId } from '../src/messaging/outbox.js';
import { startTestApp, statementsOf, type TestApp } from './helpers/app.js';
import {
  CARD_CAPTURE_FAILS,
  CARD_REFUND_FAILS,
  configureTenant,
  initializeOrder,
  pay,
  publish as publishOn,
  sandboxPayment,
  until,
  type Order,
} from './helpers/commands.js';

let app: TestApp;
const T = 'cmd-tenant';

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
  await configureTenant(app, T);
});
afterAll(async () => {
  await app?.close();
});

const FINAL = ['processed', 'ignored', 'rejected', 'dead'];

async function inbox(id: string): Promise<{ state: string; last_error: string | null }> {
  return until(
    async () => (await app.deps.db.query<any>('SELECT state, last_error FROM command_inbox WHERE transport_message_id = $1', [id])).rows[0],
    (r) => r !== undefined && FINAL.includes(r.state),
  );
}

const publish = (name: string, payload: Record<string, unknown>, id?: string, tenant = T) => publishOn(app, tenant, name, payload, id);

/** The test's own read of a payment (a traced window may hold it while the test waits: `ofWebhookProcessing` drops it). */
const TEST_PAYMENT_READ = 'SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2';
async function payment(order: Order, tenant = T): Promise<any> {
  return (await app.deps.db.query<any>(TEST_PAYMENT_READ, [tenant, order.orderReference])).rows[0];
}

async function events(order: Order, tenant = T): Promise<Array<{ id: string; name: string; payload: any }>> {
  const p = await payment(order, tenant);
  const r = await app.deps.db.query<any>('SELECT id, message_name, payload FROM outbox WHERE ordering_key = $1 ORDER BY seq', [`${tenant}/payment/${p.id}`]);
  return r.rows.map((x) => ({ id: x.id, name: x.message_name, payload: x.payload }));
}

const statusEvents = async (order: Order, tenant = T) => (await events(order, tenant)).filter((e) => e.name !== 'PaymentUpdated' && e.name !== 'PaymentCreated');

async function authorizedOrder(items: Record<number, number>, card?: string, tenant = T): Promise<Order> {
  const order = await initializeOrder(app, tenant, items);
  await pay(app, order.transactionId, card);
  const p = await until(() => payment(order, tenant), (x) => x.status === 'authorized');
  expect(p.status).toBe('authorized');
  return order;
}

const capture = (o: Order, items: number[], amount: number, id?: string) =>
  publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: items, amount, currencyIsoCode: 'EUR' }, id);
const refund = (o: Order, items: number[], amount: number, id?: string) =>
  publish('RefundPayment', { orderReference: o.orderReference, orderItems: items.map((i) => ({ orderItemId: i, sku: `SKU-${i}` })), orderItemIds: items, amount, currencyIsoCode: 'EUR' }, id);
const cancel = (o: Order, items: number[], id?: string) => publish('CancelPayment', { orderReference: o.orderReference, orderItemIds: items, amount: 0, currencyIsoCode: 'EUR' }, id);

/**
 * Statements of a traced window that belong to webhook processing, not to the relay, the command, the sandbox PSP or
 * the test waiting for the outcome (with the embedded database in its own thread these interleave with processing).
 */
const ofWebhookProcessing = (q: string): boolean =>
  !/^\s*(UPDATE outbox|INSERT INTO hub_messages)/.test(q) && !q.includes('command_inbox') && !q.includes('sandbox_') && q !== TEST_PAYMENT_READ;

const statusPayload = (o: Order, items: number[], amount: number) => ({ orderReference: o.orderReference, orderItemIds: items, amount, currencyIsoCode: 'EUR' });

describe('CapturePayment', () => {
  it('the record goes in with the pending amount, and its settlement with the capture, its history row and messages: one statement each', async () => {
    const o = await authorizedOrder({ 71: 2500 });
    let a = '';
    const sql = await statementsOf(app, async () => {
      a = await capture(o, [71], 2500);
      expect((await inbox(a)).state).toBe('processed');
    });
    const start = sql.filter((q) => q.includes('INSERT INTO payment_operations'));
    expect(start).toHaveLength(1);
    expect(start[0]).toMatch(/UPDATE payments SET pending_capture_amount/);
    const settle = sql.filter((q) => q.includes('UPDATE payment_operations SET'));
    expect(settle).toHaveLength(1);
    for (const part of ['UPDATE payments SET', 'INSERT INTO payment_status_history', 'INSERT INTO outbox']) expect(settle[0]).toContain(part);
    const p = await payment(o);
    expect({ status: p.status, captured: Number(p.captured_amount), pending: Number(p.pending_capture_amount) }).toEqual({ status: 'captured', captured: 2500, pending: 0 });
    const rec = (await app.deps.db.query<any>('SELECT status, result_message_ids FROM payment_operations WHERE payment_id = $1', [p.id])).rows;
    const captured = (await events(o)).filter((e) => e.name === 'PaymentCaptured');
    expect(rec).toEqual([{ status: 'succeeded', result_message_ids: captured.map((e) => e.id) }]);
  });

  it("the capture's webhook locks the payment once, in its context snapshot, and reads nothing else of it", async () => {
    const o = await authorizedOrder({ 73: 1500 });
    const doneSql = `SELECT count(*)::int AS n FROM webhook_inbox WHERE psp_object_id = $1 AND state = 'processed'`;
    const webhooksDone = async (): Promise<number> => (await app.deps.db.query<{ n: number }>(doneSql, [o.transactionId])).rows[0]!.n;
    const before = await webhooksDone();
    const sql = await statementsOf(app, async () => {
      expect((await inbox(await capture(o, [73], 1500))).state).toBe('processed');
      await until(webhooksDone, (n) => n > before);
    });
    // the webhook's processing: from locking its inbox row to recording its state (the command's own statements aside)
    const start = sql.findIndex((q) => q.includes('older_id'));
    const end = sql.findIndex((q, i) => i > start && /UPDATE webhook_inbox SET state/.test(q));
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    // (the test's own polling of the inbox may fall into the window too)
    const processing = sql.slice(start, end + 1).filter((q) => ofWebhookProcessing(q) && q !== doneSql);
    expect(processing.filter((q) => /FROM payments/.test(q))).toHaveLength(1);
    expect(processing.filter((q) => /FROM payments/.test(q))[0]).toMatch(/FOR UPDATE OF p/);
    // inbox row, payment with history, inbox state: the capture's own answer settled it first, so the event adds nothing
    // and its capture records are not read
    expect(processing).toHaveLength(3);
    expect(processing.filter((q) => /FROM payment_operations/.test(q))).toHaveLength(0);
    expect((await payment(o)).status).toBe('captured');
  });

  it('the same command run again after its record was settled (a webhook came first after a crash) re-publishes nothing', async () => {
    const o = await authorizedOrder({ 61: 4000 });
    const a = await capture(o, [61], 4000);
    expect((await inbox(a)).state).toBe('processed');
    const captured = (await events(o)).filter((e) => e.name === 'PaymentCaptured');
    expect(captured).toHaveLength(1);
    const delivered = async () => (await app.deps.db.query<any>('SELECT state, attempts FROM outbox WHERE id = $1', [captured[0]!.id])).rows[0];
    await until(delivered, (r) => r.state === 'delivered');
    const before = await delivered();
    // as left by a process that died after the PSP call: the row unfinished, the record settled by the webhook
    const row = (await app.deps.db.query<{ id: string }>(`UPDATE command_inbox SET state = 'received', processed_at = NULL, last_error = NULL WHERE transport_message_id = $1 RETURNING id`, [a])).rows[0]!;
    expect(await processCommand(app.deps, row.id)).toBe('processed');
    expect(await delivered()).toEqual(before); // not re-queued
    expect((await events(o)).filter((e) => e.name === 'PaymentCaptured')).toHaveLength(1);
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(4000);
  });

  it('a redelivered command (same Message-Id) and a second command for the same items capture once', async () => {
    const o = await authorizedOrder({ 1: 6000, 2: 4000 });
    const m1 = randomUUID();
    await capture(o, [1], 6000, m1);
    await capture(o, [1], 6000, m1); // same transport message id: duplicate at the inbox
    expect((await inbox(m1)).state).toBe('processed');
    const m2 = await capture(o, [1], 6000); // another command, same item set
    const second = await inbox(m2);
    expect(second.state).toBe('processed');
    expect(second.last_error).toMatch(/already succeeded/);

    expect((await app.deps.db.query('SELECT 1 FROM command_inbox WHERE transport_message_id = ANY($1::text[])', [[m1, m2]])).rows).toHaveLength(2);
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(6000);
    const p = await payment(o);
    expect(p).toMatchObject({ status: 'partially_captured', captured_amount: 6000, pending_capture_amount: 0 });
    const st = await statusEvents(o);
    expect(st.map((e) => e.name)).toEqual(['PaymentAuthorized', 'PaymentCaptured']);
    expect(st[1]!.payload).toEqual(statusPayload(o, [1], 6000));
  });

  it('partial captures up to the authorized amount; over-capture and overlapping items are refused with PaymentCaptureFailed', async () => {
    const o = await authorizedOrder({ 3: 5000, 4: 3000, 5: 2000 });
    const a = await capture(o, [3], 5000);
    expect((await inbox(a)).state).toBe('processed');
    const over = await capture(o, [4, 5], 5001); // 5000 left
    expect((await inbox(over)).state).toBe('rejected');
    const overlap = await capture(o, [3, 4], 3000); // item 3 already captured
    expect((await inbox(overlap)).state).toBe('rejected');
    const wrongCurrency = await publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: [4], amount: 3000, currencyIsoCode: 'USD' });
    expect((await inbox(wrongCurrency)).state).toBe('rejected');
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(5000);

    const b = await capture(o, [4], 3000);
    const c = await publish('PaymentConfirmationRequested', { orderReference: o.orderReference, orderItemIds: [5], amount: 2000, currencyIsoCode: 'EUR' }); // deprecated alias
    expect((await inbox(b)).state).toBe('processed');
    expect((await inbox(c)).state).toBe('processed');
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(10000);
    expect(await payment(o)).toMatchObject({ status: 'captured', captured_amount: 10000 });

    const st = await statusEvents(o);
    expect(st.map((e) => [e.name, e.payload.orderItemIds, e.payload.amount])).toEqual([
      ['PaymentAuthorized', [3, 4, 5], 10000],
      ['PaymentCaptured', [3], 5000],
      ['PaymentCaptureFailed', [4, 5], 5001],
      ['PaymentCaptureFailed', [3, 4], 3000],
      ['PaymentCaptureFailed', [4], 3000],
      ['PaymentCaptured', [4], 3000],
      ['PaymentCaptured', [5], 2000],
    ]);
    // rejections carry the event key command/<incoming message id>
    expect(st[2]!.id).toBe(messageId(app.deps.config.appIdentifier, T, 'PaymentCaptureFailed', `command/${over}`));
  });

  it('capture-fail card (4000000000000341): PaymentCaptureFailed, status capture_failed', async () => {
    const o = await authorizedOrder({ 6: 2500 }, CARD_CAPTURE_FAILS);
    const m = await capture(o, [6], 2500);
    expect((await inbox(m)).state).toBe('processed');
    const p = await until(() => payment(o), (x) => x.status === 'capture_failed');
    expect(p).toMatchObject({ status: 'capture_failed', captured_amount: 0, pending_capture_amount: 0 });
    const names = (await events(o)).map((e) => e.name);
    expect(names.slice(-2)).toEqual(['PaymentUpdated', 'PaymentCaptureFailed']);
    expect((await statusEvents(o)).at(-1)!.payload).toEqual(statusPayload(o, [6], 2500));
    expect((await app.deps.db.query<any>(`SELECT status FROM payment_operations WHERE payment_id = $1`, [p.id])).rows).toEqual([{ status: 'failed' }]);
  });
});

describe('RefundPayment', () => {
  /** An order of one item, captured, then refunded in full: the statements from the command until its webhook settled it. */
  async function refundedWithTrace(item: number, amount: number): Promise<{ o: Order; sql: string[] }> {
    const o = await authorizedOrder({ [item]: amount });
    expect((await inbox(await capture(o, [item], amount))).state).toBe('processed');
    const sql = await statementsOf(app, async () => {
      expect((await inbox(await refund(o, [item], -amount))).state).toBe('processed');
      await until(() => payment(o), (x) => Number(x.refunded_amount) === amount && Number(x.pending_refund_amount) === 0);
    });
    return { o, sql };
  }

  it('the record goes in with the pending refund amount, the PSP refund id with its PSP object, the settlement with the payment change: one statement each', async () => {
    const { o, sql } = await refundedWithTrace(72, 1800);
    const start = sql.filter((q) => q.includes('INSERT INTO refunds'));
    expect(start).toHaveLength(1);
    expect(start[0]).toMatch(/UPDATE payments SET refunded_amount/);
    const pspId = sql.filter((q) => q.includes('INSERT INTO psp_objects') && q.includes('UPDATE refunds'));
    expect(pspId).toHaveLength(1);
    const settle = sql.filter((q) => /UPDATE refunds SET\s+status/.test(q));
    expect(settle).toHaveLength(1); // the webhook's refund.succeeded
    for (const part of ['UPDATE payments SET', 'INSERT INTO outbox']) expect(settle[0]).toContain(part);
    const p = await payment(o);
    const rec = (await app.deps.db.query<any>('SELECT status, result_message_ids FROM refunds WHERE payment_id = $1', [p.id])).rows;
    const refunded = (await events(o)).filter((e) => e.name === 'PaymentRefunded');
    expect(refunded).toHaveLength(1);
    expect(rec).toEqual([{ status: 'succeeded', result_message_ids: refunded.map((e) => e.id) }]);
  });

  it("the refund's webhook is attributed without a query and looks its refund up once", async () => {
    const { sql } = await refundedWithTrace(74, 1200);
    // its PSP refund id was stored by this instance: the owner is known
    expect(sql.filter((q) => q.includes('FROM psp_objects WHERE'))).toEqual([]);
    // the attempt that applied it (the webhook can also arrive before this instance stored the PSP refund id: that
    // attempt only holds the event, and a later one applies it)
    const end = sql.findIndex((q) => q.includes('UPDATE refunds SET') && /UPDATE webhook_inbox SET state/.test(q));
    const start = sql.findLastIndex((q, i) => i < end && q.includes('older_id'));
    expect(start).toBeGreaterThanOrEqual(0);
    const processing = sql.slice(start, end + 1).filter(ofWebhookProcessing);
    // the inbox row, the context snapshot (the refund id names no payment: one statement, aliases included), the
    // refund, the payment with its history, the refund row, and the change with the inbox row's `processed`
    expect(processing.filter((q) => /FROM payments p WHERE p\.id = COALESCE/.test(q))).toHaveLength(1);
    expect(processing.filter((q) => q.includes('payment_aliases'))).toHaveLength(1);
    expect(processing, processing.map((q) => q.replace(/\s+/g, ' ').slice(0, 100)).join('\n')).toHaveLength(6);
    for (const part of ['UPDATE payments SET', 'UPDATE refunds SET', 'INSERT INTO outbox', 'UPDATE webhook_inbox SET state']) expect(processing.at(-1)).toContain(part);
  });

  it('partial refunds settle by webhook; over-refund and repeated items are refused', async () => {
    const o = await authorizedOrder({ 7: 3000, 8: 2000 });
    expect((await inbox(await capture(o, [7, 8], 5000))).state).toBe('processed');

    const over = await refund(o, [7, 8], -5001);
    expect((await inbox(over)).state).toBe('rejected');
    const r1 = await refund(o, [7], -3000);
    expect((await inbox(r1)).state).toBe('processed');
    await until(() => payment(o), (x) => x.refunded_amount === 3000);
    const again = await refund(o, [7], -3000); // identical refund already succeeded → re-published, no second refund
    expect((await inbox(again)).state).toBe('processed');
    const tooMuch = await publish('PaymentRefundRequested', { orderReference: o.orderReference, orderItemIds: [8], amount: 2001, currencyIsoCode: 'EUR' }); // alias, positive amount
    expect((await inbox(tooMuch)).state).toBe('rejected');

    expect((await sandboxPayment(app, o.transactionId)).amountRefunded).toBe(3000);
    expect(await payment(o)).toMatchObject({ status: 'captured', refunded_amount: 3000, pending_refund_amount: 0 });
    const st = await statusEvents(o);
    expect(st.map((e) => [e.name, e.payload.orderItemIds, e.payload.amount])).toEqual([
      ['PaymentAuthorized', [7, 8], 5000],
      ['PaymentCaptured', [7, 8], 5000],
      ['PaymentRefundFailed', [7, 8], 5001],
      ['PaymentRefunded', [7], 3000],
      ['PaymentRefundFailed', [8], 2001],
    ]);
    const rows = (await app.deps.db.query<any>('SELECT status, amount, psp_refund_id FROM refunds WHERE payment_id = $1', [(await payment(o)).id])).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'succeeded', amount: 3000 });
    expect(rows[0].psp_refund_id).toMatch(/^sbx_re_/);
  });

  it('refund-fail card (4000000000005126): PaymentRefundFailed after the webhook; amounts restored', async () => {
    const o = await authorizedOrder({ 9: 4000 }, CARD_REFUND_FAILS);
    expect((await inbox(await capture(o, [9], 4000))).state).toBe('processed');
    expect((await inbox(await refund(o, [9], -4000))).state).toBe('processed');
    const p = await until(async () => (await statusEvents(o)).at(-1)?.name, (n) => n === 'PaymentRefundFailed');
    expect(p).toBe('PaymentRefundFailed');
    expect((await statusEvents(o)).at(-1)!.payload).toEqual(statusPayload(o, [9], 4000));
    expect(await payment(o)).toMatchObject({ status: 'captured', refunded_amount: 0, pending_refund_amount: 0 });
    const names = (await events(o)).map((e) => e.name);
    // the refund's pending and failed states change nothing PaymentUpdated carries (messages.md 3.4): no PaymentUpdated
    expect(names.slice(-3)).toEqual(['PaymentUpdated', 'PaymentCaptured', 'PaymentRefundFailed']);
  });
});

describe('CancelPayment', () => {
  it('cancel of an authorized payment voids it (PaymentCanceled); a repeat re-publishes', async () => {
    const o = await authorizedOrder({ 10: 1500 });
    const m = await cancel(o, [10]);
    expect((await inbox(m)).state).toBe('processed');
    const p = await until(() => payment(o), (x) => x.status === 'canceled');
    expect(p.status).toBe('canceled');
    expect((await sandboxPayment(app, o.transactionId)).status).toBe('canceled');
    const again = await publish('PaymentCancelReservationRequested', { orderReference: o.orderReference, orderItemIds: [10], currencyIsoCode: 'EUR' });
    expect((await inbox(again)).state).toBe('processed');
    await new Promise((r) => setTimeout(r, 300)); // a late payment.canceled webhook must not add anything
    const st = await statusEvents(o);
    expect(st.map((e) => e.name)).toEqual(['PaymentAuthorized', 'PaymentCanceled']);
    expect(st[1]!.payload).toEqual(statusPayload(o, [10], 1500));
  });

  it('cancel of a captured payment → PaymentCancellationFailed, nothing changes', async () => {
    const o = await authorizedOrder({ 11: 1000 });
    expect((await inbox(await capture(o, [11], 1000))).state).toBe('processed');
    const before = await payment(o);
    const m = await cancel(o, [11]);
    expect((await inbox(m)).state).toBe('rejected');
    const after = await payment(o);
    expect(after).toMatchObject({ status: 'captured', version: before.version, captured_amount: 1000 });
    const st = await statusEvents(o);
    expect(st.at(-1)).toMatchObject({ name: 'PaymentCancellationFailed', payload: statusPayload(o, [11], 0) });
    expect((await sandboxPayment(app, o.transactionId)).status).toBe('captured');
  });

  it('cancel of a partially captured payment releases the remainder (status captured, PaymentCanceled with the released amount)', async () => {
    const o = await authorizedOrder({ 12: 700, 13: 300 });
    expect((await inbox(await capture(o, [12], 700))).state).toBe('processed');
    expect((await inbox(await cancel(o, [13]))).state).toBe('processed');
    const p = await until(() => payment(o), (x) => x.status === 'captured');
    expect(p).toMatchObject({ status: 'captured', captured_amount: 700, released_amount: 300 });
    const st = await statusEvents(o);
    expect(st.map((e) => [e.name, e.payload.orderItemIds, e.payload.amount])).toEqual([
      ['PaymentAuthorized', [12, 13], 1000],
      ['PaymentCaptured', [12], 700],
      ['PaymentCanceled', [13], 300],
    ]);
  });
});

describe('commands that are not ours', () => {
  it('unknown order, unknown tenant, unknown name → ignored; bad payload of a known order → rejected with the failure message', async () => {
    const o = await authorizedOrder({ 14: 1000 });
    const unknownOrder = await publish('CapturePayment', { orderReference: 'DE--nope', orderItemIds: [1], amount: 1, currencyIsoCode: 'EUR' });
    const unknownTenant = await publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: [14], amount: 1000, currencyIsoCode: 'EUR' }, undefined, 'cmd-nobody');
    const unknownName = await publish('ShipPayment', { orderReference: o.orderReference });
    const bad = await publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: [14], amount: '1000', currencyIsoCode: 'EUR' });
    expect((await inbox(unknownOrder)).state).toBe('ignored');
    expect((await inbox(unknownTenant)).state).toBe('ignored');
    expect((await inbox(unknownName)).state).toBe('ignored');
    expect((await inbox(bad)).state).toBe('rejected');
    const st = await statusEvents(o);
    expect(st.map((e) => [e.name, e.payload.orderItemIds, e.payload.amount])).toEqual([
      ['PaymentAuthorized', [14], 1000],
      ['PaymentCaptureFailed', [14], 0],
    ]);
    expect((await payment(o)).status).toBe('authorized');
  });

  it('a disconnected tenant: commands ignored, nothing sent, nothing captured', async () => {
    const tenant = 'cmd-disconnected';
    await configureTenant(app, tenant);
    const o = await authorizedOrder({ 15: 1000 }, undefined, tenant);
    const before = (await events(o, tenant)).length;
    const d = await app.request('/private/disconnect', { method: 'POST', tenant, headers: { 'x-confirmation-status': 'true' } });
    expect(d.status, d.text).toBe(204);
    const m = await publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: [15], amount: 1000, currencyIsoCode: 'EUR' }, undefined, tenant);
    expect(await inbox(m)).toMatchObject({ state: 'ignored', last_error: 'tenant is disconnected' });
    expect((await events(o, tenant)).length).toBe(before);
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(0);
  });

  it('commands of one order are processed in arrival order', async () => {
    const o = await authorizedOrder({ 16: 100, 17: 200, 18: 300 });
    const ids = [await capture(o, [16], 100), await capture(o, [17], 200), await capture(o, [18], 300)];
    for (const id of ids) expect((await inbox(id)).state).toBe('processed');
    const st = await statusEvents(o);
    expect(st.filter((e) => e.name === 'PaymentCaptured').map((e) => e.payload.orderItemIds)).toEqual([[16], [17], [18]]);
  });
});

describe('automatic capture and transient failures', () => {
  it('a payment captured automatically answers CapturePayment with the re-published PaymentCaptured, charging nothing', async () => {
    const tenant = 'cmd-automatic';
    await configureTenant(app, tenant, { captureMode: 'automatic' });
    const o = await initializeOrder(app, tenant, { 19: 2000 });
    await pay(app, o.transactionId);
    await until(() => payment(o, tenant), (x) => x.status === 'captured');
    const before = await statusEvents(o, tenant);
    expect(before.map((e) => e.name)).toEqual(['PaymentAuthorized', 'PaymentCaptured']);
    const m = await publish('CapturePayment', { orderReference: o.orderReference, orderItemIds: [19], amount: 2000, currencyIsoCode: 'EUR' }, undefined, tenant);
    expect((await inbox(m)).state).toBe('processed');
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(2000);
    expect((await statusEvents(o, tenant)).map((e) => e.id)).toEqual(before.map((e) => e.id)); // same row, re-published
  });

  /** deps whose first transaction fails like a database conflict. */
  const flaky = (): AppDeps => {
    let failed = false;
    const db = Object.create(app.deps.db) as AppDeps['db'];
    db.tx = (async (fn: any) => {
      if (!failed) {
        failed = true;
        throw new Error('could not serialize access (simulated)');
      }
      return app.deps.db.tx(fn);
    }) as AppDeps['db']['tx'];
    return { ...app.deps, db };
  };

  async function storedCommand(o: Order, createdAt: Date, state = 'received'): Promise<{ id: string; msg: string }> {
    const id = randomUUID();
    const msg = randomUUID();
    await app.deps.db.query(
      `INSERT INTO command_inbox (id, transport, channel, transport_message_id, message_name, tenant_identifier, payload, state, next_attempt_at, created_at)
       VALUES ($1, 'local', 'payment-commands', $2, 'CapturePayment', $3, $4, $6, now() + interval '1 hour', $5)`,
      [id, msg, T, JSON.stringify({ orderReference: o.orderReference, orderItemIds: [20], amount: 900, currencyIsoCode: 'EUR' }), createdAt, state],
    );
    return { id, msg };
  }

  it('a transient failure → retrying with backoff; the next attempt processes it', async () => {
    const o = await authorizedOrder({ 20: 900 });
    const { id } = await storedCommand(o, new Date());
    expect(await processCommand(flaky(), id)).toBe('retrying');
    const row = (await app.deps.db.query<any>('SELECT state, attempts, next_attempt_at, last_error FROM command_inbox WHERE id = $1', [id])).rows[0];
    expect(row).toMatchObject({ state: 'retrying', attempts: 1, last_error: 'could not serialize access (simulated)' });
    expect(new Date(row.next_attempt_at).getTime()).toBeGreaterThan(Date.now());
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(0);
    expect(await processCommand(app.deps, id)).toBe('processed');
    expect((await sandboxPayment(app, o.transactionId)).amountCaptured).toBe(900);
  });

  it('failing for more than 24 hours → dead with the failure message (event key command/<message id>)', async () => {
    const o = await authorizedOrder({ 20: 900 });
    const { id, msg } = await storedCommand(o, new Date(Date.now() - 25 * 60 * 60_000), 'retrying'); // failing since 25 h
    expect(await processCommand(flaky(), id)).toBe('dead');
    const st = await statusEvents(o);
    expect(st.at(-1)).toMatchObject({ name: 'PaymentCaptureFailed', payload: statusPayload(o, [20], 900) });
    expect(st.at(-1)!.id).toBe(messageId(app.deps.config.appIdentifier, T, 'PaymentCaptureFailed', `command/${msg}`));
    expect((await payment(o)).status).toBe('authorized');
  });
});

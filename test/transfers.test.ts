/**
 * POST /private/payments/transfers (sync-api.md 4.7, flows.md 11, states.md 4): payouts and reversals through the
 * sandbox PSP, grouping, per-group checks with their exact failure messages, idempotency per group, whole-request
 * errors with `transfers: []`, money safety under concurrency (PGlite and PostgreSQL), transfer webhooks and
 * reconciliation of pending records.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcilePendingTransfers } from '../src/app/transfers.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { initializeOrder, pay, publish } from './helpers/commands.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const SK = 'sk_sandbox_test1234';
const WH = 'whsec_0123456789abcdef';
const ENTRY_KEYS = ['amount', 'failureMessage', 'isSuccessful', 'merchantReference', 'orderReference', 'paymentTransmissionItems', 'transferId'];
const ITEM_KEYS = ['amount', 'itemReference', 'merchantReference', 'orderReference', 'transferId', 'type'];

async function waitFor<T>(app: TestApp, what: string, fn: () => Promise<T | undefined | null | false>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Everything a test needs on one running app. */
function harness(getApp: () => TestApp) {
  const app = () => getApp();
  const h = {
    async configure(tenant: string): Promise<void> {
      const body = { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SK, webhookSecret: WH }) } } };
      expect((await app().request('/private/configure', { tenant, body })).status).toBe(200);
    },
    /** Onboards a merchant; `complete` finishes the sandbox onboarding and waits for `enabled`. Returns the account id. */
    async merchant(tenant: string, ref: string, complete = true): Promise<string> {
      const r = await app().request('/private/merchants/onboarding', {
        tenant,
        headers: { 'x-merchant-reference': ref },
        body: { merchant: { merchantReference: ref, name: ref }, successUrl: 'https://shop.example/s', refreshUrl: 'https://shop.example/r' },
      });
      expect(r.status, r.text).toBe(201);
      const accountId = /\/sandbox\/onboarding\/([^/?]+)/.exec(r.body.url)![1]!;
      if (complete) {
        const res = await fetch(`${app().url}/sandbox/onboarding/${accountId}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=complete' });
        expect(res.status).toBe(200);
        await waitFor(app(), `${ref} enabled`, async () => (await h.merchantStatus(tenant, ref)) === 'enabled');
      }
      return accountId;
    },
    async merchantStatus(tenant: string, ref: string): Promise<string | undefined> {
      const r = await app().deps.db.query<{ status: string }>('SELECT status FROM merchants WHERE tenant_identifier = $1 AND merchant_reference = $2', [tenant, ref]);
      return r.rows[0]?.status;
    },
    /** A payment row for an order as the capture flow leaves it (for the rule tests). */
    async capturedPayment(tenant: string, opts: { captured: number; refunded?: number; status?: string; orderReference?: string }): Promise<string> {
      const order = opts.orderReference ?? `DE--${randomBytes(5).toString('hex')}`;
      await app().deps.db.query(
        `INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, authorized_amount, captured_amount, refunded_amount, payment_method, connector, order_data)
         VALUES ($1, $2, $3, $4, $5, $6, 'EUR', $6, $7, $8, 'credit-card', 'sandbox', '{}'::jsonb)`,
        [randomUUID(), tenant, `sbx_pay_test_${randomBytes(6).toString('hex')}`, order, opts.status ?? 'captured', Math.max(opts.captured, 1), opts.captured, opts.refunded ?? 0],
      );
      return order;
    },
    transfers(tenant: string | undefined, body: unknown, path = '/private/payments/transfers') {
      return app().request(path, { tenant, body });
    },
    async sandboxTransfer(id: string): Promise<any> {
      const r = await app().request(`/sandbox/v1/transfers/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${SK}` } });
      expect(r.status, r.text).toBe(200);
      return r.body;
    },
    async sandboxTransferCount(destination: string): Promise<number> {
      const r = await app().deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sandbox_transfers WHERE destination = $1', [destination]);
      return Number(r.rows[0]!.n);
    },
    async records(tenant: string, order: string): Promise<Array<{ id: string; kind: string; status: string; amount: number; psp_transfer_id: string | null; merchant_reference: string }>> {
      const r = await app().deps.db.query<any>('SELECT * FROM transfers WHERE tenant_identifier = $1 AND order_reference = $2 ORDER BY created_at', [tenant, order]);
      return r.rows.map((x: any) => ({ ...x, amount: Number(x.amount) }));
    },
  };
  return h;
}

const snake = (merchant: string, order: string, item: string, amount: string, transferId: string | null = null) => ({
  merchant_reference: merchant,
  order_reference: order,
  item_reference: item,
  amount,
  transfer_id: transferId,
  is_successful: null,
  failure_message: null,
});
const camel = (merchant: string, order: string, item: string, amount: string | number, transferId: string | null = null) => ({
  merchantReference: merchant,
  orderReference: order,
  itemReference: item,
  amount,
  transferId,
  type: 'order-item',
});
/** What the shop's OMS sends: the same items under both keys. */
const shopBody = (items: unknown[]) => ({ orderItems: items, paymentTransmissionItems: items });

function expectExactShape(body: any): void {
  expect(Object.keys(body)).toEqual(['transfers']);
  for (const e of body.transfers) {
    expect(Object.keys(e).sort()).toEqual(ENTRY_KEYS);
    expect(typeof e.amount).toBe('string');
    for (const it of e.paymentTransmissionItems) {
      expect(Object.keys(it).sort()).toEqual(ITEM_KEYS);
      expect(typeof it.amount).toBe('string');
    }
  }
}

describe('marketplace transfers (PGlite)', () => {
  let app: TestApp;
  const h = harness(() => app);
  const T = 'mkt-1';
  let acct1 = '';
  let acct2 = '';

  beforeAll(async () => {
    app = await startTestApp();
    await h.configure(T);
    acct1 = await h.merchant(T, 'MER000001');
    acct2 = await h.merchant(T, 'MER000002');
    await h.merchant(T, 'MER000003', false); // onboarding not finished: pending
  });
  afterAll(async () => {
    await app?.close();
  });

  let order = '';
  let payout1 = '';

  it('a captured order paid out to two merchants: two transfers at the PSP, one entry per merchant', async () => {
    // The real flow: initialize, pay at the sandbox, capture through the CapturePayment command.
    const o = await initializeOrder(app, T, { 1: 900, 2: 900, 3: 1200 });
    order = o.orderReference;
    await pay(app, o.transactionId);
    await waitFor(app, 'authorized', async () => (await app.deps.db.query<{ status: string }>('SELECT status FROM payments WHERE order_reference = $1', [order])).rows[0]?.status === 'authorized');
    await publish(app, T, 'CapturePayment', { orderReference: order, orderItemIds: [1, 2, 3], amount: 3000, currencyIsoCode: 'EUR' });
    await waitFor(app, 'captured', async () => {
      const p = (await app.deps.db.query<{ status: string; captured_amount: number }>('SELECT status, captured_amount FROM payments WHERE order_reference = $1', [order])).rows[0];
      return p?.status === 'captured' && Number(p.captured_amount) === 3000;
    });

    const items = [snake('MER000001', order, 'item-a', '900'), snake('MER000002', order, 'item-c', '1200'), snake('MER000001', order, 'item-b', '900')];
    const r = await h.transfers(T, shopBody(items));
    expect(r.status, r.text).toBe(200);
    expectExactShape(r.body);
    const [e1, e2] = r.body.transfers;
    expect(r.body.transfers).toHaveLength(2);
    expect(e1).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000001', orderReference: order, amount: '1800' });
    expect(e2).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000002', orderReference: order, amount: '1200' });
    expect(e1.transferId).toMatch(/^sbx_tr_/);
    expect(e2.transferId).toMatch(/^sbx_tr_/);
    expect(e1.transferId).not.toBe(e2.transferId);
    expect(e1.paymentTransmissionItems).toEqual([
      { type: 'order-item', merchantReference: 'MER000001', orderReference: order, itemReference: 'item-a', amount: '900', transferId: e1.transferId },
      { type: 'order-item', merchantReference: 'MER000001', orderReference: order, itemReference: 'item-b', amount: '900', transferId: e1.transferId },
    ]);
    payout1 = e1.transferId;
    expect(await h.sandboxTransfer(e1.transferId)).toMatchObject({ amount: 1800, currency: 'EUR', destination: acct1 });
    expect(await h.sandboxTransfer(e2.transferId)).toMatchObject({ amount: 1200, currency: 'EUR', destination: acct2 });
    const recs = await h.records(T, order);
    expect(recs.map((x) => [x.kind, x.merchant_reference, x.status, x.amount, x.psp_transfer_id])).toEqual([
      ['payout', 'MER000001', 'succeeded', 1800, e1.transferId],
      ['payout', 'MER000002', 'succeeded', 1200, e2.transferId],
    ]);
  });

  it('transfer.created webhooks are attributed through the stored transfer ids and processed as no-ops', async () => {
    await waitFor(app, 'transfer webhooks processed', async () => {
      const r = await app.deps.db.query<{ state: string }>(`SELECT state FROM webhook_inbox WHERE tenant_identifier = $1 AND event_type = 'transfer.created' AND psp_object_id = $2`, [T, payout1]);
      return r.rows.length === 1 && r.rows[0]!.state === 'processed';
    });
  });

  it('repeating the payout answers the same transfers without a second transfer at the PSP (items in another order)', async () => {
    const before1 = await h.sandboxTransferCount(acct1);
    const before2 = await h.sandboxTransferCount(acct2);
    const items = [snake('MER000001', order, 'item-b', '900'), snake('MER000001', order, 'item-a', '900'), snake('MER000002', order, 'item-c', '1200')];
    const r = await h.transfers(T, shopBody(items));
    expect(r.status).toBe(200);
    expect(r.body.transfers.map((e: any) => [e.isSuccessful, e.transferId === payout1])).toEqual([
      [true, true],
      [true, false],
    ]);
    expect(await h.sandboxTransferCount(acct1)).toBe(before1);
    expect(await h.sandboxTransferCount(acct2)).toBe(before2);
    expect(await h.records(T, order)).toHaveLength(2);
  });

  it('a payout beyond captured minus paid out is refused; nothing goes to the PSP', async () => {
    const before = await h.sandboxTransferCount(acct1);
    const r = await h.transfers(T, shopBody([snake('MER000001', order, 'item-x', '1')]));
    expect(r.body.transfers).toEqual([
      {
        isSuccessful: false,
        failureMessage: `Payout exceeds the captured amount of order "${order}".`,
        merchantReference: 'MER000001',
        orderReference: order,
        transferId: null,
        amount: '1',
        paymentTransmissionItems: [{ type: 'order-item', merchantReference: 'MER000001', orderReference: order, itemReference: 'item-x', amount: '1', transferId: null }],
      },
    ]);
    expect(await h.sandboxTransferCount(acct1)).toBe(before);
  });

  let reversal = '';
  it('after a refund, the payout is reversed by transferId: the PSP transfer is reversed, the entry carries the reversal id', async () => {
    await publish(app, T, 'RefundPayment', { orderReference: order, orderItemIds: [1], amount: 900, currencyIsoCode: 'EUR' });
    await waitFor(app, 'refunded', async () => Number((await app.deps.db.query<{ refunded_amount: number }>('SELECT refunded_amount FROM payments WHERE order_reference = $1', [order])).rows[0]?.refunded_amount) === 900);

    const r = await h.transfers(T, shopBody([snake('MER000001', order, 'item-a', '-900', payout1)]));
    expect(r.status).toBe(200);
    expectExactShape(r.body);
    const [e] = r.body.transfers;
    expect(e).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000001', orderReference: order, amount: '-900' });
    expect(e.transferId).toMatch(/^sbx_trr_/);
    expect(e.paymentTransmissionItems).toEqual([{ type: 'order-item', merchantReference: 'MER000001', orderReference: order, itemReference: 'item-a', amount: '-900', transferId: e.transferId }]);
    reversal = e.transferId;
    expect(await h.sandboxTransfer(payout1)).toMatchObject({ amount: 1800, amountReversed: 900 });
    const rec = (await h.records(T, order)).find((x) => x.kind === 'reversal')!;
    expect(rec).toMatchObject({ status: 'succeeded', amount: 900, psp_transfer_id: reversal, original_transfer_id: payout1 });
  });

  it('repeating the reversal answers the same reversal id and reverses nothing more', async () => {
    const r = await h.transfers(T, shopBody([snake('MER000001', order, 'item-a', '-900', payout1)]));
    expect(r.body.transfers[0]).toMatchObject({ isSuccessful: true, transferId: reversal });
    expect(await h.sandboxTransfer(payout1)).toMatchObject({ amountReversed: 900 });
  });

  it('a reversal beyond the paid-out amount is refused', async () => {
    const r = await h.transfers(T, shopBody([snake('MER000001', order, 'item-b', '-901', payout1)]));
    expect(r.body.transfers[0]).toMatchObject({ isSuccessful: false, transferId: null, failureMessage: `Reversal exceeds the paid-out amount of transfer "${payout1}".` });
    expect(await h.sandboxTransfer(payout1)).toMatchObject({ amountReversed: 900 });
  });

  it('a reversal with an unknown transferId, and one without transferId, fail per group; other groups still run', async () => {
    const order2 = await h.capturedPayment(T, { captured: 500 });
    const r = await h.transfers(T, {
      paymentTransmissionItems: [
        snake('MER000001', order, 'item-a', '-100', 'sbx_tr_doesnotexist'),
        snake('MER000002', order, 'item-c', '-100'),
        snake('MER000002', order2, 'item-z', '500'),
        snake('MER000001', order, 'item-b', '-100', payout1.replace('sbx_tr_', 'sbx_tr_x')),
      ],
    });
    expectExactShape(r.body);
    expect(r.body.transfers.map((e: any) => [e.isSuccessful, e.failureMessage, e.amount])).toEqual([
      [false, 'Could not find a payment transfer with the transfer id "sbx_tr_doesnotexist"', '-100'],
      [false, 'A reversal needs the transferId of the payout it reverses.', '-100'],
      [true, null, '500'],
      [false, `Could not find a payment transfer with the transfer id "${payout1.replace('sbx_tr_', 'sbx_tr_x')}"`, '-100'],
    ]);
    expect(r.body.transfers[0].paymentTransmissionItems[0].transferId).toBe('sbx_tr_doesnotexist');
  });

  it('payout to a merchant whose onboarding is not finished, and to an unknown merchant, fail with their messages', async () => {
    const o = await h.capturedPayment(T, { captured: 1000 });
    const r = await h.transfers(T, shopBody([snake('MER000003', o, 'i1', '100'), snake('MER000404', o, 'i2', '100')]));
    expect(r.body.transfers.map((e: any) => e.failureMessage)).toEqual([
      'Merchant "MER000003" cannot receive payouts (onboarding status "pending").',
      'Merchant with reference "MER000404" not found.',
    ]);
    expect(await h.records(T, o)).toHaveLength(0);
  });

  it('payment missing or not captured fail per group', async () => {
    const authorized = await h.capturedPayment(T, { captured: 0, status: 'authorized' });
    const r = await h.transfers(T, shopBody([snake('MER000001', 'DE--nope', 'i1', '100'), snake('MER000001', authorized, 'i2', '100')]));
    expect(r.body.transfers.map((e: any) => e.failureMessage)).toEqual([
      `Could not find a payment with the tenantIdentifier "${T}" and orderReference "DE--nope"`,
      `Payment for order "${authorized}" is not captured.`,
    ]);
  });

  it('camelCase items (reference OpenAPI) work like snake_case ones; orderExpenses become order-expense; zero amounts are skipped', async () => {
    const o = await h.capturedPayment(T, { captured: 1000, refunded: 100, status: 'partially_captured' });
    const r = await h.transfers(T, {
      orderItems: [camel('MER000002', o, 'i1', '300'), camel('MER000002', o, 'i0', '0')],
      orderExpenses: [{ merchant_reference: 'MER000002', orderReference: o, itemReference: 'exp-1', amount: 200 }],
      paymentTransmissionItems: [],
      orderAmountTotal: 999,
    });
    expectExactShape(r.body);
    expect(r.body.transfers).toHaveLength(1);
    expect(r.body.transfers[0]).toMatchObject({ isSuccessful: true, amount: '500' });
    expect(r.body.transfers[0].paymentTransmissionItems.map((i: any) => [i.type, i.itemReference, i.amount])).toEqual([
      ['order-item', 'i1', '300'],
      ['order-expense', 'exp-1', '200'],
    ]);
    // captured 1000 − refunded 100 − paid out 500 leaves 400
    const over = await h.transfers(T, { paymentTransmissionItems: [camel('MER000001', o, 'i7', '401')] });
    expect(over.body.transfers[0].failureMessage).toBe(`Payout exceeds the captured amount of order "${o}".`);
    const fits = await h.transfers(T, { paymentTransmissionItems: [camel('MER000001', o, 'i7', '400')] }, '/payments/transfers');
    expect(fits.status).toBe(200);
    expect(fits.body.transfers[0].isSuccessful).toBe(true);
  });

  it('a bad amount string fails the whole request: 400 VALIDATION_FAILED naming the field, transfers: [], nothing stored', async () => {
    const o = await h.capturedPayment(T, { captured: 1000 });
    for (const bad of ['10.00', '1e3', '', ' 5', 'abc']) {
      const r = await h.transfers(T, { paymentTransmissionItems: [snake('MER000001', o, 'i1', '100'), snake('MER000001', o, 'i2', '100'), snake('MER000001', o, 'i3', bad)] });
      expect(r.status).toBe(400);
      expect(r.body.transfers).toEqual([]);
      expect(r.body.error).toBe(r.body.errors[0].message);
      expect(r.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', status: 400, field: 'paymentTransmissionItems[2].amount' });
    }
    expect(await h.records(T, o)).toHaveLength(0);
  });

  it('whole-request errors carry transfers: [] (not an object, item not an object, missing key, tenant checks)', async () => {
    const notObject = await h.transfers(T, [1, 2]);
    expect(notObject.status).toBe(400);
    expect(notObject.body).toMatchObject({ transfers: [], errors: [{ code: 'VALIDATION_FAILED' }] });
    const itemNotObject = await h.transfers(T, { orderItems: ['x'] });
    expect(itemNotObject.body).toMatchObject({ transfers: [], errors: [{ code: 'VALIDATION_FAILED', field: 'orderItems[0]' }] });
    const missing = await h.transfers(T, { orderItems: [{ order_reference: 'o', item_reference: 'i', amount: '1' }] });
    expect(missing.body).toMatchObject({ transfers: [], errors: [{ code: 'VALIDATION_FAILED', field: 'orderItems[0].merchantReference' }] });
    const badJson = await app.request('/private/payments/transfers', { tenant: T, raw: '{"orderItems": [', headers: { 'content-type': 'application/json' } });
    expect(badJson.status).toBe(400);
    expect(badJson.body.transfers).toEqual([]);
    const noTenant = await h.transfers(undefined, shopBody([]));
    expect(noTenant.status).toBe(400);
    expect(noTenant.body).toMatchObject({ transfers: [], errors: [{ code: 'TENANT_IDENTIFIER_MISSING' }] });
    const unknown = await h.transfers('mkt-unknown', shopBody([]));
    expect(unknown.status).toBe(404);
    expect(unknown.body.transfers).toEqual([]);
    const empty = await h.transfers(T, shopBody([]));
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ transfers: [] });
  });

  it('a connector without marketplace features fails every group with its message', async () => {
    const o = await h.capturedPayment(T, { captured: 1000 });
    const original = app.deps.connectors.default;
    const { transfers: _omit, ...rest } = original;
    const restore = app.deps.connectors.use({ ...rest, capabilities: { ...original.capabilities, transfers: false } } as typeof original);
    try {
      const r = await h.transfers(T, shopBody([snake('MER000001', o, 'i1', '100')]));
      expect(r.body.transfers[0]).toMatchObject({ isSuccessful: false, failureMessage: 'Platform plugin does not provide Marketplace features' });
    } finally {
      restore();
    }
  });

  it('a pending record answers "still being processed"; reconciliation settles it with its own idempotency key', async () => {
    const o = await h.capturedPayment(T, { captured: 1000 });
    const id = randomUUID();
    await app.deps.db.query(
      `INSERT INTO transfers (id, tenant_identifier, kind, order_reference, merchant_reference, item_key, items, amount, currency, status, created_at)
       VALUES ($1, $2, 'payout', $3, 'MER000002', 'p1', '[]'::jsonb, 700, 'EUR', 'pending', now() - interval '10 minutes')`,
      [id, T, o],
    );
    const before = await h.sandboxTransferCount(acct2);
    const r = await h.transfers(T, shopBody([snake('MER000002', o, 'p1', '700')]));
    expect(r.body.transfers[0]).toMatchObject({ isSuccessful: false, transferId: null, failureMessage: 'Transfer is still being processed; retry later.' });
    // The pending 700 counts against the order: 400 more would exceed 1000.
    const over = await h.transfers(T, shopBody([snake('MER000002', o, 'p2', '400')]));
    expect(over.body.transfers[0].failureMessage).toBe(`Payout exceeds the captured amount of order "${o}".`);

    expect(await reconcilePendingTransfers(app.deps, { olderThanMs: 60_000 })).toBe(1);
    expect(await h.sandboxTransferCount(acct2)).toBe(before + 1);
    const [rec] = await h.records(T, o);
    expect(rec).toMatchObject({ id, status: 'succeeded' });
    expect(rec!.psp_transfer_id).toMatch(/^sbx_tr_/);
    // The shop's retry now gets the settled result; a second reconciliation finds nothing.
    const again = await h.transfers(T, shopBody([snake('MER000002', o, 'p1', '700')]));
    expect(again.body.transfers[0]).toMatchObject({ isSuccessful: true, transferId: rec!.psp_transfer_id });
    expect(await reconcilePendingTransfers(app.deps, { olderThanMs: 0 })).toBe(0);
    expect(await h.sandboxTransferCount(acct2)).toBe(before + 1);
  });

  it('a PSP refusal fails the group and stores a failed record; the retry is attempted again and succeeds', async () => {
    const o = await h.capturedPayment(T, { captured: 1000 });
    // Our side says the merchant may receive payouts, the PSP account is still pending: the PSP refuses.
    await app.deps.db.query(`UPDATE merchants SET status = 'restricted soon' WHERE tenant_identifier = $1 AND merchant_reference = 'MER000003'`, [T]);
    const body = shopBody([snake('MER000003', o, 'f1', '250')]);
    const r = await h.transfers(T, body);
    expect(r.body.transfers[0]).toMatchObject({ isSuccessful: false, transferId: null });
    expect(r.body.transfers[0].failureMessage).toMatch(/^The payment provider refused the transfer: /);
    expect((await h.records(T, o)).map((x) => x.status)).toEqual(['failed']);

    const acct3 = (await app.deps.db.query<{ psp_account_id: string }>(`SELECT psp_account_id FROM merchants WHERE tenant_identifier = $1 AND merchant_reference = 'MER000003'`, [T])).rows[0]!.psp_account_id;
    const res = await fetch(`${app.url}/sandbox/onboarding/${acct3}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'outcome=complete' });
    expect(res.status).toBe(200);
    await waitFor(app, 'MER000003 enabled', async () => (await h.merchantStatus(T, 'MER000003')) === 'enabled');
    const retry = await h.transfers(T, body);
    expect(retry.body.transfers[0]).toMatchObject({ isSuccessful: true, failureMessage: null });
    expect((await h.records(T, o)).map((x) => x.status)).toEqual(['failed', 'succeeded']);
    expect(await h.sandboxTransferCount(acct3)).toBe(1);
  });

  it('concurrent identical payouts create one transfer; concurrent different payouts never exceed the captured amount', async () => {
    await concurrencyChecks(app, h, T, acct1);
  });
});

async function concurrencyChecks(app: TestApp, h: ReturnType<typeof harness>, T: string, acct1: string): Promise<void> {
  const o = await h.capturedPayment(T, { captured: 1000 });
  const before = await h.sandboxTransferCount(acct1);
  const body = shopBody([snake('MER000001', o, 'c1', '600'), snake('MER000001', o, 'c2', '100')]);
  const answers = await Promise.all(Array.from({ length: 6 }, () => h.transfers(T, body)));
  const ids = new Set<string>();
  for (const a of answers) {
    expect(a.status).toBe(200);
    const e = a.body.transfers[0];
    if (e.isSuccessful) ids.add(e.transferId);
    else expect(e.failureMessage).toBe('Transfer is still being processed; retry later.');
  }
  expect(ids.size).toBe(1);
  expect(await h.sandboxTransferCount(acct1)).toBe(before + 1);
  const recs = await h.records(T, o);
  expect(recs.map((r) => r.status)).toEqual(['succeeded']);

  // Different item sets racing for the remaining 300: at most 300 is paid out.
  const races = await Promise.all(['d1', 'd2', 'd3', 'd4'].map((item) => h.transfers(T, shopBody([snake('MER000001', o, item, '150')]))));
  const ok = races.filter((r) => r.body.transfers[0].isSuccessful).length;
  expect(ok).toBe(2);
  for (const r of races.filter((x) => !x.body.transfers[0].isSuccessful)) {
    expect(r.body.transfers[0].failureMessage).toBe(`Payout exceeds the captured amount of order "${o}".`);
  }
  const total = (await h.records(T, o)).filter((r) => r.status !== 'failed').reduce((s, r) => s + r.amount, 0);
  expect(total).toBe(1000);
  const sbx = await app.deps.db.query<{ n: number }>('SELECT coalesce(sum(amount), 0)::int AS n FROM sandbox_transfers WHERE transfer_group = $1', [o]);
  expect(sbx.rows[0]!.n).toBe(1000);
}

describe('marketplace transfers on PostgreSQL', async () => {
  const available = await postgresAvailable();
  let app: TestApp;
  let drop: (() => Promise<void>) | undefined;
  const h = harness(() => app);
  const T = 'mkt-pg';
  let acct1 = '';

  beforeAll(async () => {
    if (!available) return;
    const db = await createTempDatabase();
    drop = db.drop;
    app = await startTestApp({ DATABASE_URL: db.url });
    await h.configure(T);
    acct1 = await h.merchant(T, 'MER000001');
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it.skipIf(!available)('concurrent identical payouts create one transfer; totals never exceed captured − refunded', async () => {
    await concurrencyChecks(app, h, T, acct1);
  });
});

describe('marketplace endpoints with AUTH_MODE=jwt', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'a-test-secret-of-at-least-32-characters!' }, { startWorkers: false });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a missing bearer token answers 401 with transfers: [] and nothing happens', async () => {
    const r = await app.request('/private/payments/transfers', { tenant: 'mkt-jwt', body: shopBody([snake('MER000001', 'DE--1', 'i', '100')]) });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ transfers: [], errors: [{ code: 'UNAUTHORIZED', status: 401 }] });
    const onb = await app.request('/private/merchants/onboarding', { tenant: 'mkt-jwt', headers: { 'x-merchant-reference': 'M' }, body: {} });
    expect(onb.status).toBe(401);
    expect((await app.deps.db.query('SELECT 1 FROM transfers')).rows).toHaveLength(0);
  });
});

/**
 * Reconciliation of a refund settled at the PSP whose webhook never arrived (issue 10 item 8; flows.md 14 step 3):
 * the refund is asked at the PSP within a minute of getting its PSP id (not after an hour), through the payment's own
 * connector resolved by the registry, and the PSP's state is applied once (PaymentRefunded, amounts).
 *
 * The sandbox connector's `getRefund` reads the sandbox's `GET /sandbox/v1/refunds/:id`; the test counts its calls. The sandbox's webhook dispatcher is stopped
 * once the payment is captured, so the refund's webhook is "lost".
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, pay, publish, until } from './helpers/commands.js';

const T = 'recon-tenant';
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ SANDBOX_REFUND_SETTLE_MS: '50' });
  await configureTenant(app, T);
});
afterAll(async () => {
  await app?.close();
});

describe('reconciliation of a pending refund with a PSP id', () => {
  it('asks the PSP within a minute of the PSP id and applies its answer once', async () => {
    const resolved: string[] = [];
    const asked: string[] = [];
    const registry = app.deps.connectors;
    const require = registry.require.bind(registry);
    registry.require = (id) => {
      const c = require(id);
      resolved.push(String(id));
      const withGetRefund: Connector = Object.create(c);
      // The sandbox connector's own getRefund (GET /sandbox/v1/refunds/:id), counted.
      withGetRefund.getRefund = async (settings, tx, ref, signal) => {
        asked.push(ref.pspRefundId ?? '');
        return c.getRefund!(settings, tx, ref, signal);
      };
      return withGetRefund;
    };

    const o = await initializeOrder(app, T, { 1: 4000 });
    await pay(app, o.transactionId);
    const payment = async () => (await app.deps.db.query<any>('SELECT * FROM payments WHERE transaction_id = $1', [o.transactionId])).rows[0];
    await until(payment, (p) => p?.status === 'authorized');
    await publish(app, T, 'CapturePayment', { orderReference: o.orderReference, orderItemIds: [1], amount: 4000, currencyIsoCode: 'EUR' });
    await until(payment, (p) => p.status === 'captured');
    // the refund's webhook is lost: the sandbox stops delivering (and settling); the PSP settles it "by itself" below
    await app.workers.find((w) => w.name === 'sandbox-webhooks')!.stop();

    await publish(app, T, 'RefundPayment', { orderReference: o.orderReference, orderItems: [{ orderItemId: 1, sku: 'SKU-1' }], orderItemIds: [1], amount: -4000, currencyIsoCode: 'EUR' }, randomUUID());
    const refund = async () => (await app.deps.db.query<any>(`SELECT *, next_attempt_at <= now() + interval '60 seconds' AS soon FROM refunds WHERE payment_id = $1`, [(await payment()).id])).rows[0];
    const pending = await until(refund, (r) => r?.psp_refund_id != null);
    expect(pending.status).toBe('pending');
    expect(pending.soon).toBe(true); // the first check at the PSP is due within a minute, not an hour

    await app.deps.db.query(`UPDATE sandbox_refunds SET status = 'succeeded' WHERE id = $1`, [pending.psp_refund_id]);
    await app.deps.db.query(`UPDATE refunds SET next_attempt_at = now() WHERE id = $1`, [pending.id]); // skip the 30 s wait
    const done = await until(refund, (r) => r.status === 'succeeded', 20_000);
    expect(done.status).toBe('succeeded');
    expect(resolved).toContain((await payment()).connector);
    expect(asked).toContain(pending.psp_refund_id);
    expect(await payment()).toMatchObject({ refunded_amount: 4000, pending_refund_amount: 0 });
    const refunded = await app.deps.db.query<any>(`SELECT payload FROM outbox WHERE message_name = 'PaymentRefunded' AND payload->>'orderReference' = $1`, [o.orderReference]);
    expect(refunded.rows).toHaveLength(1);
  }, 60_000);
});

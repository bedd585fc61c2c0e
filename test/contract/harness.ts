/**
 * The contract suite's shop side: the requests a Spryker shop, its Glue API and its OMS send, and readers for what the
 * app publishes (outbox rows) and stores (payments, records, inbox rows). Connector-neutral: the driver names methods.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { publish } from '../helpers/commands.js';
import type { browse } from '../helpers/hosted-flow.js';
import type { ConnectorDriver, ShopperResult } from './driver.js';

export const SHOP = 'https://shop.example';
export const SUCCESS_URL = `${SHOP}/en/payment/order-success`;
export const cancelUrlOf = (orderReference: string): string => `${SHOP}/en/payment/order-cancel?orderReference=${orderReference}`;

import { until } from '../helpers/commands.js';
export { until };

/** Posts a raw webhook body with the given headers; answers the status. */
export async function postWebhook(app: TestApp, path: string, body: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(app.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  await res.arrayBuffer();
  return res.status;
}

/** Where a browse() ended, as a driver reports it. */
export const shopperResult = (r: Awaited<ReturnType<typeof browse>>): ShopperResult => ({ hops: r.hops, finalUrl: r.finalUrl, html: r.final.html });

export const newOrderReference = (): string => `DE--${randomBytes(5).toString('hex')}`;

export async function configure(app: TestApp, tenant: string, values: Record<string, unknown>, headers: Record<string, string> = {}) {
  return app.request('/private/configure', { tenant, headers, body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify(values) } } } });
}

export async function configureOk(app: TestApp, tenant: string, values: Record<string, unknown>): Promise<void> {
  const r = await configure(app, tenant, values);
  expect(r.status, r.text).toBe(200);
}

export interface OutboxRow {
  channel: string;
  message_name: string;
  payload: any;
}

export async function outbox(app: TestApp, tenant: string): Promise<OutboxRow[]> {
  return (await app.deps.db.query<OutboxRow>('SELECT channel, message_name, payload FROM outbox WHERE tenant_identifier = $1 ORDER BY seq', [tenant])).rows;
}

/** The payment's published messages in order. */
export async function paymentMessages(app: TestApp, paymentId: string): Promise<Array<{ name: string; payload: any }>> {
  const r = await app.deps.db.query<{ message_name: string; payload: any }>('SELECT message_name, payload FROM outbox WHERE ordering_key LIKE $1 ORDER BY seq', [`%payment/${paymentId}`]);
  return r.rows.map((x) => ({ name: x.message_name, payload: x.payload }));
}

export const names = (msgs: Array<{ name: string }>): string[] => msgs.map((m) => m.name);
export const countOf = (msgs: Array<{ name: string }>, name: string): number => msgs.filter((m) => m.name === name).length;
export const detailsOf = (m: { payload: any }): any => JSON.parse(m.payload.details);

/** Waits until the payment's messages satisfy `ok`. */
export async function messagesUntil(app: TestApp, paymentId: string, ok: (msgs: Array<{ name: string; payload: any }>) => boolean, timeoutMs = 20_000) {
  const msgs = await until(() => paymentMessages(app, paymentId), ok, timeoutMs);
  return msgs;
}

export async function paymentRow(app: TestApp, tenant: string, transactionId: string): Promise<any> {
  return (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [tenant, transactionId])).rows[0];
}

export async function paymentByOrder(app: TestApp, tenant: string, orderReference: string): Promise<any> {
  return (await app.deps.db.query<any>('SELECT * FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, orderReference])).rows[0];
}

export async function inboxRows(app: TestApp, tenant: string, objectId?: string): Promise<Array<{ event_id: string; event_type: string; state: string }>> {
  const r = await app.deps.db.query<any>(
    `SELECT * FROM webhook_inbox WHERE tenant_identifier = $1 ${objectId ? 'AND psp_object_id = $2' : ''} ORDER BY received_at, id`,
    objectId ? [tenant, objectId] : [tenant],
  );
  return r.rows;
}

export interface HostedOrder {
  orderReference: string;
  transactionId: string;
  redirectUrl: string;
  paymentId: string;
  /** item id → unit price */
  items: Record<number, number>;
  total: number;
}

/** `POST /private/initialize-payment` for an order with the given items (id → price; grand total = sum). */
export async function initializeOrder(app: TestApp, driver: ConnectorDriver, tenant: string, items: Record<number, number> = { 1: 6000, 2: 2500, 3: 1500 }): Promise<HostedOrder> {
  const orderReference = newOrderReference();
  const entries = Object.entries(items).map(([id, price]) => ({ idSalesOrderItem: Number(id), name: `Item ${id}`, sku: `SKU-${id}`, quantity: 1, unitPrice: price }));
  const total = entries.reduce((s, e) => s + e.unitPrice, 0);
  const r = await app.request('/private/initialize-payment', {
    tenant,
    body: {
      orderData: { orderReference, grandTotal: total, currencyCode: 'EUR', paymentMethod: driver.methods.card, items: entries },
      redirectSuccessUrl: SUCCESS_URL,
      redirectCancelUrl: cancelUrlOf(orderReference),
      checkoutSummaryPageUrl: `${SHOP}/en/checkout/summary`,
    },
  });
  expect(r.status, r.text).toBe(200);
  expect(r.body).toMatchObject({ isSuccessful: true, message: null });
  expect(r.body.transactionId).toMatch(driver.transactionIdPattern);
  const row = await paymentRow(app, tenant, r.body.transactionId);
  expect(row).toMatchObject({ status: 'new', order_reference: orderReference, amount: total, currency: 'EUR' });
  return { orderReference, transactionId: r.body.transactionId, redirectUrl: r.body.redirectUrl, paymentId: row.id, items, total };
}

/** An order paid on the hosted page and authorized (all webhooks settled). */
export async function authorizedOrder(app: TestApp, driver: ConnectorDriver, tenant: string, items?: Record<number, number>, outcome: 'success' | 'refund-fails' | 'capture-fails' = 'success'): Promise<HostedOrder> {
  const o = await initializeOrder(app, driver, tenant, items);
  const r = await driver.payOnPage(app, o.redirectUrl, outcome);
  expect(r.finalUrl).toBe(SUCCESS_URL);
  await driver.settle(app, tenant, o.transactionId);
  const row = await paymentRow(app, tenant, o.transactionId);
  expect(row.status).toBe('authorized');
  return o;
}

/** The OMS: publishes a command on payment-commands (local Event Platform). */
export const command = (app: TestApp, tenant: string, name: string, payload: Record<string, unknown>): Promise<string> => publish(app, tenant, name, payload);

export const captureCmd = (o: HostedOrder, itemIds: number[], amount = itemIds.reduce((s, id) => s + o.items[id]!, 0)) => ({
  orderReference: o.orderReference,
  orderItemIds: itemIds,
  amount,
  currencyIsoCode: 'EUR',
});
export const refundCmd = (o: HostedOrder, itemIds: number[], amount = itemIds.reduce((s, id) => s + o.items[id]!, 0)) => ({
  orderReference: o.orderReference,
  orderItems: itemIds.map((id) => ({ orderItemId: id, sku: `SKU-${id}` })),
  orderItemIds: itemIds,
  amount: -amount,
  currencyIsoCode: 'EUR',
});
export const cancelCmd = (o: HostedOrder, itemIds: number[]) => ({ orderReference: o.orderReference, orderItemIds: itemIds, amount: 0, currencyIsoCode: 'EUR' });

/** The Glue `/payments` call of a headless front end (pre-order mode); answers `preOrderPaymentData`. */
export async function gluePayment(app: TestApp, driver: ConnectorDriver, tenant: string, amount: number, preOrderPaymentData: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const r = await app.request('/payments', {
    tenant,
    headers: { 'content-type': 'application/vnd.api+json' },
    body: {
      data: {
        type: 'payments',
        attributes: {
          payment: { paymentProviderName: driver.providerName, paymentMethodName: driver.methods.card, amount },
          quote: {
            customer: { firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com' },
            billingAddress: { iso2Code: 'DE', firstName: 'Sonia', lastName: 'Wagner', address1: 'Julie-Wolfthorn-Str.', zipCode: '10115', city: 'Berlin' },
            currency: { code: 'EUR' },
            items: [{ sku: 'shirt', name: 'Shirt', quantity: 1, unitPrice: amount }],
          },
          preOrderPaymentData,
        },
      },
    },
  });
  expect(r.status, r.text).toBe(201);
  const pod = r.body.data.attributes.preOrderPaymentData;
  expect(pod.transactionId).toMatch(driver.transactionIdPattern);
  return pod;
}

export const confirmBody = (transactionId: string, orderReference: string, grandTotal: number, preOrderPaymentData: Record<string, unknown> = { transactionId }) => ({
  orderReference,
  orderData: { orderReference, grandTotal, currencyCode: 'EUR', items: [{ idSalesOrderItem: 11, name: 'Shirt' }, { idSalesOrderItem: 12, name: 'Socks' }] },
  preOrderPaymentData,
});

/** Marketplace transfer items as the shop's OMS sends them (sync-api.md 4.7). */
export const transferItem = (merchant: string, order: string, item: string, amount: string, transferId: string | null = null) => ({
  merchant_reference: merchant,
  order_reference: order,
  item_reference: item,
  amount,
  transfer_id: transferId,
  is_successful: null,
  failure_message: null,
});
export const transfersBody = (items: unknown[]) => ({ orderItems: items, paymentTransmissionItems: items });

/** One payment-events message as the shop consumed it from the local Event Platform. */
export interface ShopEvent {
  name: string;
  payload: any;
  messageId: string;
}

/**
 * The shop's consumer of payment-events on the local Event Platform (Consumer-Id = tenant): `receive(n)` waits for `n`
 * more messages and acknowledges them, so a re-published message is seen again exactly as a shop would see it.
 */
export function shopConsumer(app: TestApp, tenant: string) {
  const consumed = new Set<string>();
  return {
    async receive(count: number, timeoutMs = 20_000): Promise<ShopEvent[]> {
      const out: ShopEvent[] = [];
      const end = Date.now() + timeoutMs;
      const seen = (got: ShopEvent[]) => got.forEach((m) => consumed.add(m.messageId));
      while (out.length < count && Date.now() < end) {
        const r = await app.request('/event-platform/payment-events?limit=100', { headers: { 'consumer-id': tenant } });
        expect(r.status).toBe(200);
        for (const m of r.body as any[]) out.push({ name: m.MessageAttributes.transferName, payload: JSON.parse(m.MessageBody), messageId: m.MessageId });
        if (r.body.length > 0) {
          const ack = await app.request('/event-platform/payment-events', { method: 'DELETE', headers: { 'consumer-id': tenant }, body: { messageIds: r.body.map((m: any) => m.MessageId) } });
          expect(ack.status).toBe(204);
        } else await new Promise((res) => setTimeout(res, 50));
      }
      seen(out);
      return out;
    },
    /** Receives every payment-events message published for the tenant so far. */
    async drain(): Promise<ShopEvent[]> {
      const total = (await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE tenant_identifier = $1 AND channel = 'payment-events'`, [tenant])).rows[0]!.n;
      return this.receive(Number(total) - consumed.size);
    },
  };
}

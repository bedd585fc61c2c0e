/**
 * Helpers of the payment-commands tests (helper H): configure a tenant, initialize a hosted payment with order items,
 * pay it through the sandbox API (confirm with the payment's clientSecret), publish commands on the local Event
 * Platform, and read back inbox rows, events and the sandbox's view of the payment.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';

export const SECRET_KEY = 'sk_sandbox_test1234';
export const WEBHOOK_SECRET = 'whsec_0123456789abcdef';
export const CARD_OK = '4242424242424242';
export const CARD_CAPTURE_FAILS = '4000000000000341';
export const CARD_REFUND_FAILS = '4000000000005126';

/** What the helpers need of a running app (TestApp or a spawned process). */
export interface AppLike {
  url: string;
}

export async function call(app: AppLike, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(app.url + path, { method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

export async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function configureTenant(app: AppLike, tenant: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await call(app, '/private/configure', {
    headers: { 'x-tenant-identifier': tenant },
    body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, ...extra }) } } },
  });
  expect(r.status, r.text).toBe(200);
}

export interface Order {
  orderReference: string;
  transactionId: string;
  items: number[];
}

/** Initializes a hosted payment for an order with the given items (id → unit price; grand total = sum). */
export async function initializeOrder(app: AppLike, tenant: string, items: Record<number, number>): Promise<Order> {
  const orderReference = `DE--${randomBytes(5).toString('hex')}`;
  const entries = Object.entries(items).map(([id, price]) => ({ idSalesOrderItem: Number(id), name: `Item ${id}`, sku: `SKU-${id}`, quantity: 1, unitPrice: price }));
  const grandTotal = entries.reduce((s, e) => s + e.unitPrice, 0);
  const r = await call(app, '/private/initialize-payment', {
    headers: { 'x-tenant-identifier': tenant },
    body: {
      orderData: { orderReference, grandTotal, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: entries },
      redirectSuccessUrl: 'https://shop.example/en/payment/order-success',
      redirectCancelUrl: `https://shop.example/en/payment/order-cancel?orderReference=${orderReference}`,
    },
  });
  expect(r.status, r.text).toBe(200);
  return { orderReference, transactionId: r.body.transactionId, items: entries.map((e) => e.idSalesOrderItem) };
}

/** The sandbox's view of the payment (GET /sandbox/v1/payments/:id). */
export async function sandboxPayment(app: AppLike, transactionId: string): Promise<any> {
  const r = await call(app, `/sandbox/v1/payments/${encodeURIComponent(transactionId)}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** Pays like a storefront: confirm with the payment's clientSecret and a card. */
export async function pay(app: AppLike, transactionId: string, card = CARD_OK): Promise<void> {
  const p = await sandboxPayment(app, transactionId);
  const r = await call(app, `/sandbox/v1/payments/${encodeURIComponent(transactionId)}/confirm`, {
    body: { clientSecret: p.clientSecret, card: { number: card, expMonth: 12, expYear: new Date().getUTCFullYear() + 3, cvc: '123' } },
  });
  expect(r.status, r.text).toBe(200);
}

/** Publishes a command on the local Event Platform. Returns the Message-Id used. */
export async function publish(app: AppLike, tenant: string, name: string, payload: Record<string, unknown>, messageId: string = randomUUID()): Promise<string> {
  const r = await call(app, '/event-platform/payment-commands', {
    headers: { 'transfer-name': name, 'tenant-identifier': tenant, 'message-id': messageId },
    body: payload,
  });
  expect(r.status, r.text).toBe(200);
  return messageId;
}

/**
 * The hosted payment page flow driven like a browser without JavaScript (flows.md 4): configure a tenant, initialize a
 * payment, open `/app-payment`, post the PSP's card form (form-encoded, straight to the sandbox), follow redirects by
 * hand. Used by the payment page, test card and race tests.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from './app.js';

export const WEBHOOK_SECRET = 'whsec_0123456789abcdef';
export const SECRET_KEY = 'sk_sandbox_test1234';
export const SHOP = 'https://shop.example';
export const CARD_YEAR = String(new Date().getUTCFullYear() + 3);

export async function configureTenant(app: TestApp, tenant: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await app.request('/private/configure', {
    tenant,
    body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, ...extra }) } } },
  });
  expect(r.status).toBe(200);
}

export interface InitOptions {
  orderReference?: string;
  amount?: number;
  currency?: string;
  items?: Array<Record<string, unknown>>;
  successUrl?: string;
  cancelUrl?: string;
  summaryUrl?: string | null;
  localeName?: string;
  /** More `orderData` fields (expenses, discountTotal, storeName, ...). */
  orderData?: Record<string, unknown>;
  /** Default `Credit Card` (the sandbox's method). */
  paymentMethod?: string;
}

export interface Initialized {
  transactionId: string;
  redirectUrl: string;
  orderReference: string;
  paymentId: string;
}

export async function initialize(app: TestApp, tenant: string, o: InitOptions = {}): Promise<Initialized> {
  const orderReference = o.orderReference ?? `DE--${randomBytes(5).toString('hex')}`;
  const body: Record<string, unknown> = {
    orderData: {
      orderReference,
      grandTotal: o.amount ?? 12345,
      currencyCode: o.currency ?? 'EUR',
      paymentMethod: o.paymentMethod ?? 'Credit Card',
      items: o.items ?? [
        { idSalesOrderItem: 1, name: 'Blue shirt', sku: 'SKU-1', quantity: 2, unitPrice: 5000 },
        { idSalesOrderItem: 2, name: 'Socks', sku: 'SKU-2', quantity: 1, unitPrice: 2345 },
      ],
      ...(o.localeName ? { localeName: o.localeName } : {}),
      ...(o.orderData ?? {}),
    },
    redirectSuccessUrl: o.successUrl ?? `${SHOP}/en/payment/order-success`,
    redirectCancelUrl: o.cancelUrl ?? `${SHOP}/en/payment/order-cancel?orderReference=${orderReference}`,
  };
  if (o.summaryUrl !== null) body.checkoutSummaryPageUrl = o.summaryUrl ?? `${SHOP}/en/checkout/summary`;
  const r = await app.request('/private/initialize-payment', { tenant, body });
  expect(r.status, r.text).toBe(200);
  expect(r.body.isSuccessful).toBe(true);
  const p = (await app.deps.db.query<{ id: string }>('SELECT id FROM payments WHERE tenant_identifier = $1 AND transaction_id = $2', [tenant, r.body.transactionId])).rows[0]!;
  return { transactionId: r.body.transactionId, redirectUrl: r.body.redirectUrl, orderReference, paymentId: p.id };
}

export interface Hop {
  status: number;
  url: string;
  location: string | null;
  html: string;
  headers: Headers;
}

/** GET (or POST form) `url`, then follow redirects while they stay on the app's origin; stops at a page or at a foreign URL. */
export async function browse(app: TestApp, url: string, form?: Record<string, string>): Promise<{ hops: Hop[]; final: Hop; finalUrl: string }> {
  const origin = new URL(app.url).origin;
  const hops: Hop[] = [];
  let next: string | null = url;
  let body: string | undefined = form ? new URLSearchParams(form).toString() : undefined;
  let method = form ? 'POST' : 'GET';
  for (let i = 0; i < 10 && next; i++) {
    // APP_BASE_URL may be localhost-based; requests go to the listening address
    const target: URL = new URL(next, origin);
    const res = await fetch(target, {
      method,
      redirect: 'manual',
      headers: body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
      body,
    });
    const html = await res.text();
    const location = res.headers.get('location');
    const hop: Hop = { status: res.status, url: target.toString(), location, html, headers: res.headers };
    hops.push(hop);
    if (res.status >= 300 && res.status < 400 && location) {
      const abs: string = new URL(location, target).toString();
      if (new URL(abs).origin !== origin) return { hops, final: hop, finalUrl: abs };
      next = abs;
      method = 'GET';
      body = undefined;
      continue;
    }
    return { hops, final: hop, finalUrl: target.toString() };
  }
  throw new Error('too many redirects');
}

const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? m[1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>') : undefined;
};

/** The first `<form method="post">` of a page: its action and hidden fields. */
export function parseForm(html: string): { action: string; hidden: Record<string, string> } {
  const m = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) throw new Error(`no form in page: ${html.slice(0, 300)}`);
  const formTag = /<form\b[^>]*>/i.exec(m[0])![0];
  const hidden: Record<string, string> = {};
  for (const t of m[1]!.match(/<input\b[^>]*>/gi) ?? []) {
    if (attr(t, 'type') === 'hidden' && attr(t, 'name')) hidden[attr(t, 'name')!] = attr(t, 'value') ?? '';
  }
  return { action: attr(formTag, 'action')!, hidden };
}

/** Opens the payment page and pays with `card` like a browser: returns the hops and where the browser ends up. */
export async function payOnPage(app: TestApp, pageUrl: string, card: string) {
  const page = await browse(app, pageUrl);
  expect(page.final.status, page.final.html.slice(0, 300)).toBe(200);
  const { action, hidden } = parseForm(page.final.html);
  return browse(app, action, { ...hidden, cardNumber: card, expMonth: '12', expYear: CARD_YEAR, cvc: '123' });
}

/** Submits the sandbox challenge page shown at `challengeUrl` with `complete` or `fail`. */
export async function answerChallenge(app: TestApp, challengeHtml: string, outcome: 'complete' | 'fail') {
  const { action } = parseForm(challengeHtml);
  return browse(app, action, { outcome });
}

/** Names of the payment's outbox messages in order. */
export async function messageNames(app: TestApp, paymentId: string): Promise<string[]> {
  const r = await app.deps.db.query<{ message_name: string }>('SELECT message_name FROM outbox WHERE ordering_key LIKE $1 ORDER BY seq', [`%payment/${paymentId}`]);
  return r.rows.map((x) => x.message_name);
}

export const count = (names: string[], name: string): number => names.filter((n) => n === name).length;

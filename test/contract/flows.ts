/**
 * Every flow of flows.md as one connector-neutral scenario. Each flow names what it needs: a connector capability
 * (`connector.capabilities`) or a shopper instrument of the driver. The suite runs them once per connector and skips a
 * flow a connector excludes with the capability named.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { ConnectorCapabilities } from '../../src/connectors/types.js';
import type { TestApp } from '../helpers/app.js';
import type { ConnectorDriver, PayOutcome } from './driver.js';
import {
  SUCCESS_URL,
  authorizedOrder,
  cancelCmd,
  cancelUrlOf,
  captureCmd,
  command,
  configure,
  configureOk,
  confirmBody,
  countOf,
  detailsOf,
  gluePayment,
  inboxRows,
  initializeOrder,
  messagesUntil,
  names,
  newOrderReference,
  outbox,
  shopConsumer,
  paymentMessages,
  paymentRow,
  refundCmd,
  transferItem,
  transfersBody,
  until,
  type HostedOrder,
} from './harness.js';

export interface FlowContext {
  app: TestApp;
  driver: ConnectorDriver;
  /** A fresh tenant id for this flow (configured by the flow). */
  tenant: string;
}

/** Answers null when the flow can run, else the reason (naming the capability). */
export type Need = (caps: ConnectorCapabilities, driver: ConnectorDriver) => string | null;

export interface Flow {
  key: string;
  title: string;
  needs: Need[];
  run(ctx: FlowContext): Promise<void>;
}

const cap =
  <K extends keyof ConnectorCapabilities>(name: K, ok: (v: ConnectorCapabilities[K]) => boolean, wanted: string): Need =>
  (caps) =>
    ok(caps[name]) ? null : `capability ${name} = ${JSON.stringify(caps[name])} (flow needs ${wanted})`;
const instrument =
  (outcome: PayOutcome): Need =>
  (_caps, driver) =>
    driver.unsupported[outcome] ? `the ${driver.id} PSP offers no "${outcome}" instrument: ${driver.unsupported[outcome]}` : null;

const needsPreOrder = cap('preOrder', (v) => v, 'preOrder = true');
const needsCustomer = cap('customer', (v) => v !== false, 'customer lookup');
/** Several captures per payment: the connector's default, or a tenant option that makes them available per payment. */
const needsMultipleCaptures: Need = (caps, driver) =>
  caps.captures === 'multiple' || driver.multicaptureOption ? null : `capability captures = ${JSON.stringify(caps.captures)} and no multicapture option (flow needs "multiple")`;
const needsSingleFinal = cap('captures', (v) => v === 'single-final', '"single-final"');
const needsReleaseByCancel = cap('releaseRemainder', (v) => v === 'cancel', '"cancel"');
const needsTransfers = cap('transfers', (v) => v !== false, 'transfers');
const needsOnboarding = cap('onboarding', (v) => v !== false, 'onboarding');
const needsAutomaticCapture = cap('automaticCapture', (v) => v.supported, 'automaticCapture.supported');
const needsDashboard = (op: 'capture' | 'cancel' | 'refund'): Need => cap('dashboardOperations', (v) => v.includes(op), `"${op}" among the dashboard operations`);
const needsAmountUpdate = cap('amountUpdate', (v) => v !== 'none', 'amount updates before authorization');

const jsonOf = (v: unknown): any => (typeof v === 'string' ? JSON.parse(v) : v);
const connectorOf = (ctx: FlowContext) => ctx.app.deps.connectors.get(ctx.driver.id)!;

/** Messages published after the first `n`. */
async function after(ctx: FlowContext, paymentId: string, n: number, ok: (msgs: Array<{ name: string; payload: any }>) => boolean) {
  const all = await messagesUntil(ctx.app, paymentId, (m) => ok(m.slice(n)));
  return all.slice(n);
}

/** Configures the flow's tenant and answers an order authorized on the hosted page. */
async function ready(ctx: FlowContext, outcome?: 'refund-fails' | 'capture-fails', items?: Record<number, number>, config: { multicapture?: boolean } = {}): Promise<HostedOrder> {
  await configureOk(ctx.app, ctx.tenant, ctx.driver.configuration(ctx.tenant, config));
  return authorizedOrder(ctx.app, ctx.driver, ctx.tenant, items, outcome);
}

/** The OMS sends a command; answers the payment's messages published after it once `ok` holds for them. */
async function send(ctx: FlowContext, o: HostedOrder, name: string, payload: Record<string, unknown>, ok: (msgs: Array<{ name: string; payload: any }>) => boolean) {
  const n = (await paymentMessages(ctx.app, o.paymentId)).length;
  await command(ctx.app, ctx.tenant, name, payload);
  return after(ctx, o.paymentId, n, ok);
}

const refundStates = async (ctx: FlowContext, o: HostedOrder): Promise<string[]> =>
  (await ctx.app.deps.db.query<{ status: string }>('SELECT status FROM refunds WHERE payment_id = $1 ORDER BY created_at', [o.paymentId])).rows.map((r) => r.status);
/** Refund records the PSP has answered (it knows their ids). */
const answeredRefunds = async (ctx: FlowContext, o: HostedOrder): Promise<number> =>
  (await ctx.app.deps.db.query('SELECT 1 FROM refunds WHERE payment_id = $1 AND psp_refund_id IS NOT NULL', [o.paymentId])).rows.length;

async function settled(ctx: FlowContext, o: HostedOrder) {
  await ctx.driver.settle(ctx.app, ctx.tenant, o.transactionId);
  return paymentMessages(ctx.app, o.paymentId);
}

async function captureAll(ctx: FlowContext, o: HostedOrder): Promise<void> {
  const ids = Object.keys(o.items).map(Number);
  const n = (await paymentMessages(ctx.app, o.paymentId)).length;
  await command(ctx.app, ctx.tenant, 'CapturePayment', captureCmd(o, ids));
  const got = await after(ctx, o.paymentId, n, (m) => countOf(m, 'PaymentCaptured') === 1);
  expect(got.filter((m) => m.name === 'PaymentCaptured').map((m) => m.payload)).toEqual([captureCmd(o, ids)]);
  await settled(ctx, o);
  expect(await paymentRow(ctx.app, ctx.tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: o.total });
}

/** Only the messages that are not PaymentUpdated (their count depends on sync/async PSP answers). */
const withoutUpdates = (msgs: Array<{ name: string; payload: any }>) => msgs.filter((m) => m.name !== 'PaymentUpdated').map((m) => [m.name, m.payload]);
const status = (o: HostedOrder, ids: number[], amount: number) => ({ orderReference: o.orderReference, orderItemIds: ids, amount, currencyIsoCode: 'EUR' });

/** Repeats a command whose effect already happened: the shop receives the same message again (same id), nothing new is written. */
async function expectRepublished(ctx: FlowContext, o: HostedOrder, name: string, payload: Record<string, unknown>, expected: [string, unknown]): Promise<void> {
  const shop = shopConsumer(ctx.app, ctx.tenant);
  const earlier = await shop.drain();
  const n = (await paymentMessages(ctx.app, o.paymentId)).length;
  await command(ctx.app, ctx.tenant, name, payload);
  const again = await shop.receive(1);
  expect(again.map((m) => [m.name, m.payload])).toEqual([expected]);
  expect(earlier.map((m) => m.messageId)).toContain(again[0]!.messageId);
  expect(await paymentMessages(ctx.app, o.paymentId)).toHaveLength(n);
}

async function onboardMerchant(ctx: FlowContext, ref: string, outcome: 'complete' | 'fail' | null) {
  const r = await ctx.app.request('/private/merchants/onboarding', {
    tenant: ctx.tenant,
    headers: { 'x-merchant-reference': ref },
    body: { merchant: { merchantReference: ref, name: `Shop ${ref}` }, successUrl: 'https://shop.example/mp/success', refreshUrl: 'https://shop.example/mp/refresh', cancelUrl: 'https://shop.example/mp/cancel', errorUrl: 'https://shop.example/mp/error' },
  });
  if (outcome) await ctx.driver.completeOnboarding(ctx.app, ctx.tenant, r.body.url, outcome);
  return r;
}
const merchantStatus = async (ctx: FlowContext, ref: string): Promise<string | undefined> =>
  (await ctx.app.deps.db.query<{ status: string }>('SELECT status FROM merchants WHERE tenant_identifier = $1 AND merchant_reference = $2', [ctx.tenant, ref])).rows[0]?.status;
const merchantMessages = async (ctx: FlowContext, ref: string) =>
  (await outbox(ctx.app, ctx.tenant)).filter((m) => m.message_name === 'MerchantAppOnboardingStatusChanged' && m.payload.merchantReference === ref).map((m) => m.payload.status);

/** A retryable decline on the hosted page (flow 4 steps 10 and 13), then a successful attempt on the page shown. */
async function declineThenSuccess(ctx: FlowContext, outcome: 'decline' | 'challenge-fail'): Promise<void> {
  const { app, driver, tenant } = ctx;
  await configureOk(app, tenant, driver.configuration(tenant));
  const o = await initializeOrder(app, driver, tenant);
  const r = await driver.payOnPage(app, o.redirectUrl, outcome);
  expect(r.hops.some((h) => h.url.includes('/app-payment/redirect'))).toBe(true);
  const back = r.hops.find((h) => /\/app-payment\?/.test(h.url) && new URL(h.url).searchParams.get('error'));
  expect(back, JSON.stringify(r.hops.map((h) => [h.status, h.url, h.location]))).toBeDefined();
  expect(new URL(back!.url).searchParams.get('transactionId')).toBe(o.transactionId);
  expect(r.hops.at(-1)!.status).toBe(200);
  expect(r.html).toContain('role="alert"');
  expect(names(await settled(ctx, o))).toEqual(['PaymentCreated']);
  expect((await paymentRow(app, tenant, o.transactionId)).status).toBe('new');

  const again = await driver.payOnPage(app, back!.url, 'success');
  expect(again.finalUrl).toBe(SUCCESS_URL);
  const msgs = await settled(ctx, o);
  expect(names(msgs)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
}

export const FLOWS: Flow[] = [
  {
    key: 'catalog',
    title: 'flow 1: the catalog artifacts of the connector are served (manifest, configuration form, translations); the form carries every value a tenant saves',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const manifest = await app.request('/app/manifest/en_US');
      expect(manifest.status).toBe(200);
      const cfg = await app.request('/app/configuration');
      expect(cfg.status).toBe(200);
      expect(cfg.body).toEqual(JSON.parse(readFileSync(new URL(`../../config/app/connectors/${driver.id}/configuration.json`, import.meta.url), 'utf8')));
      const properties = Object.keys(cfg.body.properties);
      for (const o of [{}, { express: true, captureMode: 'automatic' as const }, { marketplace: true }]) {
        for (const key of Object.keys(driver.configuration(tenant, o))) expect(properties, `form property ${key}`).toContain(key);
      }
      const tr = await app.request('/app/translation');
      expect(tr.status).toBe(200);
      for (const [id, p] of Object.entries<any>(cfg.body.properties)) {
        for (const k of ['title', 'placeholder', 'description', 'content']) if (typeof p[k] === 'string') expect(tr.body, `translation of ${id}.${k}`).toHaveProperty([p[k]]);
      }
      expect((await app.request('/app/api')).body).toEqual({ configuration: '/private/configure', disconnection: '/private/disconnect' });
    },
  },

  {
    key: 'configure',
    title: 'flow 2: configure (credential check, payment methods announced, re-configure, dropped method)',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const refused = driver.refusedConfiguration(tenant);
      const bad = await configure(app, tenant, refused.values);
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0].code).toBe(444);
      expect(Object.keys(JSON.parse(bad.body.errors[0].message))).toEqual([refused.field]);
      expect(bad.text).not.toContain(refused.secret);
      expect(await outbox(app, tenant)).toEqual([]);

      const values = driver.configuration(tenant, { express: true });
      await configureOk(app, tenant, values);
      const first = await outbox(app, tenant);
      const merchants = connectorOf(ctx).capabilities.onboarding !== false && connectorOf(ctx).settings.marketplace(values);
      expect(first.map((m) => `${m.channel}:${m.message_name}`).sort()).toEqual(
        [
          'app-events:AppConfigUpdated',
          'payment-method-commands:AddPaymentMethod',
          'payment-method-commands:AddPaymentMethod',
          ...(merchants ? ['merchant-app-events:ReadyForMerchantAppOnboarding'] : []),
        ].sort(),
      );
      const added = first.filter((m) => m.message_name === 'AddPaymentMethod').map((m) => m.payload);
      expect(added.map((p) => [p.name, p.providerName]).sort()).toEqual([
        [driver.methods.card, driver.providerName],
        [driver.methods.express, driver.providerName],
      ].sort());
      const strategies = Object.fromEntries(added.map((p) => [p.name, jsonOf(p.paymentMethodAppConfiguration)?.checkoutConfiguration?.strategy]));
      expect(strategies[driver.methods.express]).toBe('express-checkout');
      const config = first.find((m) => m.message_name === 'AppConfigUpdated')!.payload;
      expect(JSON.stringify(config)).not.toContain(String(values.secretKey));

      // Re-configure with the same values: AppConfigUpdated only.
      await configureOk(app, tenant, values);
      const second = (await outbox(app, tenant)).slice(first.length);
      expect(second.filter((m) => m.channel === 'payment-method-commands')).toEqual([]);
      expect(second.filter((m) => m.message_name === 'AppConfigUpdated')).toHaveLength(1);

      // Dropping the express method: DeletePaymentMethod for it only.
      await configureOk(app, tenant, driver.configuration(tenant, { express: false }));
      const third = (await outbox(app, tenant)).slice(first.length + second.length);
      expect(third.filter((m) => m.channel === 'payment-method-commands').map((m) => [m.message_name, m.payload.name])).toEqual([['DeletePaymentMethod', driver.methods.express]]);
    },
  },

  {
    key: 'hosted-success',
    title: 'flow 4: hosted page initialize → pay → authorized (success URL, exactly one PaymentAuthorized, reload)',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const o = await initializeOrder(app, driver, tenant);
      const created = await paymentMessages(app, o.paymentId);
      expect(names(created)).toEqual(['PaymentCreated']);
      expect(created[0]!.payload.entityReference).toBe(o.orderReference);
      const page = await app.request(new URL(o.redirectUrl).pathname + new URL(o.redirectUrl).search);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');

      const r = await driver.payOnPage(app, o.redirectUrl, 'success');
      expect(r.finalUrl).toBe(SUCCESS_URL);
      expect(r.hops.some((h) => h.url.includes('/app-payment/redirect'))).toBe(true);
      const msgs = await settled(ctx, o);
      expect(names(msgs)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
      expect(msgs[2]!.payload).toEqual(status(o, [1, 2, 3], o.total));
      expect(detailsOf(msgs[1]!).status).toBe('authorized');
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'authorized', authorized_amount: o.total });
      // Reload after paying → success URL (flow 4 step 15).
      const reload = await fetch(o.redirectUrl.replace(new URL(o.redirectUrl).origin, app.url), { redirect: 'manual' });
      expect(reload.status).toBe(302);
      expect(reload.headers.get('location')).toBe(SUCCESS_URL);
    },
  },

  {
    key: 'hosted-decline-then-success',
    title: 'flow 4 step 13: a declined attempt returns to the page with an error and sends nothing; then a good card pays',
    needs: [],
    run: (ctx) => declineThenSuccess(ctx, 'decline'),
  },

  {
    key: 'hosted-challenge-failed',
    title: 'flow 4 step 10/13: a failed challenge (3DS) is a retryable decline: back on the page with an error; then a good card pays',
    needs: [],
    run: (ctx) => declineThenSuccess(ctx, 'challenge-fail'),
  },

  {
    key: 'hosted-challenge',
    title: 'flow 4 step 10: a challenge (3DS) completed → success URL, one PaymentAuthorized',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const o = await initializeOrder(app, driver, tenant);
      const r = await driver.payOnPage(app, o.redirectUrl, 'challenge-complete');
      expect(r.finalUrl).toBe(SUCCESS_URL);
      expect(names(await settled(ctx, o))).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized']);
    },
  },

  {
    key: 'hosted-final-failure',
    title: 'flow 4 step 13: a payment that can no longer succeed → cancel URL, exactly one PaymentAuthorizationFailed',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const o = await initializeOrder(app, driver, tenant);
      const r = await driver.failForGood(app, o.redirectUrl);
      expect(r.finalUrl).toBe(cancelUrlOf(o.orderReference));
      const msgs = await settled(ctx, o);
      expect(countOf(msgs, 'PaymentAuthorizationFailed')).toBe(1);
      expect(countOf(msgs, 'PaymentAuthorized')).toBe(0);
      expect(msgs.find((m) => m.name === 'PaymentAuthorizationFailed')!.payload).toEqual(status(o, [1, 2, 3], o.total));
      expect((await paymentRow(app, tenant, o.transactionId)).status).toBe('authorization_failed');
      const reload = await fetch(o.redirectUrl.replace(new URL(o.redirectUrl).origin, app.url), { redirect: 'manual' });
      expect(reload.headers.get('location')).toBe(cancelUrlOf(o.orderReference));
    },
  },

  {
    key: 'automatic-capture',
    title: 'flow 4 step 11: automatic capture → PaymentUpdated, PaymentAuthorized, PaymentCaptured',
    needs: [needsAutomaticCapture],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant, { captureMode: 'automatic' }));
      const o = await initializeOrder(app, driver, tenant);
      expect((await driver.payOnPage(app, o.redirectUrl, 'success')).finalUrl).toBe(SUCCESS_URL);
      const msgs = await settled(ctx, o);
      expect(names(msgs)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized', 'PaymentCaptured']);
      expect(msgs[3]!.payload).toEqual(status(o, [1, 2, 3], o.total));
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: o.total });
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(o.total);
    },
  },

  {
    key: 'pre-order-confirm',
    title: 'flow 5: headless pre-order payment, webhook held until confirm-pre-order links the order, one PaymentAuthorized',
    needs: [needsPreOrder],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const pod = await gluePayment(app, driver, tenant, 1000);
      const tx = String(pod.transactionId);
      const row = await paymentRow(app, tenant, tx);
      expect(row).toMatchObject({ status: 'new', order_reference: null, amount: 1000 });
      const created = await paymentMessages(app, row.id);
      expect(names(created)).toEqual(['PaymentCreated']);
      expect(created[0]!.payload.entityReference).toBeUndefined();

      await driver.payPreOrder(app, tenant, pod, 'success');
      const held = await until(() => inboxRows(app, tenant, tx), (rows) => rows.some((r) => r.state === 'waiting_for_order'));
      expect(held.map((r) => r.state)).toContain('waiting_for_order');
      expect((await paymentRow(app, tenant, tx)).status).toBe('new');
      expect(countOf(await paymentMessages(app, row.id), 'PaymentAuthorized')).toBe(0);

      const order = newOrderReference();
      const r = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 1000, pod) });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({ isSuccessful: true, message: null });
      expect(await paymentRow(app, tenant, tx)).toMatchObject({ status: 'authorized', order_reference: order });
      await driver.settle(app, tenant, tx);
      const msgs = await paymentMessages(app, row.id);
      expect(countOf(msgs, 'PaymentAuthorized')).toBe(1);
      expect(msgs.find((m) => m.name === 'PaymentAuthorized')!.payload).toEqual({ orderReference: order, orderItemIds: [11, 12], amount: 1000, currencyIsoCode: 'EUR' });
      expect(msgs.filter((m) => m.name === 'PaymentUpdated').some((m) => m.payload.entityReference === order)).toBe(true);
      expect((await inboxRows(app, tenant, tx)).filter((x) => x.state === 'waiting_for_order')).toEqual([]);
      // Repeat: the same answer, nothing new.
      const again = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 1000, pod) });
      expect(again.status).toBe(200);
      expect(await paymentMessages(app, row.id)).toHaveLength(msgs.length);
    },
  },

  {
    key: 'pre-order-amount-change',
    title: 'flow 5 step 5: the cart total changes before payment → the same PSP payment gets the new amount',
    needs: [needsPreOrder, needsAmountUpdate],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const pod = await gluePayment(app, driver, tenant, 1000);
      const pod2 = await gluePayment(app, driver, tenant, 1490, pod);
      if (!connectorOf(ctx).capabilities.amountUpdateMayChangeId) expect(pod2.transactionId).toBe(pod.transactionId);
      const tx = String(pod2.transactionId);
      expect((await paymentRow(app, tenant, tx)).amount).toBe(1490);
      await driver.payPreOrder(app, tenant, pod2, 'success');
      const order = newOrderReference();
      const r = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 1490, pod2) });
      expect(r.status, r.text).toBe(200);
      const row = await paymentRow(app, tenant, tx);
      const msgs = await messagesUntil(app, row.id, (m) => countOf(m, 'PaymentAuthorized') === 1);
      expect(msgs.find((m) => m.name === 'PaymentAuthorized')!.payload.amount).toBe(1490);
    },
  },

  {
    key: 'pre-order-cancel',
    title: 'flow 7: cancel a pre-order payment → canceled, PaymentUpdated only, repeat 200, confirm afterwards 409',
    needs: [needsPreOrder],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      const pod = await gluePayment(app, driver, tenant, 800);
      const tx = String(pod.transactionId);
      const r = await app.request('/private/cancel-pre-order-payment', { tenant, body: { preOrderPaymentData: pod } });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({ isSuccessful: true, message: null });
      const row = await paymentRow(app, tenant, tx);
      expect(row.status).toBe('canceled');
      await driver.settle(app, tenant, tx);
      expect(names(await paymentMessages(app, row.id))).toEqual(['PaymentCreated', 'PaymentUpdated']);
      const again = await app.request('/private/cancel-pre-order-payment', { tenant, body: { preOrderPaymentData: pod } });
      expect(again.status).toBe(200);
      expect(await paymentMessages(app, row.id)).toHaveLength(2);
      const c = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, newOrderReference(), 800, pod) });
      expect(c.status).toBe(409);
      expect(c.body.errors[0].code).toBe('ILLEGAL_TRANSITION');
    },
  },

  {
    key: 'express-customer',
    title: 'flow 6: express checkout with customer lookup, then confirm-pre-order authorizes',
    needs: [needsPreOrder, needsCustomer],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant, { express: true }));
      const start = await app.request('/private/pre-order-payment', {
        tenant,
        body: { orderData: { grandTotal: 2500, currencyCode: 'EUR', paymentMethod: driver.methods.express }, preOrderPaymentData: {}, localeName: 'en_US' },
      });
      expect(start.status, start.text).toBe(200);
      expect(start.body).toMatchObject({ isSuccessful: true, redirectUrl: null, message: null });
      const pod = start.body.preOrderPaymentData as Record<string, unknown>;
      const tx = String(pod.transactionId);
      expect(tx).toMatch(driver.transactionIdPattern);
      expect(start.body.transactionId).toBe(tx);
      const early = await app.request('/private/customer', { tenant, body: { customerPaymentServiceProviderData: pod } });
      expect(early.status).toBe(409);

      const payer = { firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com', shipping: { address1: 'Hauptstr. 5', zipCode: '80331', city: 'München', iso2Code: 'DE' } };
      const approved = await driver.approveExpress(app, tenant, pod, payer);
      const row = await paymentRow(app, tenant, tx);
      const before = (await paymentMessages(app, row.id)).length;
      const c = await app.request('/private/customer', { tenant, body: { customerPaymentServiceProviderData: { ...approved, idCart: 7 } } });
      expect(c.status, c.text).toBe(200);
      expect(c.body.isSuccessful).toBe(true);
      expect(c.body.customer).toMatchObject({ firstName: 'Sonia', lastName: 'Wagner', email: 'sonia@example.com' });
      expect(c.body.customer.shippingAddress).toMatchObject({ address1: 'Hauptstr. 5', zipCode: '80331', city: 'München', iso2Code: 'DE' });
      expect(await paymentMessages(app, row.id)).toHaveLength(before);

      const order = newOrderReference();
      const r = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 2500, approved) });
      expect(r.status, r.text).toBe(200);
      await driver.settle(app, tenant, tx);
      expect(await paymentRow(app, tenant, tx)).toMatchObject({ status: 'authorized', order_reference: order });
      const msgs = await paymentMessages(app, row.id);
      expect(countOf(msgs, 'PaymentAuthorized')).toBe(1);
      expect(msgs.find((m) => m.name === 'PaymentAuthorized')!.payload).toEqual({ orderReference: order, orderItemIds: [11, 12], amount: 2500, currencyIsoCode: 'EUR' });
    },
  },

  {
    key: 'express-declined',
    title: 'flow 5 step 11 / 6 step 9: a declined pre-order payment → confirm answers 422, PaymentAuthorizationFailed once, a repeat answers the same',
    needs: [needsPreOrder],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant, { express: true }));
      const start = await app.request('/private/pre-order-payment', { tenant, body: { orderData: { grandTotal: 1200, currencyCode: 'EUR', paymentMethod: driver.methods.express }, preOrderPaymentData: {} } });
      expect(start.status, start.text).toBe(200);
      const pod = await driver.declineExpress(app, tenant, start.body.preOrderPaymentData);
      const tx = String(pod.transactionId);
      const order = newOrderReference();
      const r = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 1200, pod) });
      expect(r.status, r.text).toBe(422);
      expect(r.body).toMatchObject({ isSuccessful: false, errors: [{ code: 'PAYMENT_DECLINED', status: 422 }] });
      const row = await paymentRow(app, tenant, tx);
      expect(row).toMatchObject({ status: 'authorization_failed', order_reference: order });
      await driver.settle(app, tenant, tx);
      const msgs = await paymentMessages(app, row.id);
      expect(msgs.filter((m) => m.name === 'PaymentAuthorizationFailed').map((m) => m.payload)).toEqual([{ orderReference: order, orderItemIds: [11, 12], amount: 1200, currencyIsoCode: 'EUR' }]);
      expect(countOf(msgs, 'PaymentAuthorized')).toBe(0);
      const again = await app.request('/private/confirm-pre-order-payment', { tenant, body: confirmBody(tx, order, 1200, pod) });
      expect(again.status).toBe(422);
      expect(await paymentMessages(app, row.id)).toHaveLength(msgs.length);
    },
  },

  {
    key: 'capture-multiple',
    title: 'flow 8: partial and multiple captures up to the authorized amount; a repeat re-publishes; an over-capture fails',
    needs: [needsMultipleCaptures],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx, undefined, undefined, { multicapture: true });
      let got = await send(ctx, o, 'CapturePayment', captureCmd(o, [1]), (m) => countOf(m, 'PaymentCaptured') === 1);
      expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detailsOf(m).status : m.payload])).toEqual([
        ['PaymentUpdated', 'partially_captured'],
        ['PaymentCaptured', status(o, [1], 6000)],
      ]);
      await settled(ctx, o);
      expect(await paymentMessages(app, o.paymentId)).toHaveLength(5);

      got = await send(ctx, o, 'CapturePayment', captureCmd(o, [2, 3]), (m) => countOf(m, 'PaymentCaptured') === 1);
      expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? [detailsOf(m).status, detailsOf(m).capturedAmount] : m.payload])).toEqual([
        ['PaymentUpdated', ['captured', 10000]],
        ['PaymentCaptured', status(o, [2, 3], 4000)],
      ]);
      await settled(ctx, o);
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(10000);

      // The same capture again: its PaymentCaptured is re-published, the PSP captures nothing more.
      await expectRepublished(ctx, o, 'CapturePayment', captureCmd(o, [1]), ['PaymentCaptured', status(o, [1], 6000)]);
      // Nothing left to capture: rejected, PaymentCaptureFailed.
      got = await send(ctx, o, 'CapturePayment', captureCmd(o, [4], 1), (m) => m.length >= 1);
      expect(got.map((m) => [m.name, m.payload])).toEqual([['PaymentCaptureFailed', status(o, [4], 1)]]);
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(10000);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: 10000 });
    },
  },

  {
    key: 'capture-single-final',
    title: 'flow 8 step 12: on a single-capture payment the first partial capture is final and releases the rest',
    needs: [needsSingleFinal],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      let got = await send(ctx, o, 'CapturePayment', captureCmd(o, [1]), (m) => countOf(m, 'PaymentCaptured') === 1 && countOf(m, 'PaymentCanceled') === 1);
      expect(withoutUpdates(got)).toEqual([
        ['PaymentCaptured', status(o, [1], 6000)],
        ['PaymentCanceled', status(o, [], 4000)],
      ]);
      await settled(ctx, o);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: 6000 });
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(6000);
      // A later capture for other items: rejected without a PSP call.
      got = await send(ctx, o, 'CapturePayment', captureCmd(o, [2, 3]), (m) => m.length >= 1);
      expect(got.map((m) => [m.name, m.payload])).toEqual([['PaymentCaptureFailed', status(o, [2, 3], 4000)]]);
      // A cancel for the uncaptured items: PaymentCanceled with amount 0 (S2).
      got = await send(ctx, o, 'CancelPayment', cancelCmd(o, [2, 3]), (m) => m.length >= 1);
      expect(got.map((m) => [m.name, m.payload])).toEqual([['PaymentCanceled', status(o, [2, 3], 0)]]);
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(6000);
    },
  },

  {
    key: 'release-remainder',
    title: 'flow 9 step 5: cancel after a partial capture releases the remainder (captured, PaymentCanceled with the released amount)',
    needs: [needsMultipleCaptures, needsReleaseByCancel],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx, undefined, undefined, { multicapture: true });
      await send(ctx, o, 'CapturePayment', captureCmd(o, [1]), (m) => countOf(m, 'PaymentCaptured') === 1);
      await settled(ctx, o);
      const got = await send(ctx, o, 'CancelPayment', cancelCmd(o, [2, 3]), (m) => countOf(m, 'PaymentCanceled') === 1);
      expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detailsOf(m).status : m.payload])).toEqual([
        ['PaymentUpdated', 'captured'],
        ['PaymentCanceled', status(o, [2, 3], 4000)],
      ]);
      await settled(ctx, o);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: 6000 });
      expect(countOf(await paymentMessages(app, o.paymentId), 'PaymentCanceled')).toBe(1);
    },
  },

  {
    key: 'cancel',
    title: 'flow 9: cancel an authorized payment (PaymentCanceled with the authorized amount; a repeat re-publishes)',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      const n = (await paymentMessages(app, o.paymentId)).length;
      const got = await send(ctx, o, 'CancelPayment', cancelCmd(o, [1, 2, 3]), (m) => countOf(m, 'PaymentCanceled') === 1);
      expect(got.map((m) => [m.name, m.name === 'PaymentUpdated' ? detailsOf(m).status : m.payload])).toEqual([
        ['PaymentUpdated', 'canceled'],
        ['PaymentCanceled', status(o, [1, 2, 3], o.total)],
      ]);
      await settled(ctx, o);
      expect((await paymentRow(app, tenant, o.transactionId)).status).toBe('canceled');
      expect(await paymentMessages(app, o.paymentId)).toHaveLength(n + 2);
      await expectRepublished(ctx, o, 'CancelPayment', cancelCmd(o, [1, 2, 3]), ['PaymentCanceled', status(o, [1, 2, 3], o.total)]);
      // Reloading the page after a cancel → cancel URL (flow 4 step 15).
      const reload = await fetch(o.redirectUrl.replace(new URL(o.redirectUrl).origin, app.url), { redirect: 'manual' });
      expect(reload.headers.get('location')).toBe(cancelUrlOf(o.orderReference));
    },
  },

  {
    key: 'cancel-after-capture',
    title: 'flow 9 step 7: cancel of a payment captured in full → PaymentCancellationFailed, nothing changes',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      await captureAll(ctx, o);
      const got = await send(ctx, o, 'CancelPayment', cancelCmd(o, [1, 2, 3]), (m) => m.length >= 1);
      expect(got.map((m) => [m.name, m.payload])).toEqual([['PaymentCancellationFailed', status(o, [1, 2, 3], 0)]]);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: o.total });
    },
  },

  {
    key: 'capture-fails',
    title: 'flow 8 step 8: a capture the PSP refuses → capture_failed, PaymentCaptureFailed',
    needs: [instrument('capture-fails')],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx, 'capture-fails');
      const got = await send(ctx, o, 'CapturePayment', captureCmd(o, [1, 2, 3]), (m) => countOf(m, 'PaymentCaptureFailed') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentCaptureFailed', status(o, [1, 2, 3], o.total)]]);
      await settled(ctx, o);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'capture_failed', captured_amount: 0 });
      expect(countOf(await paymentMessages(app, o.paymentId), 'PaymentCaptured')).toBe(0);
    },
  },

  {
    key: 'refunds',
    title: 'flow 10: partial and multiple refunds up to the captured amount; a repeat re-publishes; an over-refund fails',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      await captureAll(ctx, o);
      let got = await send(ctx, o, 'RefundPayment', refundCmd(o, [1]), (m) => countOf(m, 'PaymentRefunded') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentRefunded', status(o, [1], 6000)]]);
      expect(detailsOf(got.filter((m) => m.name === 'PaymentUpdated').at(-1)!).refundedAmount).toBe(6000);
      await settled(ctx, o);

      got = await send(ctx, o, 'RefundPayment', refundCmd(o, [2, 3]), (m) => countOf(m, 'PaymentRefunded') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentRefunded', status(o, [2, 3], 4000)]]);
      await settled(ctx, o);
      expect(await driver.pspAmounts(app, tenant, o.transactionId)).toEqual({ captured: 10000, refunded: 10000 });

      await expectRepublished(ctx, o, 'RefundPayment', refundCmd(o, [1]), ['PaymentRefunded', status(o, [1], 6000)]);
      got = await send(ctx, o, 'RefundPayment', refundCmd(o, [4], 1), (m) => m.length >= 1);
      expect(got.map((m) => [m.name, m.payload])).toEqual([['PaymentRefundFailed', status(o, [4], 1)]]);
      expect(await driver.pspAmounts(app, tenant, o.transactionId)).toEqual({ captured: 10000, refunded: 10000 });
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', refunded_amount: 10000, pending_refund_amount: 0 });
    },
  },

  {
    key: 'refund-fails',
    title: 'flow 10 step 8/11: a refund that fails at the PSP → PaymentRefundFailed, nothing refunded',
    needs: [instrument('refund-fails')],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx, 'refund-fails');
      await captureAll(ctx, o);
      const n = (await paymentMessages(app, o.paymentId)).length;
      await command(app, tenant, 'RefundPayment', refundCmd(o, [1]));
      // The PSP settles the refund in its own time (the driver lets that time pass in settle()).
      await until(() => answeredRefunds(ctx, o), (x) => x === 1);
      await settled(ctx, o);
      await messagesUntil(app, o.paymentId, (m) => countOf(m.slice(n), 'PaymentRefundFailed') === 1);
      await settled(ctx, o);
      const all = (await paymentMessages(app, o.paymentId)).slice(n);
      // A PSP whose refunds fail after they succeeded (stripe.md 3.7) reports the success first.
      expect(withoutUpdates(all)).toEqual([
        ...(driver.refundFailsAfterSuccess ? [['PaymentRefunded', status(o, [1], 6000)]] : []),
        ['PaymentRefundFailed', status(o, [1], 6000)],
      ]);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', refunded_amount: 0, pending_refund_amount: 0 });
      expect(await refundStates(ctx, o)).toEqual(['failed']);
      // The items can be refunded again (a new attempt after a failure).
      const m = (await paymentMessages(app, o.paymentId)).length;
      await command(app, tenant, 'RefundPayment', refundCmd(o, [1]));
      await until(() => answeredRefunds(ctx, o), (x) => x === 2);
      await settled(ctx, o);
      const retried = await after(ctx, o.paymentId, m, (x) => countOf(x, 'PaymentRefundFailed') === 1);
      expect(withoutUpdates(retried)).toEqual([['PaymentRefundFailed', status(o, [1], 6000)]]);
    },
  },

  {
    key: 'dashboard-capture',
    title: 'flow 8 step 11: a capture made in the PSP dashboard is reflected (captured, PaymentCaptured for all items)',
    needs: [needsDashboard('capture')],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      const n = (await paymentMessages(app, o.paymentId)).length;
      await driver.dashboard(app, tenant, o.transactionId, 'capture');
      await driver.settle(app, tenant, o.transactionId);
      const got = await after(ctx, o.paymentId, n, (m) => countOf(m, 'PaymentCaptured') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentCaptured', status(o, [1, 2, 3], o.total)]]);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: o.total });
      const captures = await app.deps.db.query<{ status: string }>(`SELECT status FROM payment_operations WHERE payment_id = $1 AND kind = 'capture'`, [o.paymentId]);
      expect(captures.rows.map((r) => r.status)).toEqual(['succeeded']);
    },
  },

  {
    key: 'dashboard-cancel',
    title: 'flow 9 step 9: a cancel made at the PSP is reflected (canceled, PaymentCanceled for all items)',
    needs: [needsDashboard('cancel')],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      const n = (await paymentMessages(app, o.paymentId)).length;
      await driver.dashboard(app, tenant, o.transactionId, 'cancel');
      await driver.settle(app, tenant, o.transactionId);
      const got = await after(ctx, o.paymentId, n, (m) => countOf(m, 'PaymentCanceled') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentCanceled', status(o, [1, 2, 3], o.total)]]);
      expect((await paymentRow(app, tenant, o.transactionId)).status).toBe('canceled');
    },
  },

  {
    key: 'dashboard-refund',
    title: 'flow 10 step 12: a refund made in the PSP dashboard is recorded (PaymentRefunded for all captured items)',
    needs: [needsDashboard('refund')],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      await captureAll(ctx, o);
      const n = (await paymentMessages(app, o.paymentId)).length;
      await driver.dashboard(app, tenant, o.transactionId, 'refund');
      await driver.settle(app, tenant, o.transactionId);
      const got = await after(ctx, o.paymentId, n, (m) => countOf(m, 'PaymentRefunded') === 1);
      expect(withoutUpdates(got)).toEqual([['PaymentRefunded', status(o, [1, 2, 3], o.total)]]);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', refunded_amount: o.total });
      expect(await refundStates(ctx, o)).toEqual(['succeeded']);
    },
  },

  {
    key: 'reconciliation',
    title: 'flow 14 / rule 3: a capture and a refund whose PSP answers were lost are finished by reconciliation with the same key (money moves once, one message each)',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const o = await ready(ctx);
      const captureLost = await driver.loseNextAnswer(app, 'capture');
      const got = await send(ctx, o, 'CapturePayment', captureCmd(o, [1]), (m) => countOf(m, 'PaymentCaptured') === 1);
      expect(got.filter((m) => m.name === 'PaymentCaptured').map((m) => m.payload)).toEqual([status(o, [1], 6000)]);
      await settled(ctx, o);
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).captured).toBe(6000);
      expect((await paymentRow(app, tenant, o.transactionId)).captured_amount).toBe(6000);
      const captures = await app.deps.db.query<{ status: string }>(`SELECT status FROM payment_operations WHERE payment_id = $1 AND kind = 'capture'`, [o.paymentId]);
      expect(captures.rows.map((r) => r.status)).toEqual(['succeeded']);
      expect(countOf(await paymentMessages(app, o.paymentId), 'PaymentCaptured')).toBe(1);
      expect(captureLost()).toBe(true);

      const refundLost = await driver.loseNextAnswer(app, 'refund');
      await send(ctx, o, 'RefundPayment', refundCmd(o, [1], 2500), (m) => countOf(m, 'PaymentRefunded') === 1);
      await settled(ctx, o);
      expect((await driver.pspAmounts(app, tenant, o.transactionId)).refunded).toBe(2500);
      expect(await refundStates(ctx, o)).toEqual(['succeeded']);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ refunded_amount: 2500, pending_refund_amount: 0 });
      expect(countOf(await paymentMessages(app, o.paymentId), 'PaymentRefunded')).toBe(1);
      expect(refundLost()).toBe(true);
    },
  },

  {
    key: 'onboarding',
    title: 'flow 13: merchant onboarding (pending, link, the PSP completes → enabled; a rejected merchant; fresh link on return)',
    needs: [needsOnboarding],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant, { marketplace: true }));
      const ready = (await outbox(app, tenant)).filter((m) => m.message_name === 'ReadyForMerchantAppOnboarding');
      expect(ready).toHaveLength(1);
      expect(ready[0]!.payload.onboarding).toEqual({ url: `${app.deps.config.appBaseUrl}/private/merchants/onboarding`, strategy: 'api' });

      const r = await onboardMerchant(ctx, 'MER000001', null);
      expect(r.status, r.text).toBe(201);
      expect(r.body).toMatchObject({ strategy: 'redirect', content: null, merchantReference: 'MER000001', status: 'pending' });
      expect(r.body.url).toMatch(/^https?:\/\//);
      expect(await merchantStatus(ctx, 'MER000001')).toBe('pending');
      expect(await merchantMessages(ctx, 'MER000001')).toEqual(['pending']);

      const again = await onboardMerchant(ctx, 'MER000001', null);
      expect(again.status).toBe(200);
      expect(again.body.url).toMatch(/^https?:\/\//);
      expect(await merchantMessages(ctx, 'MER000001')).toEqual(['pending']);

      await driver.completeOnboarding(app, tenant, again.body.url, 'complete');
      expect(await until(() => merchantStatus(ctx, 'MER000001'), (s) => s === 'enabled')).toBe('enabled');
      expect(await until(() => merchantMessages(ctx, 'MER000001'), (m) => m.length === 2)).toEqual(['pending', 'enabled']);
      expect((await onboardMerchant(ctx, 'MER000001', null)).body.status).toBe('enabled');

      const rej = await onboardMerchant(ctx, 'MER000002', 'fail');
      expect(rej.status).toBe(201);
      expect(await until(() => merchantStatus(ctx, 'MER000002'), (s) => s === 'rejected')).toBe('rejected');
      expect(await merchantMessages(ctx, 'MER000002')).toEqual(['pending', 'rejected']);
    },
  },

  {
    key: 'transfers',
    title: 'flow 11: marketplace payout and reverse payout (idempotent per group, limits)',
    needs: [needsTransfers, needsOnboarding],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant, { marketplace: true }));
      await onboardMerchant(ctx, 'MER000001', 'complete');
      await onboardMerchant(ctx, 'MER000002', 'complete');
      await until(async () => [await merchantStatus(ctx, 'MER000001'), await merchantStatus(ctx, 'MER000002')], (s) => s.every((x) => x === 'enabled'));
      const o = await authorizedOrder(app, driver, tenant, { 1: 900, 2: 900, 3: 1200 });
      await captureAll(ctx, o);
      const ord = o.orderReference;
      const transfers = (items: unknown[]) => app.request('/private/payments/transfers', { tenant, body: transfersBody(items) });

      const r = await transfers([transferItem('MER000001', ord, 'item-a', '900'), transferItem('MER000002', ord, 'item-c', '1200'), transferItem('MER000001', ord, 'item-b', '900')]);
      expect(r.status, r.text).toBe(200);
      expect(r.body.transfers).toHaveLength(2);
      const [e1, e2] = r.body.transfers;
      expect(e1).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000001', orderReference: ord, amount: '1800' });
      expect(e2).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000002', orderReference: ord, amount: '1200' });
      expect(e1.transferId).toEqual(expect.any(String));
      expect(e1.transferId).not.toBe(e2.transferId);
      expect(e1.paymentTransmissionItems.map((i: any) => [i.itemReference, i.transferId])).toEqual([
        ['item-a', e1.transferId],
        ['item-b', e1.transferId],
      ]);
      const again = await transfers([transferItem('MER000001', ord, 'item-b', '900'), transferItem('MER000001', ord, 'item-a', '900'), transferItem('MER000002', ord, 'item-c', '1200')]);
      expect(again.body.transfers.map((e: any) => [e.isSuccessful, e.transferId])).toEqual([
        [true, e1.transferId],
        [true, e2.transferId],
      ]);
      const over = await transfers([transferItem('MER000001', ord, 'item-x', '1')]);
      expect(over.body.transfers[0]).toMatchObject({ isSuccessful: false, transferId: null, failureMessage: `Payout exceeds the captured amount of order "${ord}".` });

      // Item a refunded, then its payout reversed by transferId.
      const n = (await paymentMessages(app, o.paymentId)).length;
      await command(app, tenant, 'RefundPayment', refundCmd(o, [1]));
      await after(ctx, o.paymentId, n, (m) => countOf(m, 'PaymentRefunded') === 1);
      const rev = await transfers([transferItem('MER000001', ord, 'item-a', '-900', e1.transferId)]);
      expect(rev.status).toBe(200);
      const [re] = rev.body.transfers;
      expect(re).toMatchObject({ isSuccessful: true, failureMessage: null, merchantReference: 'MER000001', orderReference: ord, amount: '-900' });
      expect(re.transferId).toEqual(expect.any(String));
      expect(re.transferId).not.toBe(e1.transferId);
      const revAgain = await transfers([transferItem('MER000001', ord, 'item-a', '-900', e1.transferId)]);
      expect(revAgain.body.transfers[0]).toMatchObject({ isSuccessful: true, transferId: re.transferId });
      const tooMuch = await transfers([transferItem('MER000001', ord, 'item-b', '-901', e1.transferId)]);
      expect(tooMuch.body.transfers[0]).toMatchObject({ isSuccessful: false, transferId: null, failureMessage: `Reversal exceeds the paid-out amount of transfer "${e1.transferId}".` });
      const recs = await app.deps.db.query<{ kind: string; status: string; amount: number }>('SELECT kind, status, amount FROM transfers WHERE tenant_identifier = $1 AND order_reference = $2 ORDER BY created_at', [tenant, ord]);
      expect(recs.rows.map((x) => [x.kind, x.status, Number(x.amount)])).toEqual([
        ['payout', 'succeeded', 1800],
        ['payout', 'succeeded', 1200],
        ['reversal', 'succeeded', 900],
      ]);
    },
  },

  {
    key: 'webhooks-replayed',
    title: 'flow 12: webhooks delivered late, out of order and twice change nothing (one message each, every event stored once)',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      await configureOk(app, tenant, driver.configuration(tenant));
      await driver.holdWebhooks(app, tenant);
      const o = await initializeOrder(app, driver, tenant);
      expect((await driver.payOnPage(app, o.redirectUrl, 'success')).finalUrl).toBe(SUCCESS_URL);
      await command(app, tenant, 'CapturePayment', captureCmd(o, [1, 2, 3]));
      await messagesUntil(app, o.paymentId, (m) => countOf(m, 'PaymentCaptured') === 1);
      const before = await paymentMessages(app, o.paymentId);
      expect(names(before)).toEqual(['PaymentCreated', 'PaymentUpdated', 'PaymentAuthorized', 'PaymentUpdated', 'PaymentCaptured']);
      expect(await inboxRows(app, tenant, o.transactionId)).toEqual([]);

      const released = await driver.releaseWebhooksReversedTwice(app, tenant);
      expect(released.eventIds.length).toBeGreaterThanOrEqual(2);
      expect(released.statuses.every((s) => s === 200)).toBe(true);
      await driver.settle(app, tenant, o.transactionId);
      expect(await paymentMessages(app, o.paymentId)).toEqual(before);
      const rows = await inboxRows(app, tenant);
      const ids = rows.map((r) => r.event_id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of released.eventIds) expect(ids).toContain(id);
      for (const r of rows) expect(['processed', 'ignored']).toContain(r.state);
      expect(await paymentRow(app, tenant, o.transactionId)).toMatchObject({ status: 'captured', captured_amount: o.total });

      // Once more, later: 200, nothing stored, nothing sent.
      expect(await driver.redeliver(app, tenant, o.transactionId)).toBe(200);
      expect((await inboxRows(app, tenant)).length).toBe(rows.length);
      expect(await paymentMessages(app, o.paymentId)).toEqual(before);
    },
  },

  {
    key: 'disconnect',
    title: 'flow 3: disconnect with an open payment (409, confirm), 204, methods deleted, 403 afterwards, reconnect re-announces',
    needs: [],
    async run(ctx) {
      const { app, driver, tenant } = ctx;
      const values = driver.configuration(tenant, { express: true });
      await configureOk(app, tenant, values);
      const o = await authorizedOrder(app, driver, tenant);
      const n = (await outbox(app, tenant)).length;
      const first = await app.request('/private/disconnect', { method: 'POST', tenant });
      expect(first.status).toBe(409);
      expect(first.body.errors[0]).toMatchObject({ code: '21000', status: 409, confirm: { labelOk: 'Ignore & Disconnect', labelCancel: 'Cancel' } });
      expect(await outbox(app, tenant)).toHaveLength(n);
      const done = await app.request('/private/disconnect', { method: 'POST', tenant, headers: { 'x-confirmation-status': 'true' } });
      expect(done.status, done.text).toBe(204);
      const sent = (await outbox(app, tenant)).slice(n);
      expect(sent.map((m) => [m.message_name, m.payload.name ?? null])).toEqual([
        ['DeletePaymentMethod', driver.methods.card],
        ['DeletePaymentMethod', driver.methods.express],
        ['AppConfigUpdated', null],
      ]);
      expect(sent[2]!.payload).toMatchObject({ status: 'DISCONNECTED', isActive: false });

      const init = await app.request('/private/initialize-payment', { tenant, body: { orderData: { orderReference: newOrderReference(), grandTotal: 100, currencyCode: 'EUR', paymentMethod: driver.methods.card, items: [{ idSalesOrderItem: 1 }] }, redirectSuccessUrl: SUCCESS_URL, redirectCancelUrl: SUCCESS_URL } });
      expect(init.status).toBe(403);
      expect(await driver.redeliver(app, tenant, o.transactionId)).toBe(403);
      const m = (await paymentMessages(app, o.paymentId)).length;
      const cmdId = await command(app, tenant, 'CancelPayment', cancelCmd(o, [1, 2, 3]));
      const cmdState = async () => (await app.deps.db.query<{ state: string }>('SELECT state FROM command_inbox WHERE transport_message_id = $1', [cmdId])).rows[0]?.state;
      expect(await until(cmdState, (s) => s === 'ignored')).toBe('ignored');
      expect(await paymentMessages(app, o.paymentId)).toHaveLength(m);
      expect((await paymentRow(app, tenant, o.transactionId)).status).toBe('authorized');

      await configureOk(app, tenant, values);
      const re = (await outbox(app, tenant)).slice(n + sent.length);
      expect(re.filter((x) => x.message_name === 'AddPaymentMethod').map((x) => x.payload.name).sort()).toEqual([driver.methods.card, driver.methods.express].sort());
      expect(re.find((x) => x.message_name === 'AppConfigUpdated')!.payload).toMatchObject({ status: 'CONNECTED', isActive: true });
    },
  },
];

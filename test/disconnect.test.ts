/**
 * POST /private/disconnect (sync-api.md 4.2) and reconnect (flows.md 3, states.md 7).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageId } from '../src/messaging/outbox.js';
import { decryptedSettings, loadTenant } from '../src/store/tenants.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const SK = 'sk_sandbox_disconnect1';
const WH = 'whsec_disconnect0123456789';
const cfgBody = (configuration: Record<string, unknown>): unknown => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(configuration) } } });

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({}, { startWorkers: false });
});
afterAll(async () => {
  await app?.close();
});

async function outbox(tenant: string): Promise<Array<{ id: string; channel: string; message_name: string; payload: Record<string, any>; attributes: Record<string, string> }>> {
  return (await app.deps.db.query<any>('SELECT id, channel, message_name, payload, attributes FROM outbox WHERE tenant_identifier = $1 ORDER BY seq', [tenant])).rows;
}

async function configure(tenant: string, configuration: Record<string, unknown>) {
  const r = await app.request('/private/configure', { body: cfgBody(configuration), tenant });
  expect(r.status).toBe(200);
  return r;
}

function disconnect(tenant: string | undefined, headers: Record<string, string> = {}, path = '/private/disconnect') {
  return app.request(path, { method: 'POST', tenant, headers });
}

async function insertPayment(tenant: string, opts: { status: string; orderReference: string | null }): Promise<string> {
  const id = randomUUID();
  await app.deps.db.query(
    `INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, payment_method, connector, order_data)
     VALUES ($1, $2, $3, $4, $5, 1000, 'EUR', 'credit-card', 'sandbox', '{}'::jsonb)`,
    [id, tenant, `sbx_pay_${id}`, opts.orderReference, opts.status],
  );
  return id;
}

describe('disconnect: checks', () => {
  it('no tenant header → 400 code "20000"', async () => {
    const r = await disconnect(undefined);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ code: '20000', status: 400, message: 'Tenant identifier is missing.', detail: 'Tenant identifier is missing.' }]);
  });

  it('unknown tenant → 204 without body or messages', async () => {
    const r = await disconnect('dc-unknown');
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect(await loadTenant(app.deps.db, 'dc-unknown')).toBeNull();
    expect(await outbox('dc-unknown')).toEqual([]);
  });
});

describe('disconnect and reconnect', () => {
  it('disconnects: 204, DISCONNECTED, isActive false, revision + 1, DeletePaymentMethod per method then AppConfigUpdated', async () => {
    await configure('dc-1', { secretKey: SK, webhookSecret: WH, paymentMethods: ['credit-card', 'sandbox-express'] });
    const before = (await outbox('dc-1')).length;
    const r = await disconnect('dc-1', { 'x-request-id': 'req-dc-1' });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    const row = (await loadTenant(app.deps.db, 'dc-1'))!;
    expect(row.status).toBe('DISCONNECTED');
    expect(row.is_active).toBe(false);
    expect(row.revision).toBe(2);
    expect(row.announced_methods).toEqual([]);
    // configuration and secrets are kept
    expect(decryptedSettings(app.deps.secrets, row)).toMatchObject({ secretKey: SK, webhookSecret: WH, paymentMethods: ['credit-card', 'sandbox-express'] });

    const rows = (await outbox('dc-1')).slice(before);
    expect(rows.map((m) => [m.channel, m.message_name])).toEqual([
      ['payment-method-commands', 'DeletePaymentMethod'],
      ['payment-method-commands', 'DeletePaymentMethod'],
      ['app-events', 'AppConfigUpdated'],
    ]);
    expect(rows[0]!.payload).toEqual({ name: 'Credit Card', providerName: 'Sandbox' });
    expect(rows[1]!.payload).toEqual({ name: 'Sandbox Express', providerName: 'Sandbox' });
    expect(rows[0]!.id).toBe(messageId('open-acp-pay', 'dc-1', 'DeletePaymentMethod', 'method/credit-card/rev/2'));
    expect(rows[2]!.id).toBe(messageId('open-acp-pay', 'dc-1', 'AppConfigUpdated', 'config/rev/2'));
    expect(rows[2]!.attributes.correlationId).toBe('req-dc-1');
    expect(rows[2]!.payload).toEqual({
      appIdentifier: 'open-acp-pay',
      status: 'DISCONNECTED',
      isActive: false,
      config: { secretKey: '********', webhookSecret: '********', paymentMethods: ['credit-card', 'sandbox-express'], captureMode: 'manual', isLive: false, isActive: false },
      messageChannels: ['payment-method-commands', 'payment-events', 'payment-commands', 'app-events', 'merchant-app-events'],
    });
  });

  it('disconnecting again (bare alias too) → 204, nothing changes, no messages', async () => {
    const before = await outbox('dc-1');
    const row = await loadTenant(app.deps.db, 'dc-1');
    expect((await disconnect('dc-1')).status).toBe(204);
    expect((await disconnect('dc-1', {}, '/disconnect')).status).toBe(204);
    expect(await outbox('dc-1')).toEqual(before);
    expect(await loadTenant(app.deps.db, 'dc-1')).toEqual(row);
  });

  it('a disconnected tenant gets 403 on tenant-scoped endpoints but may configure', async () => {
    const { requireActiveTenant } = await import('../src/http/tenant.js');
    const fakeReq = { headers: { 'x-tenant-identifier': 'dc-1' } } as never;
    await expect(requireActiveTenant(fakeReq, app.deps.tenants)).rejects.toMatchObject({ status: 403 });
  });

  it('reconfigure after disconnect → CONNECTED, stored secrets reused, AddPaymentMethod for every method again', async () => {
    const before = (await outbox('dc-1')).length;
    const r = await configure('dc-1', { secretKey: '', webhookSecret: '********' });
    expect(r.body.configuration.isActive).toBe(true);
    const row = (await loadTenant(app.deps.db, 'dc-1'))!;
    expect(row.status).toBe('CONNECTED');
    expect(row.is_active).toBe(true);
    expect(row.revision).toBe(3);
    expect(row.announced_methods.map((m) => m.name)).toEqual(['credit-card', 'sandbox-express']);
    const rows = (await outbox('dc-1')).slice(before);
    expect(rows.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'AddPaymentMethod', 'AddPaymentMethod', 'ReadyForMerchantAppOnboarding']);
    expect(rows[0]!.payload).toMatchObject({ status: 'CONNECTED', isActive: true });
    expect(rows.slice(1, 3).map((m) => m.payload.name)).toEqual(['Credit Card', 'Sandbox Express']);

    // configure again: CONNECTED stays CONNECTED
    await configure('dc-1', {});
    expect((await loadTenant(app.deps.db, 'dc-1'))!.status).toBe('CONNECTED');
  });
});

describe('disconnect: confirmations', () => {
  it('open payment → 409 "21000" with confirm labels; nothing changes', async () => {
    await configure('dc-open', { secretKey: SK, webhookSecret: WH });
    await insertPayment('dc-open', { status: 'authorized', orderReference: 'DE--1' });
    const before = await outbox('dc-open');
    const r = await disconnect('dc-open');
    expect(r.status).toBe(409);
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0]).toMatchObject({
      code: '21000',
      status: 409,
      message:
        'The app cannot be disconnected while orders paid with it are still open. Those orders will not be processed any further after disconnecting. Close the open orders first, or confirm to disconnect anyway.',
      confirm: { labelOk: 'Ignore & Disconnect', labelCancel: 'Cancel' },
    });
    expect((await loadTenant(app.deps.db, 'dc-open'))!.status).toBe('NEW');
    expect(await outbox('dc-open')).toEqual(before);
  });

  it('German texts with Accept-Language: de', async () => {
    const r = await disconnect('dc-open', { 'accept-language': 'de' });
    expect(r.status).toBe(409);
    expect(r.body.errors[0].message).toMatch(/Die App kann nicht getrennt werden/);
  });

  it('X-Confirmation-Status: false → 400 "21001"', async () => {
    for (const v of ['false', 'nope', '']) {
      const r = await disconnect('dc-open', { 'x-confirmation-status': v === '' ? ' ,true' : v });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatchObject({ code: '21001', status: 400, message: 'Please close any open orders and try again.' });
    }
    expect((await loadTenant(app.deps.db, 'dc-open'))!.status).toBe('NEW');
  });

  it('X-Confirmation-Status: true → 204 disconnected', async () => {
    const r = await disconnect('dc-open', { 'x-confirmation-status': ' TRUE ' });
    expect(r.status).toBe(204);
    expect((await loadTenant(app.deps.db, 'dc-open'))!.status).toBe('DISCONNECTED');
  });

  it('payments without an order reference and finished payments do not count', async () => {
    await configure('dc-closed', { secretKey: SK, webhookSecret: WH });
    await insertPayment('dc-closed', { status: 'new', orderReference: null });
    await insertPayment('dc-closed', { status: 'captured', orderReference: 'DE--2' });
    await insertPayment('dc-closed', { status: 'canceled', orderReference: 'DE--3' });
    // another tenant's open payment does not count either
    await insertPayment('dc-other', { status: 'authorized', orderReference: 'DE--4' });
    expect((await disconnect('dc-closed')).status).toBe(204);
  });

  it('a pending refund or a pending payout makes the tenant have open payments', async () => {
    await configure('dc-refund', { secretKey: SK, webhookSecret: WH });
    const pid = await insertPayment('dc-refund', { status: 'captured', orderReference: 'DE--5' });
    await app.deps.db.query(
      `INSERT INTO refunds (id, payment_id, tenant_identifier, item_key, amount, currency, status) VALUES ($1, $2, 'dc-refund', '1', 100, 'EUR', 'processing')`,
      [randomUUID(), pid],
    );
    expect((await disconnect('dc-refund')).status).toBe(409);

    await configure('dc-payout', { secretKey: SK, webhookSecret: WH });
    await app.deps.db.query(
      `INSERT INTO transfers (id, tenant_identifier, kind, order_reference, merchant_reference, item_key, items, amount, currency, status)
       VALUES ($1, 'dc-payout', 'payout', 'DE--6', 'MER-1', 'a', '[]'::jsonb, 100, 'EUR', 'pending')`,
      [randomUUID()],
    );
    expect((await disconnect('dc-payout')).status).toBe(409);
  });

  it('active merchants need a second confirmation ("22000" / "22001"); values are consumed in check order', async () => {
    await configure('dc-merch', { secretKey: SK, webhookSecret: WH });
    await insertPayment('dc-merch', { status: 'new', orderReference: 'DE--7' });
    await app.deps.db.query(`INSERT INTO merchants (tenant_identifier, merchant_reference, status) VALUES ('dc-merch', 'MER-1', 'pending'), ('dc-merch', 'MER-2', 'rejected')`);

    let r = await disconnect('dc-merch', { 'x-confirmation-status': 'true' });
    expect(r.status).toBe(409);
    expect(r.body.errors[0]).toMatchObject({
      code: '22000',
      status: 409,
      message:
        'The app cannot be disconnected while merchants are connected through it. Those merchants may not receive payouts after disconnecting. Disconnect the merchants first, or confirm to disconnect anyway.',
      confirm: { labelOk: 'Ignore & Disconnect', labelCancel: 'Cancel' },
    });
    r = await disconnect('dc-merch', { 'x-confirmation-status': 'true,no' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: '22001', status: 400, message: 'Please disconnect the merchants and try again.' });
    r = await disconnect('dc-merch', { 'x-confirmation-status': 'false,true' });
    expect(r.body.errors[0].code).toBe('21001');
    expect((await loadTenant(app.deps.db, 'dc-merch'))!.status).toBe('NEW');
    r = await disconnect('dc-merch', { 'x-confirmation-status': 'yes, 1' });
    expect(r.status).toBe(204);
    expect((await loadTenant(app.deps.db, 'dc-merch'))!.status).toBe('DISCONNECTED');
  });

  it('merchants alone consume the first confirmation value; only rejected merchants need none', async () => {
    await configure('dc-merch2', { secretKey: SK, webhookSecret: WH });
    await app.deps.db.query(`INSERT INTO merchants (tenant_identifier, merchant_reference, status) VALUES ('dc-merch2', 'MER-1', 'enabled')`);
    let r = await disconnect('dc-merch2');
    expect(r.body.errors[0].code).toBe('22000');
    r = await disconnect('dc-merch2', { 'x-confirmation-status': 'on' });
    expect(r.status).toBe(204);

    await configure('dc-merch3', { secretKey: SK, webhookSecret: WH });
    await app.deps.db.query(`INSERT INTO merchants (tenant_identifier, merchant_reference, status) VALUES ('dc-merch3', 'MER-1', 'rejected')`);
    expect((await disconnect('dc-merch3')).status).toBe(204);
  });
});

/**
 * POST /private/merchants/onboarding (sync-api.md 4.9, flows.md 13) and account webhooks (states.md 6):
 * merchant upsert, PSP account, MerchantAppOnboardingStatusChanged (pending, then the PSP's status), fresh links,
 * validation, rejected merchants, connectors without onboarding.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const SK = 'sk_sandbox_test1234';
const WH = 'whsec_0123456789abcdef';
const TENANT = 'onb-1';
let app: TestApp;

const configBody = { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SK, webhookSecret: WH }) } } };

function onboardingBody(ref: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    merchant: { merchantReference: ref, name: `Shop ${ref}` },
    successUrl: 'https://shop.example.com/merchant-portal/onboarding/success',
    refreshUrl: 'https://shop.example.com/merchant-portal/onboarding/refresh',
    cancelUrl: 'https://shop.example.com/merchant-portal/onboarding/cancel',
    errorUrl: 'https://shop.example.com/merchant-portal/onboarding/error',
    ...extra,
  };
}

const onboard = (ref: string, opts: { header?: string | null; body?: unknown; tenant?: string } = {}) =>
  app.request('/private/merchants/onboarding', {
    tenant: opts.tenant ?? TENANT,
    headers: opts.header === null ? {} : { 'x-merchant-reference': opts.header ?? ref },
    body: opts.body ?? onboardingBody(ref),
  });

async function statusMessages(tenant: string, ref: string): Promise<Array<{ id: string; payload: any; ordering_key: string; channel: string }>> {
  const r = await app.deps.db.query<{ id: string; payload: any; ordering_key: string; channel: string }>(
    `SELECT id, payload, ordering_key, channel FROM outbox WHERE tenant_identifier = $1 AND message_name = 'MerchantAppOnboardingStatusChanged' ORDER BY seq`,
    [tenant],
  );
  return r.rows.map((row) => ({ ...row, payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload })).filter((m) => m.payload.merchantReference === ref);
}

async function merchantRow(tenant: string, ref: string): Promise<any> {
  return (await app.deps.db.query('SELECT * FROM merchants WHERE tenant_identifier = $1 AND merchant_reference = $2', [tenant, ref])).rows[0];
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function submitOnboarding(url: string, outcome: 'complete' | 'fail'): Promise<number> {
  const u = new URL(url);
  const res = await fetch(`${app.url}${u.pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `outcome=${outcome}`,
    redirect: 'manual',
  });
  await res.text();
  return res.status;
}

function sign(body: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', WH).update(`${t}.${body}`).digest('hex')}`;
}

beforeAll(async () => {
  app = await startTestApp();
  for (const t of [TENANT, 'onb-2']) expect((await app.request('/private/configure', { tenant: t, body: configBody })).status).toBe(200);
});
afterAll(async () => {
  await app?.close();
});

describe('merchant onboarding', () => {
  let accountId = '';

  it('configure announced ReadyForMerchantAppOnboarding with the onboarding endpoint and strategy api', async () => {
    const r = await app.deps.db.query<{ payload: any }>(`SELECT payload FROM outbox WHERE tenant_identifier = $1 AND message_name = 'ReadyForMerchantAppOnboarding'`, [TENANT]);
    expect(r.rows).toHaveLength(1);
    const p = typeof r.rows[0]!.payload === 'string' ? JSON.parse(r.rows[0]!.payload) : r.rows[0]!.payload;
    expect(p.onboarding).toEqual({ url: `${app.deps.config.appBaseUrl.replace(/\/+$/, '')}/private/merchants/onboarding`, strategy: 'api' });
  });

  it('a new merchant: 201, PSP account, link to the sandbox onboarding page, MerchantAppOnboardingStatusChanged pending', async () => {
    const r = await onboard('MER000001');
    expect(r.status).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual(['content', 'merchantReference', 'status', 'strategy', 'url']);
    expect(r.body).toMatchObject({ strategy: 'redirect', content: null, merchantReference: 'MER000001', status: 'pending' });
    const m = /\/sandbox\/onboarding\/(sbx_acct_[A-Za-z0-9_]+)/.exec(r.body.url);
    expect(m).not.toBeNull();
    accountId = m![1]!;
    expect(new URL(r.body.url).searchParams.get('returnUrl')).toBe('https://shop.example.com/merchant-portal/onboarding/success');

    const row = await merchantRow(TENANT, 'MER000001');
    expect(row).toMatchObject({ status: 'pending', psp_account_id: accountId, name: 'Shop MER000001' });
    const obj = await app.deps.db.query('SELECT tenant_identifier, kind FROM psp_objects WHERE psp_object_id = $1', [accountId]);
    expect(obj.rows).toEqual([{ tenant_identifier: TENANT, kind: 'account' }]);

    const msgs = await statusMessages(TENANT, 'MER000001');
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.channel).toBe('merchant-app-events');
    expect(msgs[0]!.ordering_key).toBe(`${TENANT}/merchant/MER000001`);
    expect(msgs[0]!.id).toBe(uuidv5(`urn:open-acp-pay:open-acp-pay:${TENANT}:MerchantAppOnboardingStatusChanged:merchant/MER000001/seq/1`, '6ba7b811-9dad-11d1-80b4-00c04fd430c8'));
    expect(msgs[0]!.payload).toEqual({
      merchantReference: 'MER000001',
      appIdentifier: 'open-acp-pay',
      type: 'payment',
      status: 'pending',
      additionalInfo: JSON.stringify({ accountId, requirements: [] }),
    });
  });

  it('the same merchant again: 200, same account, fresh link, no second message', async () => {
    const r = await onboard('MER000001', { body: onboardingBody('MER000001', { successUrl: 'https://shop.example.com/other-success' }) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ strategy: 'redirect', content: null, merchantReference: 'MER000001', status: 'pending' });
    expect(r.body.url).toContain(`/sandbox/onboarding/${accountId}`);
    expect(new URL(r.body.url).searchParams.get('returnUrl')).toBe('https://shop.example.com/other-success');
    expect(await statusMessages(TENANT, 'MER000001')).toHaveLength(1);
    const accounts = await app.deps.db.query('SELECT count(*)::int AS n FROM sandbox_accounts WHERE reference = $1', ['MER000001']);
    expect(accounts.rows[0]).toEqual({ n: 1 });
  });

  it('completing the sandbox onboarding: account.updated webhook → enabled, one MerchantAppOnboardingStatusChanged enabled', async () => {
    expect(await submitOnboarding(`${app.url}/sandbox/onboarding/${accountId}`, 'complete')).toBeLessThan(400);
    const row = await waitFor('merchant enabled', async () => {
      const m = await merchantRow(TENANT, 'MER000001');
      return m?.status === 'enabled' ? m : undefined;
    });
    expect(row.status_seq).toBe(2);
    const msgs = await statusMessages(TENANT, 'MER000001');
    expect(msgs.map((m) => m.payload.status)).toEqual(['pending', 'enabled']);
    expect(JSON.parse(msgs[1]!.payload.additionalInfo)).toEqual({ accountId, requirements: [] });
    const inbox = await app.deps.db.query<{ state: string; event_type: string }>('SELECT state, event_type FROM webhook_inbox WHERE tenant_identifier = $1 AND psp_object_id = $2', [TENANT, accountId]);
    expect(inbox.rows).toEqual([{ state: 'processed', event_type: 'account.updated' }]);

    // Onboarding again answers the current status.
    const again = await onboard('MER000001');
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('enabled');
  });

  it('an account event reporting the current status changes nothing and sends nothing', async () => {
    const body = JSON.stringify({
      id: `evt_${randomBytes(8).toString('hex')}`,
      type: 'account.updated',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: accountId, object: 'account', status: 'active', metadata: { tenantIdentifier: TENANT } } },
    });
    const r = await fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': sign(body) }, body });
    expect(r.status).toBe(200);
    await waitFor('row processed', async () => {
      const x = await app.deps.db.query<{ state: string }>(`SELECT state FROM webhook_inbox WHERE psp_object_id = $1 AND state <> 'processed'`, [accountId]);
      return x.rows.length === 0;
    });
    expect((await merchantRow(TENANT, 'MER000001')).status_seq).toBe(2);
    expect(await statusMessages(TENANT, 'MER000001')).toHaveLength(2);
  });

  it('a rejected merchant: status rejected by webhook, then onboarding answers 409 ILLEGAL_TRANSITION', async () => {
    const r = await onboard('MER000002');
    expect(r.status).toBe(201);
    expect(await submitOnboarding(r.body.url, 'fail')).toBeLessThan(400);
    await waitFor('merchant rejected', async () => (await merchantRow(TENANT, 'MER000002'))?.status === 'rejected');
    expect((await statusMessages(TENANT, 'MER000002')).map((m) => m.payload.status)).toEqual(['pending', 'rejected']);
    const again = await onboard('MER000002');
    expect(again.status).toBe(409);
    expect(again.body.errors[0]).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 409 });
    expect(again.body.error).toBe(again.body.errors[0].message);
  });

  it('merchants are per tenant: the same reference in another tenant is a new merchant with its own account', async () => {
    const r = await onboard('MER000001', { tenant: 'onb-2' });
    expect(r.status).toBe(201);
    expect(r.body.url).not.toContain(accountId);
    expect((await merchantRow('onb-2', 'MER000001')).status).toBe('pending');
    expect((await merchantRow(TENANT, 'MER000001')).status).toBe('enabled');
  });

  it('validation: x-merchant-reference required and equal to merchant.merchantReference; URLs required', async () => {
    const mismatch = await onboard('MER000003', { header: 'MER000999' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', message: 'merchant.merchantReference does not match x-merchant-reference.', field: 'merchant.merchantReference' });
    const missing = await onboard('MER000003', { header: null });
    expect(missing.status).toBe(400);
    expect(missing.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
    const noMerchant = await onboard('MER000003', { body: { successUrl: 'https://a.example/s', refreshUrl: 'https://a.example/r' } });
    expect(noMerchant.status).toBe(400);
    expect(noMerchant.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'merchant' });
    const noUrl = await onboard('MER000003', { body: { merchant: { merchantReference: 'MER000003' }, refreshUrl: 'https://a.example/r' } });
    expect(noUrl.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'successUrl' });
    const relUrl = await onboard('MER000003', { body: onboardingBody('MER000003', { refreshUrl: '/relative' }) });
    expect(relUrl.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'refreshUrl' });
    expect(await merchantRow(TENANT, 'MER000003')).toBeUndefined();
    expect(await statusMessages(TENANT, 'MER000003')).toHaveLength(0);
  });

  it('tenant checks: missing tenant 400, unknown tenant 404', async () => {
    const noTenant = await app.request('/private/merchants/onboarding', { headers: { 'x-merchant-reference': 'MER000004' }, body: onboardingBody('MER000004') });
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.errors[0].code).toBe('TENANT_IDENTIFIER_MISSING');
    const unknown = await onboard('MER000004', { tenant: 'never-configured' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errors[0].code).toBe('TENANT_NOT_FOUND');
  });

  it('a connector without onboarding answers 422 UNSUPPORTED_OPERATION and stores nothing', async () => {
    const original = app.deps.connectors.default;
    const { onboarding: _omit, ...rest } = original;
    const restore = app.deps.connectors.use({ ...rest, capabilities: { ...original.capabilities, onboarding: false } } as Connector);
    try {
      const r = await onboard('MER000005');
      expect(r.status).toBe(422);
      expect(r.body.errors[0]).toMatchObject({ code: 'UNSUPPORTED_OPERATION', status: 422 });
    } finally {
      restore();
    }
    expect(await merchantRow(TENANT, 'MER000005')).toBeUndefined();
  });
});

/**
 * POST /private/configure (sync-api.md 4.1): body and header checks (443), form and connector checks (444),
 * merge with the stored configuration, encrypted secrets, emitted messages (messages.md 3.1, 3.5, 3.6, 5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseMethodName, parseConfigureBody } from '../src/app/configure.js';
import { resolveLocale } from '../src/i18n/messages.js';
import { messageId } from '../src/messaging/outbox.js';
import { decryptedSettings, loadTenant, webhookSecrets } from '../src/store/tenants.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const SK = 'sk_sandbox_abcdefgh12';
const WH = 'whsec_0123456789abcdef';
const body = (configuration: unknown): unknown => ({ data: { type: 'configuration', attributes: { configuration: typeof configuration === 'string' ? configuration : JSON.stringify(configuration) } } });

const ENDPOINTS = [
  { name: 'authorization', path: '/private/initialize-payment' },
  { name: 'pre-order-payment', path: '/private/pre-order-payment' },
  { name: 'pre-order-confirmation', path: '/private/confirm-pre-order-payment' },
  { name: 'pre-order-cancellation', path: '/private/cancel-pre-order-payment' },
  { name: 'transfer', path: '/private/payments/transfers' },
  { name: 'customer', path: '/private/customer' },
];

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({}, { startWorkers: false });
});
afterAll(async () => {
  await app?.close();
});

async function outbox(tenant: string): Promise<Array<{ id: string; channel: string; message_name: string; ordering_key: string; attributes: Record<string, string>; payload: Record<string, any> }>> {
  return (await app.deps.db.query<any>('SELECT id, channel, message_name, ordering_key, attributes, payload FROM outbox WHERE tenant_identifier = $1 ORDER BY seq', [tenant])).rows;
}

async function configure(tenant: string, configuration: unknown, headers: Record<string, string> = {}) {
  return app.request('/private/configure', { body: body(configuration), tenant, headers });
}

describe('configure: success, stored merge and messages', () => {
  it('stores a first configuration: 200 with masked secrets, status NEW, revision 1, secrets encrypted', async () => {
    const r = await configure('cfg-1', { secretKey: SK, webhookSecret: WH, isLive: false }, { 'x-request-id': 'req-cfg-1' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      tenantIdentifier: 'cfg-1',
      configuration: { secretKey: '********', webhookSecret: '********', isLive: false, paymentMethods: ['credit-card'], captureMode: 'manual', isActive: true },
    });
    const row = (await loadTenant(app.deps.db, 'cfg-1'))!;
    expect(row.status).toBe('NEW');
    expect(row.is_active).toBe(true);
    expect(row.revision).toBe(1);
    expect(row.locale).toBe('en_US');
    expect(row.config).toEqual({ isLive: false, paymentMethods: ['credit-card'], captureMode: 'manual' });
    expect(Object.keys(row.secrets).sort()).toEqual(['secretKey', 'webhookSecret']);
    for (const sealed of Object.values(row.secrets)) expect(sealed.startsWith('k1:')).toBe(true);
    expect(decryptedSettings(app.deps.secrets, row)).toMatchObject({ secretKey: SK, webhookSecret: WH });
    expect(row.announced_methods.map((m) => m.name)).toEqual(['credit-card']);
  });

  it('writes AppConfigUpdated, AddPaymentMethod, ReadyForMerchantAppOnboarding with exact attributes and payloads', async () => {
    const base = app.deps.config.appBaseUrl;
    const rows = await outbox('cfg-1');
    expect(rows.map((r) => [r.channel, r.message_name, r.ordering_key])).toEqual([
      ['app-events', 'AppConfigUpdated', 'cfg-1/config'],
      ['payment-method-commands', 'AddPaymentMethod', 'cfg-1/config'],
      ['merchant-app-events', 'ReadyForMerchantAppOnboarding', 'cfg-1/config'],
    ]);
    const keys = ['config/rev/1', 'method/credit-card/rev/1', 'onboarding/rev/1'];
    rows.forEach((r, i) => {
      const id = messageId('open-acp-pay', 'cfg-1', r.message_name, keys[i]!);
      expect(r.id).toBe(id);
      expect(r.attributes).toEqual({
        transferName: r.message_name,
        name: r.message_name,
        event: r.message_name,
        tenantIdentifier: 'cfg-1',
        storeReference: 'cfg-1',
        actorId: 'open-acp-pay',
        publisher: 'open-acp-pay',
        timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/),
        correlationId: 'req-cfg-1',
        transactionId: id,
        messageId: id,
      });
    });
    const ts = rows.map((r) => r.attributes.timestamp);
    expect([...ts].sort()).toEqual(ts);
    expect(new Set(ts).size).toBe(3);

    expect(rows[0]!.payload).toEqual({
      appIdentifier: 'open-acp-pay',
      status: 'NEW',
      isActive: true,
      config: { secretKey: '********', webhookSecret: '********', isLive: false, paymentMethods: ['credit-card'], captureMode: 'manual', isActive: true },
      messageChannels: ['payment-method-commands', 'payment-events', 'payment-commands', 'app-events', 'merchant-app-events'],
    });
    expect(rows[1]!.payload).toEqual({
      name: 'Credit Card',
      providerName: 'Sandbox',
      paymentAuthorizationEndpoint: `${base}/private/initialize-payment`,
      paymentMethodAppConfiguration: { baseUrl: base, endpoints: ENDPOINTS, checkoutConfiguration: { strategy: 'hosted-payment-page' } },
    });
    const ready = rows[2]!.payload;
    expect(ready).toMatchObject({ onboarding: { url: `${base}/private/merchants/onboarding`, strategy: 'api' }, type: 'payment', appName: 'Open ACP Pay', appIdentifier: 'open-acp-pay' });
    expect(ready.merchantOnboardingStates.map((s: any) => s.name)).toEqual(['pending', 'completed', 'enabled', 'restricted soon', 'restricted', 'rejected']);
    for (const s of ready.merchantOnboardingStates) {
      expect(Object.keys(s.attributes).sort()).toEqual(['buttonInfo', 'buttonText', 'displayText', 'statusText']);
      for (const v of Object.values(s.attributes)) expect(typeof v === 'string' && v.length > 0).toBe(true);
    }
    expect(JSON.stringify(rows)).not.toContain(SK);
    expect(JSON.stringify(rows)).not.toContain(WH);
  });

  it('merges a re-configure: masked/empty secrets keep their value, sent keys overwrite, new method announced; status stays NEW', async () => {
    const r = await configure('cfg-1', { secretKey: '********', webhookSecret: '', captureMode: 'automatic', paymentMethods: ['credit-card', 'sandbox-express'], isActive: false });
    expect(r.status).toBe(200);
    expect(r.body.configuration).toEqual({
      secretKey: '********',
      webhookSecret: '********',
      isLive: false,
      paymentMethods: ['credit-card', 'sandbox-express'],
      captureMode: 'automatic',
      isActive: true,
    });
    const row = (await loadTenant(app.deps.db, 'cfg-1'))!;
    expect(row.status).toBe('NEW');
    expect(row.revision).toBe(2);
    expect(decryptedSettings(app.deps.secrets, row)).toMatchObject({ secretKey: SK, webhookSecret: WH, captureMode: 'automatic' });
    expect(row.previous_secrets).toEqual({});
    const rows = (await outbox('cfg-1')).slice(3);
    expect(rows.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'AddPaymentMethod', 'ReadyForMerchantAppOnboarding']);
    const add = rows[1]!.payload;
    expect(add.name).toBe('Sandbox Express');
    expect(add.paymentAuthorizationEndpoint).toBe(`${app.deps.config.appBaseUrl}/private/pre-order-payment`);
    expect(add.paymentMethodAppConfiguration.checkoutConfiguration.strategy).toBe('express-checkout');
    expect(add.paymentMethodAppConfiguration.endpoints).toEqual(ENDPOINTS);
    expect(rows[1]!.id).toBe(messageId('open-acp-pay', 'cfg-1', 'AddPaymentMethod', 'method/sandbox-express/rev/2'));
  });

  it('the same configuration again sends AppConfigUpdated (and onboarding) but no payment-method message', async () => {
    const before = (await outbox('cfg-1')).length;
    const r = await configure('cfg-1', { captureMode: 'automatic' });
    expect(r.status).toBe(200);
    const rows = (await outbox('cfg-1')).slice(before);
    expect(rows.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'ReadyForMerchantAppOnboarding']);
  });

  it('dropping a method sends DeletePaymentMethod; a changed method payload sends UpdatePaymentMethod', async () => {
    let before = (await outbox('cfg-1')).length;
    let r = await configure('cfg-1', { paymentMethods: ['credit-card'] });
    expect(r.status).toBe(200);
    let rows = (await outbox('cfg-1')).slice(before);
    expect(rows.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'DeletePaymentMethod', 'ReadyForMerchantAppOnboarding']);
    expect(rows[1]!.payload).toEqual({ name: 'Sandbox Express', providerName: 'Sandbox' });
    expect(rows[1]!.channel).toBe('payment-method-commands');

    // express method carries paymentServiceProviderData.isLive: switching isLive changes its payload
    await configure('cfg-1', { paymentMethods: ['credit-card', 'sandbox-express'] });
    before = (await outbox('cfg-1')).length;
    r = await configure('cfg-1', { isLive: true });
    expect(r.status).toBe(200);
    rows = (await outbox('cfg-1')).slice(before);
    expect(rows.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'UpdatePaymentMethod', 'ReadyForMerchantAppOnboarding']);
    expect(rows[1]!.payload.name).toBe('Sandbox Express');
    expect(rows[1]!.payload.paymentMethodAppConfiguration.checkoutConfiguration.paymentServiceProviderData).toEqual({ isLive: true });
  });

  it('a changed webhook secret keeps the previous one valid for 24 hours', async () => {
    const newSecret = 'whsec_ffffffffffffffff0000';
    const r = await configure('cfg-1', { webhookSecret: newSecret });
    expect(r.status).toBe(200);
    const row = (await loadTenant(app.deps.db, 'cfg-1'))!;
    expect(Object.keys(row.previous_secrets)).toEqual(['webhookSecret']);
    const until = Date.parse(row.previous_secrets.webhookSecret!.until);
    expect(until - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect(until - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    expect(webhookSecrets(app.deps.secrets, row, new Date())).toEqual([newSecret, WH]);
    expect(webhookSecrets(app.deps.secrets, row, new Date(until + 1000))).toEqual([newSecret]);
    expect(JSON.stringify(row)).not.toContain(newSecret);
  });

  it('stores the locale from Accept-Language', async () => {
    const r = await configure('cfg-1', {}, { 'accept-language': 'de-DE,de;q=0.9,en;q=0.8' });
    expect(r.status).toBe(200);
    expect((await loadTenant(app.deps.db, 'cfg-1'))!.locale).toBe('de_DE');
  });

  it('accepts the configuration as an object, a missing data.type, the bare alias, X-Store-Reference, vnd.api+json and no Content-Type', async () => {
    let r = await app.request('/configure', {
      body: { data: { attributes: { configuration: { secretKey: SK, webhookSecret: WH } } } },
      headers: { 'x-store-reference': 'cfg-alias', 'content-type': 'application/vnd.api+json' },
    });
    expect(r.status).toBe(200);
    expect(r.body.tenantIdentifier).toBe('cfg-alias');
    // a body without Content-Type is parsed as JSON (fetch sets no type for binary bodies)
    const res = await fetch(`${app.url}/private/configure`, { method: 'POST', body: new TextEncoder().encode(JSON.stringify(body({ captureMode: 'manual' }))), headers: { 'x-tenant-identifier': 'cfg-alias' } });
    expect(res.status).toBe(200);
    // other content types are refused
    r = await app.request('/private/configure', { raw: JSON.stringify(body({ captureMode: 'manual' })), tenant: 'cfg-alias', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(415);
  });
});

describe('configure: malformed requests answer 443', () => {
  const variants: Array<[string, string | undefined]> = [
    ['null', 'null'],
    ['"null"', '"null"'],
    ['{}', '{}'],
    ['{"data":{}}', '{"data":{}}'],
    ['{"data":null}', '{"data":null}'],
    ['wrong data.type', JSON.stringify({ data: { type: 'configurations', attributes: { configuration: '{}' } } })],
    ['missing attributes', JSON.stringify({ data: { type: 'configuration' } })],
    ['configuration null', JSON.stringify({ data: { type: 'configuration', attributes: { configuration: null } } })],
    ['configuration "null"', JSON.stringify({ data: { type: 'configuration', attributes: { configuration: 'null' } } })],
    ['configuration not JSON', JSON.stringify({ data: { type: 'configuration', attributes: { configuration: '{secretKey:' } } })],
    ['configuration a JSON array', JSON.stringify({ data: { type: 'configuration', attributes: { configuration: '[1,2]' } } })],
    ['configuration a JSON number', JSON.stringify({ data: { type: 'configuration', attributes: { configuration: '42' } } })],
    ['body is an array', '[]'],
    ['body not JSON', '{"data":'],
    ['empty body', ''],
  ];
  /** What the `hint` names for each (what was wrong and where); `detail` stays the message (sync-api.md 3). */
  const WHERE: Record<string, string> = {
    null: 'The body is null, not a JSON object',
    '"null"': 'The body is a string, not a JSON object',
    '{}': '"data" is missing',
    '{"data":{}}': '"data.attributes" is missing',
    '{"data":null}': '"data" is null, not an object',
    'wrong data.type': '"data.type" must be "configuration" (or absent), got "configurations"',
    'missing attributes': '"data.attributes" is missing',
    'configuration null': '"data.attributes.configuration" is null',
    'configuration "null"': '"data.attributes.configuration" is a string of JSON null',
    'configuration not JSON': '"data.attributes.configuration" is a string but not valid JSON',
    'configuration a JSON array': '"data.attributes.configuration" is a string of JSON an array',
    'configuration a JSON number': '"data.attributes.configuration" is a string of JSON a number',
    'body is an array': 'The body is an array',
    'body not JSON': 'The body is not valid JSON (parsing stopped at character',
    'empty body': 'The body is empty',
  };
  for (const [label, raw] of variants) {
    it(`${label} → 400 code 443 "Wrong request format."`, async () => {
      const r = await app.request('/private/configure', { raw, tenant: 'cfg-bad', headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(400);
      expect(r.body.errors).toHaveLength(1);
      expect(r.body.errors[0]).toMatchObject({ code: 443, status: 400, message: 'Wrong request format.' });
      expect(r.body.error).toBe('Wrong request format.');
      expect(r.body.errors[0].hint).toContain(WHERE[label]!);
      expect(r.body.errors[0].detail).toBe('Wrong request format.');
      expect(await loadTenant(app.deps.db, 'cfg-bad')).toBeNull();
    });
  }

  it('the hint never quotes the configuration it could not read', async () => {
    const raw = JSON.stringify({ data: { attributes: { configuration: '{"secretKey":"sk_live_topsecret' } } });
    const r = await app.request('/private/configure', { raw, tenant: 'cfg-bad', headers: { 'content-type': 'application/json' } });
    expect(r.body.errors[0].hint).toMatch(/^"data\.attributes\.configuration" is a string but not valid JSON \(parsing stopped at character \d+\)/);
    expect(r.text).not.toContain('topsecret');
    const broken = await app.request('/private/configure', { raw: '{"data":{"attributes":{"configuration":"sk_live_topsecret"', tenant: 'cfg-bad', headers: { 'content-type': 'application/json' } });
    expect(broken.body.errors[0].hint).toMatch(/^The body is not valid JSON \(parsing stopped at character \d+\)/);
    expect(broken.text).not.toContain('topsecret');
  });

  it('localizes the message (de_DE)', async () => {
    const r = await app.request('/private/configure', { raw: '{}', tenant: 'cfg-bad', headers: { 'content-type': 'application/json', 'accept-language': 'de' } });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: 443, message: 'Falsches Anfrageformat.' });
  });

  it('missing tenant header → 400 code 443 "X-Tenant-Identifier in header is required."', async () => {
    const r = await app.request('/private/configure', { body: body({ secretKey: SK, webhookSecret: WH }), headers: { 'x-tenant-identifier': '   ' } });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toEqual({
      code: 443,
      status: 400,
      message: 'X-Tenant-Identifier in header is required.',
      detail: 'X-Tenant-Identifier in header is required.',
    });
  });

  it('a malformed body is reported before a missing tenant header', async () => {
    const r = await app.request('/private/configure', { raw: '{}', headers: { 'content-type': 'application/json' } });
    expect(r.body.errors[0].message).toBe('Wrong request format.');
  });
});

describe('configure: form and credential errors answer 444 and store nothing', () => {
  async function expectNothingStored(tenant: string): Promise<void> {
    expect(await loadTenant(app.deps.db, tenant)).toBeNull();
    expect(await outbox(tenant)).toEqual([]);
  }

  it('required fields missing on a new tenant', async () => {
    const r = await configure('cfg-err-1', { isLive: false });
    expect(r.status).toBe(400);
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0].code).toBe(444);
    expect(JSON.parse(r.body.errors[0].message)).toEqual({ secretKey: 'This field is required.', webhookSecret: 'This field is required.' });
    await expectNothingStored('cfg-err-1');
  });

  it('invalid secretKey format gives a field error on secretKey (German with Accept-Language: de_DE)', async () => {
    let r = await configure('cfg-err-2', { secretKey: 'sk_live_abcdefgh', webhookSecret: WH });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].code).toBe(444);
    const fields = JSON.parse(r.body.errors[0].message);
    expect(Object.keys(fields)).toEqual(['secretKey']);
    expect(fields.secretKey).toMatch(/sk_sandbox_/);
    r = await configure('cfg-err-2', { secretKey: 'sk_sandbox_x', webhookSecret: 'whsec_short' }, { 'accept-language': 'de_DE' });
    const de = JSON.parse(r.body.errors[0].message);
    expect(Object.keys(de).sort()).toEqual(['secretKey', 'webhookSecret']);
    expect(de.secretKey).toMatch(/geheime Schlüssel/);
    await expectNothingStored('cfg-err-2');
  });

  it('a revoked key is refused by the sandbox: field error on secretKey', async () => {
    const r = await configure('cfg-err-3', { secretKey: 'sk_sandbox_abcdrevoked', webhookSecret: WH });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].code).toBe(444);
    const fields = JSON.parse(r.body.errors[0].message);
    expect(Object.keys(fields)).toEqual(['secretKey']);
    expect(fields.secretKey.length).toBeGreaterThan(0);
    expect(r.text).not.toContain('sk_sandbox_abcdrevoked');
    await expectNothingStored('cfg-err-3');
  });

  it('wrong types and values outside the allowed options', async () => {
    const r = await configure('cfg-err-4', { secretKey: SK, webhookSecret: WH, captureMode: 'sometimes', isLive: 'yes', paymentMethods: 'credit-card' });
    expect(r.status).toBe(400);
    const fields = JSON.parse(r.body.errors[0].message);
    expect(Object.keys(fields)).toEqual(['paymentMethods', 'captureMode', 'isLive']);
    expect(fields.captureMode).toMatch(/manual, automatic/);
    await expectNothingStored('cfg-err-4');
    const r2 = await configure('cfg-err-4', { secretKey: SK, webhookSecret: WH, paymentMethods: ['credit-card', 'bitcoin'] });
    expect(Object.keys(JSON.parse(r2.body.errors[0].message))).toEqual(['paymentMethods']);
    await expectNothingStored('cfg-err-4');
  });

  it('a failed re-configure leaves the stored configuration unchanged', async () => {
    expect((await configure('cfg-err-5', { secretKey: SK, webhookSecret: WH })).status).toBe(200);
    const before = await loadTenant(app.deps.db, 'cfg-err-5');
    const count = (await outbox('cfg-err-5')).length;
    const r = await configure('cfg-err-5', { secretKey: 'sk_sandbox_abcdrevoked', captureMode: 'automatic' });
    expect(r.status).toBe(400);
    expect(await loadTenant(app.deps.db, 'cfg-err-5')).toEqual(before);
    expect((await outbox('cfg-err-5')).length).toBe(count);
  });

  it('notification values and unknown keys are ignored', async () => {
    const r = await configure('cfg-err-6', { secretKey: SK, webhookSecret: WH, sandboxNotification: 'x', somethingElse: 1 });
    expect(r.status).toBe(200);
    expect(r.body.configuration).not.toHaveProperty('sandboxNotification');
    expect(r.body.configuration).not.toHaveProperty('somethingElse');
  });
});

describe('configure: tenant isolation and secrets at rest', () => {
  it("tenant B neither sees nor inherits tenant A's configuration", async () => {
    expect((await configure('iso-a', { secretKey: SK, webhookSecret: WH, captureMode: 'automatic' })).status).toBe(200);
    const r = await configure('iso-b', { secretKey: 'sk_sandbox_bbbbbbbbbb' });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.errors[0].message)).toEqual({ webhookSecret: 'This field is required.' });
    const ok = await configure('iso-b', { secretKey: 'sk_sandbox_bbbbbbbbbb', webhookSecret: 'whsec_bbbbbbbbbbbbbbbbbb' });
    expect(ok.status).toBe(200);
    expect(ok.body.configuration.captureMode).toBe('manual');
    const a = (await loadTenant(app.deps.db, 'iso-a'))!;
    const b = (await loadTenant(app.deps.db, 'iso-b'))!;
    expect(decryptedSettings(app.deps.secrets, a).secretKey).toBe(SK);
    expect(decryptedSettings(app.deps.secrets, b).secretKey).toBe('sk_sandbox_bbbbbbbbbb');
    expect((await outbox('iso-b')).every((m) => m.attributes.tenantIdentifier === 'iso-b')).toBe(true);
  });

  it('no raw database row contains a plaintext secret', async () => {
    const dump = JSON.stringify((await app.deps.db.query('SELECT * FROM tenants')).rows) + JSON.stringify((await app.deps.db.query('SELECT * FROM outbox')).rows);
    for (const secret of [SK, WH, 'sk_sandbox_bbbbbbbbbb', 'whsec_bbbbbbbbbbbbbbbbbb', 'whsec_ffffffffffffffff0000']) expect(dump).not.toContain(secret);
    expect(dump).toContain('********');
  });
});

describe('configure: PSP unreachable', () => {
  let down: TestApp;
  beforeAll(async () => {
    down = await startTestApp({ SANDBOX_PSP_URL: 'http://127.0.0.1:9' }, { startWorkers: false });
  });
  afterAll(async () => {
    await down?.close();
  });

  it('answers 443 with the retry text and stores nothing', async () => {
    const r = await down.request('/private/configure', { body: body({ secretKey: SK, webhookSecret: WH }), tenant: 'cfg-down' });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([
      {
        code: 443,
        status: 400,
        message: 'The payment provider could not be reached to check the credentials. Please try again.',
        detail: 'The payment provider could not be reached to check the credentials. Please try again.',
      },
    ]);
    expect(await loadTenant(down.deps.db, 'cfg-down')).toBeNull();
  });
});

describe('configure: messages read back through the embedded Event Platform', () => {
  let live: TestApp;
  beforeAll(async () => {
    live = await startTestApp(); // workers on: the outbox relay delivers to the local hub
  });
  afterAll(async () => {
    await live?.close();
  });

  async function receive(channel: string, tenant: string): Promise<any[]> {
    for (let i = 0; i < 200; i++) {
      const r = await live.request(`/event-platform/${channel}`, { headers: { 'consumer-id': tenant } });
      expect(r.status).toBe(200);
      if (r.body.length > 0) return r.body;
      await new Promise((res) => setTimeout(res, 25));
    }
    throw new Error(`no message on ${channel} for ${tenant}`);
  }

  it('AppConfigUpdated arrives on app-events for the tenant, secrets masked', async () => {
    expect((await live.request('/private/configure', { body: body({ secretKey: SK, webhookSecret: WH }), tenant: 'hub-1' })).status).toBe(200);
    const [msg] = await receive('app-events', 'hub-1');
    expect(msg.MessageAttributes).toMatchObject({ transferName: 'AppConfigUpdated', tenantIdentifier: 'hub-1', publisher: 'open-acp-pay' });
    const payload = JSON.parse(msg.MessageBody);
    expect(payload).toMatchObject({ appIdentifier: 'open-acp-pay', status: 'NEW', isActive: true });
    expect(payload.config.secretKey).toBe('********');
    expect(msg.MessageBody).not.toContain(SK);
    expect(await live.request('/event-platform/app-events', { headers: { 'consumer-id': 'hub-other' } }).then((r) => r.body)).toEqual([]);
    const [method] = await receive('payment-method-commands', 'hub-1');
    expect(method.MessageAttributes.transferName).toBe('AddPaymentMethod');
  });
});

describe('configure helpers', () => {
  it('normalises method names: lower-case, runs of spaces/underscores/dots become "-"', () => {
    expect(normaliseMethodName('Credit Card')).toBe('credit-card');
    expect(normaliseMethodName('Sandbox  Express')).toBe('sandbox-express');
    expect(normaliseMethodName('Pay_Later.Plus v2')).toBe('pay-later-plus-v2');
    expect(normaliseMethodName(' _Klarna. ')).toBe('klarna');
  });

  it('resolves the locale from the first Accept-Language range only', () => {
    for (const v of ['de', 'de-DE', 'de_DE', 'DE-de', 'de;q=0.8, en', 'de-DE,en;q=0.5']) expect(resolveLocale(v)).toBe('de_DE');
    for (const v of [undefined, '', 'en-US', 'fr', 'en, de', 'de-AT', '*']) expect(resolveLocale(v)).toBe('en_US');
  });

  it('parses the JSON:API body (string or object configuration)', () => {
    expect(parseConfigureBody({ data: { attributes: { configuration: '{"a":1}' } } })).toEqual({ a: 1 });
    expect(parseConfigureBody({ data: { type: 'configuration', attributes: { configuration: { a: 1 } } }, extra: true })).toEqual({ a: 1 });
    expect(parseConfigureBody({ data: { type: 'configuration', attributes: { configuration: [] } } })).toBeNull();
    expect(parseConfigureBody({ data: { type: null, attributes: { configuration: '{}' } } })).toBeNull();
  });
});

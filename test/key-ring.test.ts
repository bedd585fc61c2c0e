/**
 * A wrong ENCRYPTION_KEYS (issue 10 item 5): start-up checks that the key ring decrypts a sample of the stored tenant
 * secrets and refuses to start with one line naming the key id; at runtime a tenant whose secrets cannot be decrypted
 * answers 503 TENANT_SECRETS_UNDECRYPTABLE (configure too) and /ready names it, while other tenants keep working.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger, startRuntime } from '../src/runtime.js';
import { setTenantSecrets, startTestApp, tenantSecrets, type TestApp } from './helpers/app.js';
import { configureTenant, SECRET_KEY, WEBHOOK_SECRET } from './helpers/commands.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();
const keyA = `k1:${randomBytes(32).toString('base64')}`;
const keyB = `k1:${randomBytes(32).toString('base64')}`;

describe.skipIf(!pgOk)('key ring check', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let app: TestApp | undefined;

  beforeAll(async () => {
    temp = await createTempDatabase();
  });
  afterAll(async () => {
    await app?.close();
    await temp?.drop();
  });

  const initialize = (a: TestApp, tenant: string) =>
    a.request('/private/initialize-payment', {
      tenant,
      body: {
        orderData: { orderReference: `DE--${randomBytes(4).toString('hex')}`, grandTotal: 1000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [{ idSalesOrderItem: 1, name: 'I', sku: 'S', quantity: 1, unitPrice: 1000 }] },
        redirectSuccessUrl: 'https://shop.example/ok',
        redirectCancelUrl: 'https://shop.example/cancel',
      },
    });

  it('refuses to start with one line naming the key id when another key is configured under the same id', async () => {
    app = await startTestApp({ DATABASE_URL: temp.url, ENCRYPTION_KEYS: keyA }, { startWorkers: false });
    await configureTenant(app, 'kr-1');
    await app.close();
    app = undefined;

    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: temp.url, ENCRYPTION_KEYS: keyB, LOG_LEVEL: 'silent' });
    const err = await startRuntime(config, { log: createLogger(config), startWorkers: false }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.message).not.toContain('\n');
    expect(err!.message).toMatch(/key id "k1"/);
    expect(err!.message).toMatch(/ENCRYPTION_KEYS/);
    expect(err!.message).not.toContain(keyA.slice(3));
    expect(err!.message).not.toContain(keyB.slice(3));

    // a ring that lost the key id entirely is refused too
    const other = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: temp.url, ENCRYPTION_KEYS: `k2:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'silent' });
    await expect(startRuntime(other, { log: createLogger(other), startWorkers: false })).rejects.toThrow(/key id "k1".*add key "k1" to ENCRYPTION_KEYS/);

    // the right key starts
    app = await startTestApp({ DATABASE_URL: temp.url, ENCRYPTION_KEYS: keyA }, { startWorkers: false });
    expect((await app.request('/ready')).status).toBe(200);
  });

  it('at runtime an undecryptable tenant answers 503 TENANT_SECRETS_UNDECRYPTABLE (configure too) and /ready names it', async () => {
    const a = app!;
    await configureTenant(a, 'kr-2');
    expect((await initialize(a, 'kr-2')).status).toBe(200);
    // kr-2's secrets now carry a ciphertext of another key under the same id (as after a restore from another system)
    const forged = Object.fromEntries(Object.entries(await tenantSecrets(a, 'kr-2')).map(([f, v]) => { const [id, iv, , ct] = v.split(':'); return [f, `${id}:${iv}:${randomBytes(16).toString('base64')}:${ct}`]; }));
    await setTenantSecrets(a, 'kr-2', forged);

    const res = await initialize(a, 'kr-2');
    expect(res.status, res.text).toBe(503);
    expect(res.body.errors[0]).toMatchObject({ code: 'TENANT_SECRETS_UNDECRYPTABLE', status: 503 });
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.text).not.toMatch(/Unsupported state|authenticate data/);

    const conf = await a.request('/private/configure', {
      tenant: 'kr-2',
      body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET }) } } },
    });
    expect(conf.status, conf.text).toBe(503);
    expect(conf.body.errors[0].code).toBe('TENANT_SECRETS_UNDECRYPTABLE');
    expect(conf.text).not.toContain(SECRET_KEY);

    const ready = await a.request('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.reasons.join(' ')).toMatch(/"kr-2" \(key id "k1"\)/);

    // kr-1 is not affected
    expect((await initialize(a, 'kr-1')).status).toBe(200);
  });
});

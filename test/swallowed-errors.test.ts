/**
 * Swallowed errors (issue 10 item 7), through the public surface: a connector's `validateFormats` that throws refuses
 * the configuration (nothing stored) and logs the cause; a signature verifier that throws rejects the webhook and
 * logs the cause instead of treating it silently as a bad signature.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../src/connectors/types.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { call, configureTenant, initializeOrder, pay, SECRET_KEY, until, WEBHOOK_SECRET } from './helpers/commands.js';

let app: TestApp;
const logged: Array<{ obj: any; msg: string }> = [];
const overrides: Partial<Connector> = {};

beforeAll(async () => {
  app = await startTestApp({});
  const log = app.deps.log;
  const error = log.error.bind(log);
  log.error = ((obj: any, msg?: string) => {
    logged.push({ obj, msg: msg ?? '' });
    return error(obj, msg);
  }) as typeof log.error;
  const registry = app.deps.connectors;
  const require = registry.require.bind(registry);
  registry.require = (id) => Object.assign(Object.create(require(id)), overrides) as Connector;
});
afterAll(async () => {
  await app?.close();
});

describe('errors are not swallowed', () => {
  it('configure fails closed when validateFormats throws: nothing stored, the cause logged', async () => {
    overrides.validateFormats = () => {
      throw new Error('format table missing');
    };
    try {
      const r = await call(app, '/private/configure', {
        headers: { 'x-tenant-identifier': 'sw-1' },
        body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET }) } } },
      });
      expect(r.status).toBeGreaterThanOrEqual(500);
      expect(r.text).not.toContain(SECRET_KEY);
      const stored = await app.deps.db.query(`SELECT 1 FROM tenants WHERE tenant_identifier = 'sw-1'`);
      expect(stored.rows).toHaveLength(0);
      expect(logged.some((l) => /validateFormats failed/.test(l.msg) && /format table missing/.test(String(l.obj.err)))).toBe(true);
    } finally {
      delete overrides.validateFormats;
    }
  });

  it('a webhook whose signature verification throws is rejected and the cause logged', async () => {
    await configureTenant(app, 'sw-2');
    overrides.verifyWebhook = () => {
      throw new Error('verifier exploded');
    };
    try {
      const o = await initializeOrder(app, 'sw-2', { 1: 1000 });
      await pay(app, o.transactionId); // the sandbox PSP sends its webhook to the app
      const seen = await until(async () => logged.find((l) => /verification threw/.test(l.msg)), (l) => l !== undefined, 20_000);
      expect(seen?.obj.err).toMatch(/verifier exploded/);
      const p = await app.deps.db.query<{ status: string }>('SELECT status FROM payments WHERE transaction_id = $1', [o.transactionId]);
      expect(p.rows[0]!.status).not.toBe('authorized');
    } finally {
      delete overrides.verifyWebhook;
    }
  });
});

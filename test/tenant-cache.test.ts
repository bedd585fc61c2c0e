/**
 * Tenant rows are read once per instance and dropped when any instance changes them (issue 12, src/store/tenant-cache.ts):
 * requests after the first read no tenants row; a configure or disconnect on one instance is seen by the next request
 * on the same instance at once and on another instance on the same PostgreSQL database after its notification; while
 * the change listener is down nothing is served from memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCache } from '../src/store/tenant-cache.js';
import { startTestApp, statementsOf, type TestApp } from './helpers/app.js';
import { configureTenant, initialize } from './helpers/hosted-flow.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const tenantReads = (app: TestApp, fn: () => Promise<unknown>) => async (): Promise<number> =>
  (await statementsOf(app, fn)).filter((sql) => /FROM tenants\b/.test(sql)).length;

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

describe('tenant cache on one instance (embedded database)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await configureTenant(app, 'tc-1');
  });
  afterAll(() => app?.close());

  it('an initialize after the first reads no tenants row', async () => {
    await initialize(app, 'tc-1');
    expect(await tenantReads(app, () => initialize(app, 'tc-1'))()).toBe(0);
  });

  it('a configure is seen by the very next request (captureMode changes what initialize stores)', async () => {
    await initialize(app, 'tc-1'); // cached
    await configureTenant(app, 'tc-1', { captureMode: 'automatic' });
    const { paymentId } = await initialize(app, 'tc-1');
    const row = (await app.deps.db.query<{ capture_mode: string }>('SELECT capture_mode FROM payments WHERE id = $1', [paymentId])).rows[0]!;
    expect(row.capture_mode).toBe('automatic');
  });

  it('a disconnect answers 403 to the next request of that tenant', async () => {
    await configureTenant(app, 'tc-2');
    expect((await app.request('/private/initialize-payment', { tenant: 'tc-2', body: {} })).status).toBe(400); // cached, active
    const d = await app.request('/private/disconnect', { tenant: 'tc-2', method: 'POST', body: {} });
    expect(d.status).toBe(204);
    expect((await app.request('/private/initialize-payment', { tenant: 'tc-2', body: {} })).status).toBe(403);
  });

  it('a row changed by plain SQL (another writer) is dropped through its notification', async () => {
    await configureTenant(app, 'tc-3');
    await initialize(app, 'tc-3');
    await app.deps.db.query(`UPDATE tenants SET status = 'DISCONNECTED' WHERE tenant_identifier = 'tc-3'`);
    expect(await waitFor(async () => (await app.request('/private/initialize-payment', { tenant: 'tc-3', body: {} })).status === 403)).toBe(true);
  });

  it('rows handed out cannot be changed in place', async () => {
    const row = await app.deps.tenants.get('tc-1');
    const again = await app.deps.tenants.get('tc-1');
    expect(again).toBe(row);
    expect(() => {
      (row as { status: string }).status = 'NEW';
    }).toThrow();
  });
});

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('tenant cache across instances (PostgreSQL)', () => {
  let a: TestApp;
  let b: TestApp;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const tmp = await createTempDatabase();
    drop = tmp.drop;
    a = await startTestApp({ DATABASE_URL: tmp.url });
    b = await startTestApp({ DATABASE_URL: tmp.url, ENCRYPTION_KEYS: a.deps.config.encryptionKeys!.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',') });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
  });

  it('a configure on one instance is seen by the other', async () => {
    await configureTenant(a, 'tcx-1');
    await initialize(b, 'tcx-1'); // b caches the tenant (manual capture)
    expect(await tenantReads(b, () => initialize(b, 'tcx-1'))()).toBe(0);
    await configureTenant(a, 'tcx-1', { captureMode: 'automatic' });
    const captureModeOnB = async (): Promise<string> => {
      const { paymentId } = await initialize(b, 'tcx-1');
      return (await b.deps.db.query<{ capture_mode: string }>('SELECT capture_mode FROM payments WHERE id = $1', [paymentId])).rows[0]!.capture_mode;
    };
    expect(await waitFor(async () => (await captureModeOnB()) === 'automatic')).toBe(true);
  });

  it('a disconnect on one instance is seen by the other', async () => {
    await configureTenant(a, 'tcx-3');
    expect((await b.request('/private/initialize-payment', { tenant: 'tcx-3', body: {} })).status).toBe(400); // b caches it
    expect((await a.request('/private/disconnect', { tenant: 'tcx-3', method: 'POST', body: {} })).status).toBe(204);
    expect(await waitFor(async () => (await b.request('/private/initialize-payment', { tenant: 'tcx-3', body: {} })).status === 403)).toBe(true);
  });

  it('while the listener is down nothing is cached; when it is back, caching resumes', async () => {
    let live: ((v: boolean) => void) | undefined;
    const db = { query: b.deps.db.query.bind(b.deps.db), listen: async (_c: string, _n: (p: string) => void, onLive: (v: boolean) => void) => ((live = onLive), onLive(true), async () => undefined) };
    const c2 = new TenantCache(db);
    await c2.start();
    await configureTenant(a, 'tcx-2');
    await c2.get('tcx-2');
    expect(c2.counts.misses).toBe(1);
    await c2.get('tcx-2');
    expect(c2.counts.hits).toBe(1);
    live!(false);
    await c2.get('tcx-2');
    await c2.get('tcx-2');
    expect(c2.counts).toEqual({ hits: 1, misses: 3 });
    live!(true);
    await c2.get('tcx-2');
    await c2.get('tcx-2');
    expect(c2.counts).toEqual({ hits: 2, misses: 4 });
    await c2.stop();
  });

  it('a cached row is read again after its maximum age (notifications lost without a dropped connection)', async () => {
    const db = { query: b.deps.db.query.bind(b.deps.db), listen: async (_c: string, _n: (p: string) => void, onLive: (v: boolean) => void) => (onLive(true), async () => undefined) };
    const c3 = new TenantCache(db, 10, 200);
    await c3.start();
    await configureTenant(a, 'tcx-4');
    const before = (await c3.get('tcx-4'))?.status;
    expect(before).not.toBe('DISCONNECTED');
    await b.deps.db.query(`UPDATE tenants SET status = 'DISCONNECTED' WHERE tenant_identifier = 'tcx-4'`); // no notification reaches c3
    expect((await c3.get('tcx-4'))?.status).toBe(before);
    await new Promise((r) => setTimeout(r, 250));
    expect((await c3.get('tcx-4'))?.status).toBe('DISCONNECTED');
    await c3.stop();
  });
});

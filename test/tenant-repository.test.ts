/**
 * The tenant repository (src/store/tenants.ts) on both drivers: PGlite and PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeyRing } from '../src/config.js';
import { migrate, openDb, type Db } from '../src/store/db.js';
import { SecretBox } from '../src/store/secret-box.js';
import {
  decryptedSettings,
  encryptSecrets,
  loadTenant,
  maskedConfiguration,
  rotateTenantSecrets,
  saveTenant,
  TenantRepository,
  webhookSecrets,
  type TenantRecord,
} from '../src/store/tenants.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTempDatabase, openTempPostgresDb, postgresAvailable } from './helpers/services.js';

const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;

function sampleRow(box: SecretBox, id: string, previousUntil: Date | null = null): TenantRecord {
  return {
    tenant_identifier: id,
    status: 'NEW',
    is_active: true,
    revision: 1,
    config: { captureMode: 'manual', paymentMethods: ['credit-card'], isLive: false },
    secrets: encryptSecrets(box, { secretKey: `sk_sandbox_${id.replace(/[^a-z0-9]/gi, '')}xx`, webhookSecret: 'whsec_current000000000000' }),
    previous_secrets: previousUntil ? { webhookSecret: { value: box.encrypt('whsec_previous00000000000'), until: previousUntil.toISOString() } } : {},
    locale: 'en_US',
    announced_methods: [{ name: 'credit-card', payload: { name: 'Credit Card', providerName: 'Sandbox' } }],
    connector: 'sandbox',
  };
}

function repositorySuite(label: string, open: () => Promise<{ db: Db; cleanup: () => Promise<void> }>, enabled: () => boolean): void {
  describe(`tenant repository on ${label}`, () => {
    let db: Db;
    let cleanup: () => Promise<void> = async () => {};
    const box = new SecretBox(parseKeyRing(K1));

    beforeAll(async () => {
      await pgReady;
      if (!enabled()) return;
      const o = await open();
      db = o.db;
      cleanup = o.cleanup;
      await migrate(db);
    });
    afterAll(async () => {
      await cleanup();
    });

    it('saves and loads a row; secrets are stored encrypted only', async (ctx) => {
      if (!enabled()) return ctx.skip();
      const row = sampleRow(box, 'repo-a');
      await saveTenant(db, row);
      expect(await loadTenant(db, 'repo-a')).toEqual(row);
      expect(await loadTenant(db, 'repo-missing')).toBeNull();
      const raw = (await db.query<Record<string, unknown>>('SELECT * FROM tenants WHERE tenant_identifier = $1', ['repo-a'])).rows[0]!;
      expect(JSON.stringify(raw)).not.toContain('sk_sandbox_repoaxx');
      expect(JSON.stringify(raw)).not.toContain('whsec_current');
      expect(decryptedSettings(box, row)).toEqual({ captureMode: 'manual', paymentMethods: ['credit-card'], isLive: false, secretKey: 'sk_sandbox_repoaxx', webhookSecret: 'whsec_current000000000000' });
      expect(maskedConfiguration(row)).toEqual({ captureMode: 'manual', paymentMethods: ['credit-card'], isLive: false, secretKey: '********', webhookSecret: '********', isActive: true });
    });

    it('updates in place inside a transaction with the row locked; tenants stay separate', async (ctx) => {
      if (!enabled()) return ctx.skip();
      await saveTenant(db, sampleRow(box, 'repo-b'));
      await db.tx(async (tx) => {
        const row = (await loadTenant(tx, 'repo-a', { forUpdate: true }))!;
        await saveTenant(tx, { ...row, status: 'DISCONNECTED', is_active: false, revision: row.revision + 1, announced_methods: [] });
      });
      const a = (await loadTenant(db, 'repo-a'))!;
      expect([a.status, a.is_active, a.revision, a.announced_methods]).toEqual(['DISCONNECTED', false, 2, []]);
      const b = (await loadTenant(db, 'repo-b'))!;
      expect([b.status, b.revision]).toEqual(['NEW', 1]);
      expect(decryptedSettings(box, b).secretKey).toBe('sk_sandbox_repobxx');
    });

    it('webhookSecrets: current plus the previous one only while it is valid', async (ctx) => {
      if (!enabled()) return ctx.skip();
      const until = new Date(Date.now() + 3600_000);
      await saveTenant(db, sampleRow(box, 'repo-c', until));
      const row = (await loadTenant(db, 'repo-c'))!;
      expect(webhookSecrets(box, row, new Date())).toEqual(['whsec_current000000000000', 'whsec_previous00000000000']);
      expect(webhookSecrets(box, row, new Date(until.getTime() + 1))).toEqual(['whsec_current000000000000']);
      const repo = new TenantRepository(box);
      expect(repo.webhookSecrets(row, new Date())).toHaveLength(2);
      expect(repo.decryptedSettings(row).secretKey).toBe('sk_sandbox_repocxx');
      expect(webhookSecrets(box, { secrets: {}, previous_secrets: {} })).toEqual([]);
    });

    it('rotateTenantSecrets re-encrypts every secret under the first key', async (ctx) => {
      if (!enabled()) return ctx.skip();
      const ring = new SecretBox(parseKeyRing(`${K2},${K1}`));
      const report = await rotateTenantSecrets(db, ring);
      expect(report).toEqual({ tenants: 3, reencrypted: 7, alreadyCurrent: 0 });
      const rows = (await db.query<TenantRecord>('SELECT * FROM tenants')).rows;
      for (const r of rows) for (const s of Object.values(r.secrets)) expect(s.startsWith('k2:')).toBe(true);
      const onlyK2 = new SecretBox(parseKeyRing(K2));
      const c = (await loadTenant(db, 'repo-c'))!;
      expect(webhookSecrets(onlyK2, c)).toEqual(['whsec_current000000000000', 'whsec_previous00000000000']);
      expect(await rotateTenantSecrets(db, ring)).toEqual({ tenants: 3, reencrypted: 0, alreadyCurrent: 7 });
    });
  });
}

repositorySuite(
  'PGlite',
  async () => {
    const db = await openDb({ kind: 'pglite-memory' });
    return { db, cleanup: () => db.close() };
  },
  () => true,
);

let pgOk = false;
const pgReady = postgresAvailable().then((ok) => (pgOk = ok));

repositorySuite(
  'PostgreSQL',
  openTempPostgresDb,
  () => pgOk,
);

describe('configure and disconnect on PostgreSQL (DATABASE_URL)', () => {
  let app: TestApp | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    await pgReady;
    if (!pgOk) return;
    const temp = await createTempDatabase();
    drop = temp.drop;
    app = await startTestApp({ DATABASE_URL: temp.url }, { startWorkers: false });
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('stores the configuration encrypted and disconnects', async (ctx) => {
    if (!app) return ctx.skip();
    const body = { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: 'sk_sandbox_postgres01', webhookSecret: 'whsec_postgres0000000000' }) } } };
    expect((await app.request('/private/configure', { body, tenant: 'pg-1' })).status).toBe(200);
    const row = (await loadTenant(app.deps.db, 'pg-1'))!;
    expect(row.revision).toBe(1);
    expect(decryptedSettings(app.deps.secrets, row).secretKey).toBe('sk_sandbox_postgres01');
    expect(JSON.stringify(row)).not.toContain('sk_sandbox_postgres01');
    const msgs = (await app.deps.db.query<{ message_name: string }>('SELECT message_name FROM outbox WHERE tenant_identifier = $1 ORDER BY seq', ['pg-1'])).rows;
    expect(msgs.map((m) => m.message_name)).toEqual(['AppConfigUpdated', 'AddPaymentMethod', 'ReadyForMerchantAppOnboarding']);
    expect((await app.request('/private/disconnect', { method: 'POST', tenant: 'pg-1' })).status).toBe(204);
    expect((await loadTenant(app.deps.db, 'pg-1'))!.status).toBe('DISCONNECTED');
  });
});

describe('concurrent first configures on PostgreSQL', () => {
  let app: TestApp | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    await pgReady;
    if (!pgOk) return;
    const temp = await createTempDatabase();
    drop = temp.drop;
    app = await startTestApp({ DATABASE_URL: temp.url }, { startWorkers: false });
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('are serialised: revisions 1, 2 and 3, one AppConfigUpdated each, one AddPaymentMethod', async (ctx) => {
    if (!app) return ctx.skip();
    const body = { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: 'sk_sandbox_concurrent1', webhookSecret: 'whsec_concurrent00000000' }) } } };
    const results = await Promise.all([1, 2, 3].map(() => app!.request('/private/configure', { body, tenant: 'pg-race' })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await loadTenant(app.deps.db, 'pg-race'))!.revision).toBe(3);
    const msgs = (await app.deps.db.query<{ message_name: string }>("SELECT message_name FROM outbox WHERE tenant_identifier = 'pg-race' AND message_name = 'AppConfigUpdated'")).rows;
    expect(msgs).toHaveLength(3);
    const adds = (await app.deps.db.query("SELECT 1 FROM outbox WHERE tenant_identifier = 'pg-race' AND message_name = 'AddPaymentMethod'")).rows;
    expect(adds).toHaveLength(1);
  });
});

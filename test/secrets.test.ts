/**
 * Secrets at rest (README ENCRYPTION_KEYS): AES-256-GCM with the key id in each ciphertext, and key rotation
 * with `cli rotate-keys` across a restart with a new key ring.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { parseKeyRing } from '../src/config.js';
import { migrate, openDb } from '../src/store/db.js';
import { SecretBox } from '../src/store/secret-box.js';
import { decryptedSettings, loadTenant, webhookSecrets, type TenantRecord } from '../src/store/tenants.js';
import { startTestApp } from './helpers/app.js';

const key = (id: string): string => `${id}:${randomBytes(32).toString('base64')}`;
const K1 = key('k1');
const K2 = key('k2');
const cfgBody = (configuration: Record<string, unknown>): unknown => ({ data: { type: 'configuration', attributes: { configuration: JSON.stringify(configuration) } } });

describe('SecretBox', () => {
  const box = new SecretBox(parseKeyRing(K1));
  it('round-trips, names the key id, uses a fresh IV each time', () => {
    const a = box.encrypt('sk_sandbox_secret123');
    const b = box.encrypt('sk_sandbox_secret123');
    expect(a).not.toBe(b);
    expect(a.startsWith('k1:')).toBe(true);
    expect(a).not.toContain('sk_sandbox_secret123');
    expect(box.decrypt(a)).toBe('sk_sandbox_secret123');
  });

  it('refuses tampered ciphertexts, a relabelled key id and unknown keys', () => {
    const sealed = box.encrypt('whsec_0123456789abcdef');
    const [id, iv, tag, ct] = sealed.split(':');
    const flipped = Buffer.from(ct!, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    expect(() => box.decrypt([id, iv, tag, flipped.toString('base64')].join(':'))).toThrow();
    const other = new SecretBox([{ id: 'k9', key: parseKeyRing(K1)[0]!.key }]);
    expect(() => other.decrypt(['k9', iv, tag, ct].join(':'))).toThrow(); // key id is authenticated (AAD)
    expect(() => new SecretBox(parseKeyRing(K2)).decrypt(sealed)).toThrow(/unknown key id/);
  });
});

describe('webhook secrets of a tenant row', () => {
  it('are decrypted once per row object (every webhook reads them), again for a changed row; an expired previous secret is left out', () => {
    const box = new SecretBox(parseKeyRing(K1));
    let decrypts = 0;
    const decryptFor = box.decryptFor.bind(box);
    box.decryptFor = (t, sealed) => {
      decrypts++;
      return decryptFor(t, sealed);
    };
    const until = Date.now() + 60_000;
    const row = { tenant_identifier: 'ws-1', secrets: { webhookSecret: box.encrypt('whsec_current') }, previous_secrets: { webhookSecret: { value: box.encrypt('whsec_previous'), until: new Date(until).toISOString() } } };
    for (let i = 0; i < 3; i++) expect(webhookSecrets(box, row)).toEqual(['whsec_current', 'whsec_previous']);
    expect(decrypts).toBe(2);
    expect(webhookSecrets(box, row, new Date(until + 1))).toEqual(['whsec_current']);
    const changed = { ...row, secrets: { webhookSecret: box.encrypt('whsec_next') } };
    expect(webhookSecrets(box, changed)).toEqual(['whsec_next', 'whsec_previous']);
    expect(decrypts).toBe(4);
  });
});

describe('key rotation across a restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'oap-rotate-'));
  const envFor = (keys: string): Record<string, string> => ({ DATABASE_URL: '', DATA_DIR: dataDir, ENCRYPTION_KEYS: keys });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const SK = 'sk_sandbox_rotation001';
  const WH1 = 'whsec_rotation0000000001';
  const WH2 = 'whsec_rotation0000000002';

  it('configure under k1; restart with k2,k1: old rows still decrypt, new writes use k2; rotate-keys moves everything to k2', async () => {
    // 1. first life: key ring k1
    const first = await startTestApp(envFor(K1), { startWorkers: false });
    try {
      expect((await first.request('/private/configure', { body: cfgBody({ secretKey: SK, webhookSecret: WH1 }), tenant: 'rot-1' })).status).toBe(200);
      // a second webhook secret: the first one becomes a previous secret (also encrypted)
      expect((await first.request('/private/configure', { body: cfgBody({ webhookSecret: WH2 }), tenant: 'rot-1' })).status).toBe(200);
    } finally {
      await first.close();
    }

    // 2. restart with the new key first: old k1 rows decrypt before rotation
    const second = await startTestApp(envFor(`${K2},${K1}`), { startWorkers: false });
    try {
      const row = (await loadTenant(second.deps.db, 'rot-1'))!;
      expect(Object.values(row.secrets).every((s) => s.startsWith('k1:'))).toBe(true);
      expect(row.previous_secrets.webhookSecret!.value.startsWith('k1:')).toBe(true);
      expect(decryptedSettings(second.deps.secrets, row)).toMatchObject({ secretKey: SK, webhookSecret: WH2 });
      expect(webhookSecrets(second.deps.secrets, row)).toEqual([WH2, WH1]);
      // re-configure with masked secrets still works (decrypts under k1)
      expect((await second.request('/private/configure', { body: cfgBody({ secretKey: '********', captureMode: 'automatic' }), tenant: 'rot-1' })).status).toBe(200);
      // a new tenant is written under k2
      expect((await second.request('/private/configure', { body: cfgBody({ secretKey: 'sk_sandbox_rotation002', webhookSecret: WH1 }), tenant: 'rot-2' })).status).toBe(200);
      const row2 = (await loadTenant(second.deps.db, 'rot-2'))!;
      expect(Object.values(row2.secrets).every((s) => s.startsWith('k2:'))).toBe(true);
    } finally {
      await second.close();
    }

    // 3. rotate-keys with the ring k2,k1
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
    const env = { ...envFor(`${K2},${K1}`), LOG_LEVEL: 'silent' };
    expect(await runCli(['rotate-keys'], env, io)).toBe(0);
    expect(lines).toEqual(['rotate-keys: 2 tenant(s), 3 secret(s) re-encrypted under key "k2", 2 already under it.']);

    // 4. every stored secret now carries k2 and decrypts with k2 alone
    const db = await openDb({ kind: 'pglite', dataDir });
    try {
      await migrate(db);
      const onlyK2 = new SecretBox(parseKeyRing(K2));
      const rows = (await db.query<TenantRecord>('SELECT * FROM tenants ORDER BY tenant_identifier')).rows;
      const sealed = rows.flatMap((r) => [...Object.values(r.secrets), ...Object.values(r.previous_secrets).map((p) => p.value)]);
      expect(sealed).toHaveLength(5);
      expect(sealed.every((s) => s.startsWith('k2:'))).toBe(true);
      expect(decryptedSettings(onlyK2, rows[0]!)).toMatchObject({ secretKey: SK, webhookSecret: WH2, captureMode: 'automatic' });
      expect(webhookSecrets(onlyK2, rows[0]!)).toEqual([WH2, WH1]);
      expect(decryptedSettings(onlyK2, rows[1]!)).toMatchObject({ secretKey: 'sk_sandbox_rotation002', webhookSecret: WH1 });
      const dump = JSON.stringify(rows);
      for (const s of [SK, WH1, WH2, 'sk_sandbox_rotation002']) expect(dump).not.toContain(s);
    } finally {
      await db.close();
    }

    // 5. a second run has nothing left to do
    lines.length = 0;
    expect(await runCli(['rotate-keys'], { ...envFor(K2), LOG_LEVEL: 'silent' }, io)).toBe(0);
    expect(lines).toEqual(['rotate-keys: 2 tenant(s), 0 secret(s) re-encrypted under key "k2", 5 already under it.']);
  });

  it('rotate-keys fails with one line when a stored key is missing from the ring; unknown commands exit 2', async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
    expect(await runCli(['rotate-keys'], { ...envFor(key('k3')), LOG_LEVEL: 'silent' }, io)).toBe(1);
    expect(lines).toEqual(['ERR rotate-keys failed: cannot decrypt: unknown key id "k2"']);
    lines.length = 0;
    expect(await runCli(['rotate'], {}, io)).toBe(2);
    expect(lines[0]).toBe('ERR Unknown command "rotate".');
    lines.length = 0;
    expect(await runCli(['rotate-keys'], { ENCRYPTION_KEYS: 'short:abc' }, io)).toBe(2);
    expect(lines[0]).toMatch(/^ERR Configuration error: ENCRYPTION_KEYS/);
  });
});

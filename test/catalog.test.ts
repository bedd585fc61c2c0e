/**
 * Catalog artifacts (catalog.md): the shipped files, the endpoints (ETag/304, CORS, placeholders, 404) and
 * the consistency rules of catalog.md 7 (an invalid artifact fails with one line naming file and rule).
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogError, formTranslationKeys, loadCatalog } from '../src/app/catalog.js';
import { appConfigDir, projectRoot } from '../src/paths.js';
import { startTestApp, type TestApp } from './helpers/app.js';

const readJson = (rel: string): any => JSON.parse(readFileSync(join(appConfigDir, rel), 'utf8'));
const SPEC = join(projectRoot, '..', 'shared', 'spec', 'catalog.md');

/** The JSON code block that follows `marker` in catalog.md. */
function specBlock(marker: string): unknown {
  const md = readFileSync(SPEC, 'utf8');
  const at = md.indexOf(marker);
  expect(at).toBeGreaterThan(-1);
  const start = md.indexOf('```json', at) + '```json'.length;
  return JSON.parse(md.slice(start, md.indexOf('```', start)));
}

describe('shipped artifacts', () => {
  it.skipIf(!existsSync(SPEC))('en_US manifest and the sandbox form are exactly those of catalog.md 3 and 4.3', () => {
    expect(readJson('manifest/en_US.json')).toEqual(specBlock('Shipped `en_US.json`'));
    expect(readJson('connectors/sandbox/configuration.json')).toEqual(specBlock('`config/app/connectors/sandbox/configuration.json`'));
  });

  it.skipIf(!existsSync(SPEC))('sandbox translations are the table of catalog.md 5', () => {
    const md = readFileSync(SPEC, 'utf8');
    const rows = [...md.matchAll(/^\| `(sandbox_[A-Za-z_]+)` \| `(.*)` \| `(.*)` \|$/gm)];
    expect(rows.length).toBe(18);
    const tr = readJson('connectors/sandbox/translation.json');
    expect(Object.keys(tr).sort()).toEqual(rows.map((r) => r[1]).sort());
    for (const [, key, en, de] of rows) expect(tr[key!]).toEqual({ en_US: en, de_DE: de });
  });

  it('de_DE has German texts and otherwise the same values', () => {
    const en = readJson('manifest/en_US.json');
    const de = readJson('manifest/de_DE.json');
    expect(de.descriptionShort).not.toBe(en.descriptionShort);
    expect(de.dialogs.onDisconnect.buttons.ok).toBe('Trennen');
    for (const k of ['url', 'isAvailable', 'businessModels', 'categories', 'assets', 'labels', 'dependencies']) expect(de[k]).toEqual(en[k]);
  });

  it('api.json is exactly the two paths', () => {
    expect(readJson('api.json')).toEqual({ configuration: '/private/configure', disconnection: '/private/disconnect' });
  });

  it('the shipped catalog passes every consistency rule and the form keys are translated', () => {
    const c = loadCatalog('sandbox');
    expect(c.locales).toEqual(['de_DE', 'en_US']);
    expect(c.form.fields.map((f) => f.id)).toEqual(['secretKey', 'webhookSecret', 'paymentMethods', 'captureMode', 'isLive']);
    expect(formTranslationKeys(c.configuration).length).toBe(18);
  });
});

describe('catalog endpoints', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({}, { startWorkers: false });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('GET /app/manifest lists the locales', async () => {
    const r = await app.request('/app/manifest');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ locales: ['de_DE', 'en_US'] });
  });

  it('GET /app/manifest/en_US: placeholders replaced, ETag = SHA-256 of the body, cache and CORS headers, no auth', async () => {
    const r = await app.request('/app/manifest/en_US');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('public, max-age=300');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('etag')).toBe(`"${createHash('sha256').update(r.text).digest('hex')}"`);
    const base = app.deps.config.appBaseUrl;
    expect(r.body.url).toBe(base);
    expect(r.body.resources.map((x: any) => x.url)).toEqual([`${base}/openapi.json`, `${base}/asyncapi.json`]);
    expect(r.text).not.toContain('{{APP_BASE_URL}}');
    const file = readJson('manifest/en_US.json');
    expect({ ...r.body, url: file.url, resources: file.resources }).toEqual(file);
  });

  it('If-None-Match with the ETag answers 304 without a body', async () => {
    const first = await app.request('/app/manifest/de_DE');
    const etag = first.headers.get('etag')!;
    expect(first.body.descriptionShort).toMatch(/Zahlungs-App/);
    const r = await app.request('/app/manifest/de_DE', { headers: { 'if-none-match': `"other", ${etag}` } });
    expect(r.status).toBe(304);
    expect(r.text).toBe('');
    expect(r.headers.get('etag')).toBe(etag);
    const stale = await app.request('/app/manifest/de_DE', { headers: { 'if-none-match': '"stale"' } });
    expect(stale.status).toBe(200);
  });

  it('unknown or malformed locale → 404 NOT_FOUND (no fallback)', async () => {
    for (const loc of ['fr_FR', 'en', 'EN_us', 'de-DE']) {
      const r = await app.request(`/app/manifest/${loc}`);
      expect(r.status).toBe(404);
      expect(r.body.errors[0]).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    }
  });

  it('configuration, translation and api are served as shipped', async () => {
    const cfg = await app.request('/app/configuration');
    expect(cfg.status).toBe(200);
    expect(cfg.body).toEqual(readJson('connectors/sandbox/configuration.json'));
    const tr = await app.request('/app/translation');
    expect(tr.body).toEqual({ ...readJson('translation.json'), ...readJson('connectors/sandbox/translation.json') });
    expect(tr.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    const api = await app.request('/app/api');
    expect(api.body).toEqual({ configuration: '/private/configure', disconnection: '/private/disconnect' });
  });

  it('assets are served with their type; unknown assets and path tricks → 404', async () => {
    const r = await app.request('/app/assets/icon.svg');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(r.text).toBe(readFileSync(join(appConfigDir, 'assets', 'icon.svg'), 'utf8'));
    expect(r.headers.get('etag')).toBe(`"${createHash('sha256').update(readFileSync(join(appConfigDir, 'assets', 'icon.svg'))).digest('hex')}"`);
    for (const p of ['/app/assets/missing.svg', '/app/assets/..%2Fapi.json', '/app/assets/.hidden.svg']) {
      const x = await app.request(p);
      expect(x.status).toBe(404);
      expect(x.body.errors[0].code).toBe('NOT_FOUND');
    }
  });
});

describe('consistency rules (catalog.md 7)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oap-catalog-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Copies the shipped catalog, applies `mutate`, and returns the one-line error of loadCatalog. */
  function brokenBy(name: string, mutate: (d: string) => void): string {
    const d = join(dir, name);
    cpSync(appConfigDir, d, { recursive: true });
    mutate(d);
    try {
      loadCatalog('sandbox', { dir: d });
    } catch (err) {
      expect(err).toBeInstanceOf(CatalogError);
      const msg = (err as Error).message;
      expect(msg).not.toContain('\n');
      return msg;
    }
    throw new Error('expected loadCatalog to fail');
  }
  const edit = (d: string, rel: string, fn: (j: any) => void): void => {
    const j = JSON.parse(readFileSync(join(d, rel), 'utf8'));
    fn(j);
    writeFileSync(join(d, rel), JSON.stringify(j));
  };

  it('rule 1: every locale has a manifest with the same keys and non-text values', () => {
    expect(brokenBy('r1a', (d) => rmSync(join(d, 'manifest', 'de_DE.json')))).toMatch(/manifest\/de_DE\.json: rule 7\.1.*de_DE has no manifest/);
    expect(brokenBy('r1b', (d) => edit(d, 'manifest/de_DE.json', (j) => delete j.labels))).toMatch(/manifest\/de_DE\.json: rule 7\.1.*"labels"/);
    expect(brokenBy('r1c', (d) => edit(d, 'manifest/de_DE.json', (j) => (j.isAvailable = false)))).toMatch(/de_DE\.json: rule 7\.1.*isAvailable/);
  });

  it('rule 2: manifest values within the allowed sets, no HTML in description, assets exist', () => {
    expect(brokenBy('r2a', (d) => edit(d, 'manifest/en_US.json', (j) => (j.businessModels = ['B2X'])))).toMatch(/en_US\.json: rule 7\.2.*businessModels/);
    expect(brokenBy('r2b', (d) => edit(d, 'manifest/en_US.json', (j) => (j.description = 'Has <b>HTML</b>')))).toMatch(/en_US\.json: rule 7\.2.*description/);
    expect(brokenBy('r2c', (d) => rmSync(join(d, 'assets', 'icon.svg')))).toMatch(/rule 7\.2.*icon\.svg.*does not resolve/);
    expect(brokenBy('r2d', (d) => edit(d, 'manifest/en_US.json', (j) => (j.dialogs.onSave.type = 'alert')))).toMatch(/rule 7\.2.*onSave/);
  });

  it('rule 3: form ids exist, widgets known, radio/select have options, connector keys match', () => {
    expect(brokenBy('r3a', (d) => edit(d, 'connectors/sandbox/configuration.json', (j) => j.required.push('apiKey')))).toMatch(
      /connectors\/sandbox\/configuration\.json: rule 7\.3.*"apiKey"/,
    );
    expect(brokenBy('r3b', (d) => edit(d, 'connectors/sandbox/configuration.json', (j) => (j.properties.isLive.widget = { id: 'toggle' })))).toMatch(/rule 7\.3.*toggle/);
    expect(brokenBy('r3c', (d) => edit(d, 'connectors/sandbox/configuration.json', (j) => delete j.properties.captureMode.oneOf))).toMatch(/rule 7\.3.*captureMode.*oneOf/);
    const d = join(dir, 'r3d');
    cpSync(appConfigDir, d, { recursive: true });
    expect(() => loadCatalog('sandbox', { dir: d, configurationKeys: ['secretKey', 'webhookSecret', 'paymentMethods', 'captureMode', 'isLive'] })).not.toThrow();
    expect(() => loadCatalog('sandbox', { dir: d, configurationKeys: ['secretKey', 'webhookSecret', 'paymentMethods', 'captureMode'] })).toThrow(/rule 7\.3.*"isLive"/);
  });

  it('rule 4: every form translation key has a text for every locale; no key in both files', () => {
    expect(brokenBy('r4a', (d) => edit(d, 'connectors/sandbox/translation.json', (j) => (j.sandbox_isLive_title.de_DE = '')))).toMatch(
      /connectors\/sandbox\/translation\.json: rule 7\.4.*sandbox_isLive_title.*de_DE/,
    );
    expect(brokenBy('r4b', (d) => writeFileSync(join(d, 'translation.json'), JSON.stringify({ sandbox_isLive_title: { en_US: 'x', de_DE: 'y' } })))).toMatch(/rule 7\.4.*also in translation\.json/);
  });

  it('rule 5: api.json has exactly the two paths', () => {
    expect(brokenBy('r5', (d) => edit(d, 'api.json', (j) => (j.configuration = '/configure')))).toMatch(/api\.json: rule 7\.5/);
  });

  it('unparseable JSON names the file', () => {
    expect(brokenBy('json', (d) => writeFileSync(join(d, 'api.json'), '{'))).toMatch(/api\.json: not valid JSON/);
  });
});

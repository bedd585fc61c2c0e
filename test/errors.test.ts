import type { FastifyInstance } from 'fastify';
import { TenantCache } from '../src/store/tenant-cache.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../src/app/context.js';
import { loadConfig } from '../src/config.js';
import { ConnectorRegistry } from '../src/connectors/registry.js';
import { buildServer } from '../src/http/server.js';
import { migrate, openDb } from '../src/store/db.js';
import { SecretBox } from '../src/store/secret-box.js';
import { TEST_KEYS } from './helpers/app.js';

/** The full server plus two test-only routes, driven through inject (no socket). */
describe('error handling of the HTTP layer (sync-api.md 3)', () => {
  let app: FastifyInstance;
  let deps: AppDeps;
  const logged: string[] = [];

  beforeAll(async () => {
    const config = loadConfig({ PORT: '0', DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS });
    const db = await openDb(config.database);
    await migrate(db);
    const log = pino({ level: 'error' }, { write: (s: string) => void logged.push(s) });
    const connectors = new ConnectorRegistry({ ...config, sandboxPspUrl: 'http://127.0.0.1:1/sandbox' }, { config: { ...config, sandboxPspUrl: 'http://127.0.0.1:1/sandbox' }, listenUrl: () => 'http://127.0.0.1:1', log });
    deps = { config, db, log, secrets: new SecretBox(config.encryptionKeys!), connectors, tenants: new TenantCache(db) };
    app = await buildServer(deps);
    app.post(
      '/test/echo',
      { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, amount: { type: 'integer' } } } } },
      async (req) => ({ got: req.body }),
    );
    app.get('/test/boom', async () => {
      const err = new Error('secret internals: password=hunter2');
      throw err;
    });
    app.get('/test/boom-sync', () => {
      throw new TypeError('Cannot read properties of undefined (reading "x")');
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await deps.db.close();
  });

  const inject = async (opts: { method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: unknown; headers?: Record<string, string> }) => {
    const r = await app.inject(opts as never);
    let body: any;
    try {
      body = r.json();
    } catch {
      body = undefined;
    }
    return { status: r.statusCode, headers: r.headers, body, text: r.body };
  };

  it('accepts a valid JSON body (control)', async () => {
    const r = await inject({ method: 'POST', url: '/test/echo', payload: { name: 'a' } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ got: { name: 'a' } });
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over 1 MiB', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(1024 * 1024) });
    const r = await inject({ method: 'POST', url: '/test/echo', payload: big, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(413);
    expect(r.body.errors[0]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    expect(r.body.error).toBe(r.body.errors[0].message);
  });

  it('accepts a body of just under 1 MiB', async () => {
    const payload = JSON.stringify({ name: 'x'.repeat(1024 * 1024 - 100) });
    const r = await inject({ method: 'POST', url: '/test/echo', payload, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
  });

  it('answers 400 INVALID_REQUEST for malformed JSON', async () => {
    const r = await inject({ method: 'POST', url: '/test/echo', payload: '{"name": "a",', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ code: 'INVALID_REQUEST', status: 400 });
    expect(r.body.errors[0].detail).toBe(r.body.errors[0].message);
  });

  it('parses a body without Content-Type as JSON', async () => {
    const r = await app.inject({ method: 'POST', url: '/test/echo', payload: Buffer.from('{"name":"n"}') });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ got: { name: 'n' } });
  });

  it('accepts application/vnd.api+json as JSON', async () => {
    const r = await inject({ method: 'POST', url: '/test/echo', payload: '{"name":"v"}', headers: { 'content-type': 'application/vnd.api+json' } });
    expect(r.status).toBe(200);
  });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE for text/plain on a JSON endpoint', async () => {
    const r = await inject({ method: 'POST', url: '/test/echo', payload: 'name=a', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(415);
    expect(r.body.errors[0]).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 });
  });

  it('answers 415 for a form body on an endpoint without allowForm', async () => {
    const r = await inject({ method: 'POST', url: '/test/echo', payload: 'name=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(415);
    expect(r.body.errors[0].code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 400 VALIDATION_FAILED naming a missing field, and for a JSON array body, never 500', async () => {
    const missing = await inject({ method: 'POST', url: '/test/echo', payload: { amount: 1 } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED', field: 'name' });
    const arr = await inject({ method: 'POST', url: '/test/echo', payload: '[1,2]', headers: { 'content-type': 'application/json' } });
    expect(arr.status).toBe(400);
    const wrongType = await inject({ method: 'POST', url: '/test/echo', payload: { name: 'a', amount: '1.5' } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors[0].field).toBe('amount');
  });

  it('answers 405 METHOD_NOT_ALLOWED with Allow on a known path', async () => {
    const r = await inject({ method: 'GET', url: '/test/echo' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect(r.body.errors[0]).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405 });
    const del = await inject({ method: 'DELETE', url: '/health' });
    expect(del.status).toBe(405);
    expect(String(del.headers.allow)).toContain('GET');
  });

  it('answers 404 NOT_FOUND on an unknown path', async () => {
    const r = await inject({ method: 'GET', url: '/no/such/thing' });
    expect(r.status).toBe(404);
    expect(r.body.errors[0]).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('answers 500 INTERNAL_ERROR with the request id and no stack trace or internals', async () => {
    for (const url of ['/test/boom', '/test/boom-sync']) {
      const r = await inject({ method: 'GET', url, headers: { 'x-request-id': 'req-500-test' } });
      expect(r.status).toBe(500);
      expect(r.body).toEqual({
        error: 'Internal error. Reference: req-500-test',
        errors: [{ code: 'INTERNAL_ERROR', status: 500, message: 'Internal error. Reference: req-500-test', detail: 'Internal error. Reference: req-500-test' }],
      });
      expect(r.text).not.toMatch(/hunter2|secret internals|Cannot read|at .*\.ts|stack/);
      expect(r.headers['x-request-id']).toBe('req-500-test');
    }
    // details go to the log
    expect(logged.join('')).toContain('secret internals');
  });
});

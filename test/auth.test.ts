import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SECRET_LOG_PATHS, startRuntime } from '../src/runtime.js';
import { TEST_KEYS, startTestApp, type TestApp } from './helpers/app.js';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const SECRET = 'test-secret-that-is-long-enough-0123456789';
const ISSUER = 'https://issuer.example.test';

async function hsToken(
  claims: Record<string, unknown> = {},
  opts: { secret?: string; aud?: string | string[]; iss?: string; exp?: number | string; nbf?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(now - 10)
    .setAudience(opts.aud ?? 'aop-app')
    .setIssuer(opts.iss ?? ISSUER)
    .setSubject('tenant-backend')
    .setExpirationTime(opts.exp ?? now + 300);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

function expectUnauthorized(r: { status: number; headers: Headers; body: any }, messagePart: RegExp): void {
  expect(r.status).toBe(401);
  expect(r.headers.get('www-authenticate')).toBe('Bearer');
  expect(r.body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
  expect(r.body.error).toBe(r.body.errors[0].message);
  expect(r.body.error).toMatch(messagePart);
}

describe('AUTH_MODE=jwt with AUTH_JWT_SECRET (HS256)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER });
  });
  afterAll(async () => {
    await app.close();
  });

  const configureBody = { configuration: { clientId: 'x' } };

  it('rejects a request without Authorization with 401 and WWW-Authenticate: Bearer', async () => {
    const r = await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1' });
    expectUnauthorized(r, /bearer token is required/i);
  });

  it('rejects an Authorization header that is not a bearer credential', async () => {
    const r = await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expectUnauthorized(r, /Bearer <token>/);
  });

  it('rejects a garbage token as malformed', async () => {
    const r = await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer('not-a-jwt') });
    expectUnauthorized(r, /malformed/);
  });

  it('accepts a valid HS256 token on /private/*, the bare aliases and the Glue-shaped endpoints', async () => {
    const t = await hsToken();
    for (const path of ['/private/configure', '/configure', '/private/initialize-payment', '/initialize-payment', '/payments', '/payment-cancellations', '/payment-customers', '/payments/transfers']) {
      const r = await app.request(path, { body: {}, tenant: 't-auth-ok', headers: bearer(t) });
      expect(r.status, path).not.toBe(401);
    }
  });

  it('every protected path needs the token (without it: 401 before anything else)', async () => {
    for (const path of [
      '/private/configure',
      '/private/disconnect',
      '/private/initialize-payment',
      '/private/pre-order-payment',
      '/private/confirm-pre-order-payment',
      '/private/cancel-pre-order-payment',
      '/private/payments/transfers',
      '/private/customer',
      '/private/merchants/onboarding',
      '/configure',
      '/disconnect',
      '/initialize-payment',
      '/confirm-pre-order-payment',
      '/cancel-pre-order-payment',
      '/payments/transfers',
      '/payments',
      '/payment-cancellations',
      '/payment-customers',
      '/event-platform/payment-commands',
      '/private/configure/',
    ]) {
      const r = await app.request(path, { body: {}, tenant: 't-auth-1' });
      expect(r.status, path).toBe(401);
    }
  });

  it('Glue-shaped endpoints answer the 401 with the JSON:API media type', async () => {
    const r = await app.request('/payments', { body: {}, tenant: 't-auth-1' });
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toMatch(/^application\/vnd\.api\+json/);
  });

  it('a rejected request changes nothing (no tenant stored)', async () => {
    const r = await app.request('/private/configure', { body: configureBody, tenant: 't-auth-nothing' });
    expect(r.status).toBe(401);
    const rows = await app.deps.db.query('SELECT 1 FROM tenants WHERE tenant_identifier = $1', ['t-auth-nothing']);
    expect(rows.rows).toHaveLength(0);
  });

  it('rejects an expired token (beyond the 60 s leeway) and accepts one within it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await hsToken({}, { exp: now - 120 });
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(expired) }), /expired/);
    const withinLeeway = await hsToken({}, { exp: now - 20 });
    const r = await app.request('/private/configure', { body: {}, tenant: 't-auth-ok', headers: bearer(withinLeeway) });
    expect(r.status).not.toBe(401);
  });

  it('rejects a token that is not valid yet (nbf beyond the leeway)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await hsToken({}, { nbf: now + 600, exp: now + 900 });
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(t) }), /not valid yet/);
  });

  it('rejects a token for another audience', async () => {
    const t = await hsToken({}, { aud: 'some-other-app' });
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(t) }), /audience/);
  });

  it('accepts a token whose aud array contains AUTH_AUDIENCE', async () => {
    const t = await hsToken({}, { aud: ['other', 'aop-app'] });
    const r = await app.request('/private/configure', { body: {}, tenant: 't-auth-ok', headers: bearer(t) });
    expect(r.status).not.toBe(401);
  });

  it('rejects a token with a wrong signature', async () => {
    const t = await hsToken({}, { secret: 'another-secret-that-is-long-enough-9876543210' });
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(t) }), /signature/);
  });

  it('rejects a token from another issuer', async () => {
    const t = await hsToken({}, { iss: 'https://evil.example.test' });
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(t) }), /issuer/);
  });

  it('rejects an unsigned (alg none) token', async () => {
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const t = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ aud: 'aop-app', iss: ISSUER, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
    expectUnauthorized(await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(t) }), /algorithm/);
  });

  it('accepts the Event Platform audience on /event-platform/* only', async () => {
    const ep = await hsToken({}, { aud: 'aop-event-platform' });
    const onHub = await app.request('/event-platform/app-events', { headers: { ...bearer(ep), 'consumer-id': 't-auth-ok' } });
    expect(onHub.status).not.toBe(401);
    const onPrivate = await app.request('/private/configure', { body: configureBody, tenant: 't-auth-1', headers: bearer(ep) });
    expectUnauthorized(onPrivate, /audience/);
    const appToken = await hsToken();
    const appOnHub = await app.request('/event-platform/app-events', { headers: { ...bearer(appToken), 'consumer-id': 't-auth-ok' } });
    expect(appOnHub.status).not.toBe(401);
    const noToken = await app.request('/event-platform/app-events', { headers: { 'consumer-id': 't-auth-ok' } });
    expectUnauthorized(noToken, /required/);
  });

  it('never asks for a token on webhooks, browser pages, catalog, sandbox and operational endpoints', async () => {
    for (const [method, path] of [
      ['GET', '/health'],
      ['GET', '/ready'],
      ['GET', '/metrics'],
      ['GET', '/openapi.json'],
      ['GET', '/asyncapi.json'],
      ['GET', '/app/manifest'],
      ['GET', '/app/api'],
      ['GET', '/app-payment'],
      ['GET', '/app-payment/redirect'],
      ['POST', '/webhooks'],
      ['POST', '/webhooks/test'],
      ['GET', '/sandbox/checkout/x'],
      ['GET', '/unknown-path'],
    ] as const) {
      const r = await app.request(path, { method, ...(method === 'POST' ? { body: {} } : {}) });
      expect(r.status, `${method} ${path}`).not.toBe(401);
    }
  });

  it('a percent-encoded protected path does not bypass authentication', async () => {
    const r = await app.request('/%70rivate/configure', { body: configureBody, tenant: 't-auth-1' });
    expect([401, 404]).toContain(r.status);
  });
});

describe('AUTH_MODE=jwt with AUTH_JWKS_URL (RS256)', () => {
  let app: TestApp;
  let jwks: Server;
  let jwksHits = 0;
  let signKey: PrivateKey;
  let foreignKey: PrivateKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const foreign = await generateKeyPair('RS256', { extractable: true });
    signKey = pair.privateKey;
    foreignKey = foreign.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((req, res) => {
      jwksHits++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const port = (jwks.address() as AddressInfo).port;
    app = await startTestApp({ AUTH_MODE: 'jwt', AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json` });
  });
  afterAll(async () => {
    await app?.close();
    await new Promise((r) => jwks?.close(r));
  });

  const rsToken = async (key: PrivateKey, aud = 'aop-app'): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);

  it('accepts an RS256 token signed by a key of the JWKS', async () => {
    const r = await app.request('/private/configure', { body: {}, tenant: 't-jwks', headers: bearer(await rsToken(signKey)) });
    expect(r.status).not.toBe(401);
    expect(jwksHits).toBeGreaterThan(0);
  });

  it('rejects an RS256 token signed by another key with the same kid', async () => {
    const r = await app.request('/private/configure', { body: {}, tenant: 't-jwks', headers: bearer(await rsToken(foreignKey)) });
    expectUnauthorized(r, /signature/);
  });

  it('rejects a wrong audience', async () => {
    const r = await app.request('/private/configure', { body: {}, tenant: 't-jwks', headers: bearer(await rsToken(signKey, 'nope')) });
    expectUnauthorized(r, /audience/);
  });

  it('rejects an HS256 token when only a JWKS is configured', async () => {
    const r = await app.request('/private/configure', { body: {}, tenant: 't-jwks', headers: bearer(await hsToken()) });
    expectUnauthorized(r, /algorithm/);
  });

  it('accepts the Event Platform audience on /event-platform/*', async () => {
    const r = await app.request('/event-platform/payment-events', { headers: { ...bearer(await rsToken(signKey, 'aop-event-platform')), 'consumer-id': 't-jwks' } });
    expect(r.status).not.toBe(401);
  });
});

describe('AUTH_MODE=none (loopback)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ AUTH_MODE: 'none' });
  });
  afterAll(async () => {
    await app.close();
  });

  it('does not require a token', async () => {
    const r = await app.request('/private/configure', { body: {}, tenant: 't-none' });
    expect(r.status).not.toBe(401);
    const hub = await app.request('/event-platform/app-events', { headers: { 'consumer-id': 't-none' } });
    expect(hub.status).not.toBe(401);
  });
});

describe('the bearer token never reaches the log', () => {
  it('redacts Authorization in logged requests and does not log rejected tokens', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const config = loadConfig({ PORT: '0', DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS, AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET, LOG_LEVEL: 'trace' });
    const log = pino({ level: 'trace', redact: { paths: SECRET_LOG_PATHS, censor: '********' } }, sink);
    // the logger itself: a request object with headers is redacted
    log.info({ req: { headers: { authorization: 'Bearer direct-secret-token' } } }, 'probe');
    const rt = await startRuntime(config, { log, startWorkers: false });
    try {
      const good = await hsToken({}, { iss: 'x' });
      const bad = await hsToken({}, { secret: 'another-secret-that-is-long-enough-9876543210' });
      for (const t of [good, bad, 'garbage.token.value']) {
        await fetch(`${rt.listenUrl}/private/configure`, { method: 'POST', headers: { ...bearer(t), 'content-type': 'application/json', 'x-tenant-identifier': 't-log' }, body: '{}' });
      }
      const text = lines.join('');
      expect(text).toContain('probe');
      expect(text).toContain('request rejected: unauthorized');
      expect(text).not.toContain('direct-secret-token');
      for (const t of [good, bad, 'garbage.token.value']) expect(text).not.toContain(t);
      expect(text).not.toContain(good.split('.')[2]!);
    } finally {
      await rt.close();
    }
  });
});

describe('AUTH_MODE=jwt with an unreachable JWKS', () => {
  it('answers 401 naming the unavailable key set (and logs nothing secret)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const app = await startTestApp({ AUTH_MODE: 'jwt', AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    try {
      const { privateKey } = await generateKeyPair('RS256');
      const t = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setAudience('aop-app').setExpirationTime('5m').sign(privateKey);
      const r = await app.request('/private/configure', { body: {}, tenant: 't-jwks-down', headers: bearer(t) });
      expectUnauthorized(r, /key set is unavailable/);
    } finally {
      await app.close();
    }
  });
});

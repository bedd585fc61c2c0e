import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, loadConfig, parseKeyRing } from '../src/config.js';
import { configErrorOf as errorOf } from './helpers/config.js';

const KEY = randomBytes(32).toString('base64');

describe('loadConfig defaults', () => {
  it('starts with no variables at all: loopback, embedded PGlite in ./data, sandbox, local transport, no auth', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      appBaseUrl: 'http://localhost:3000',
      appIdentifier: 'open-acp-pay',
      database: { kind: 'pglite', dataDir: './data' },
      dataDir: './data',
      encryptionKeys: undefined,
      authMode: 'none',
      authAudience: 'aop-app',
      authIssuer: undefined,
      connector: 'sandbox',
      messageTransport: 'local',
      eventPlatformAudience: 'aop-event-platform',
      httpHeaderPrefix: '',
      messageConsumerId: 'open-acp-pay',
      messagePollIntervalMs: 1000,
      outboxMaxRetryHours: 72,
      amqpExchange: 'acp',
      sandboxPspUrl: undefined,
      sandboxWebhookDelayMs: 0,
      sandboxRefundSettleMs: 200,
      logLevel: 'info',
    });
  });

  it('derives APP_BASE_URL from PORT and MESSAGE_CONSUMER_ID from APP_IDENTIFIER; strips trailing slashes', () => {
    expect(loadConfig({ PORT: '8080' }).appBaseUrl).toBe('http://localhost:8080');
    expect(loadConfig({ APP_BASE_URL: 'https://pay.example.com/' }).appBaseUrl).toBe('https://pay.example.com');
    expect(loadConfig({ APP_IDENTIFIER: 'my-app' }).messageConsumerId).toBe('my-app');
    expect(loadConfig({ SANDBOX_PSP_URL: 'http://psp.local:9000/' }).sandboxPspUrl).toBe('http://psp.local:9000');
  });

  it('treats empty and blank values as unset', () => {
    expect(loadConfig({ PORT: '', HOST: '  ', AUTH_MODE: '' })).toMatchObject({ port: 3000, host: '127.0.0.1', authMode: 'none' });
  });

  it('selects the database from DATABASE_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'memory://' }).database).toEqual({ kind: 'pglite-memory', preparedStatements: true, thread: true });
    expect(loadConfig({ DATA_DIR: '/var/lib/oap' }).database).toEqual({ kind: 'pglite', dataDir: '/var/lib/oap', preparedStatements: true, thread: true });
    expect(loadConfig({ DATABASE_URL: 'postgres://u@db:5432/pay', ENCRYPTION_KEYS: `k1:${KEY}` }).database).toEqual({ kind: 'postgres', url: 'postgres://u@db:5432/pay', preparedStatements: true });
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@db/pay', ENCRYPTION_KEYS: `k1:${KEY}` }).database.kind).toBe('postgres');
  });

  it('defaults AUTH_MODE to jwt on a non-loopback HOST', () => {
    const c = loadConfig({ HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32) });
    expect(c.authMode).toBe('jwt');
    expect(c.authJwtSecret).toBe('x'.repeat(32));
  });
});

describe('loadConfig rejects bad values with one line naming the variable', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '-1' }],
    ['HOST', { HOST: 'bad host!' }],
    ['APP_BASE_URL', { APP_BASE_URL: 'notaurl' }],
    ['APP_BASE_URL', { APP_BASE_URL: 'ftp://example.com' }],
    ['APP_IDENTIFIER', { APP_IDENTIFIER: 'has space' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['ENCRYPTION_KEYS', { ENCRYPTION_KEYS: 'k:short' }],
    ['ENCRYPTION_KEYS', { ENCRYPTION_KEYS: 'nocolon' }],
    ['ENCRYPTION_KEYS', { ENCRYPTION_KEYS: `k1:${KEY},k1:${KEY}` }],
    ['ENCRYPTION_KEYS', { ENCRYPTION_KEYS: `k1:${randomBytes(16).toString('base64')}` }],
    ['ENCRYPTION_KEYS', { DATABASE_URL: 'postgres://db/pay' }],
    ['AUTH_MODE', { AUTH_MODE: 'none', HOST: '0.0.0.0' }],
    ['AUTH_MODE', { AUTH_MODE: 'basic' }],
    ['AUTH_MODE', { AUTH_MODE: 'jwt' }],
    ['AUTH_MODE', { HOST: '0.0.0.0' }],
    ['AUTH_JWKS_URL', { AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'not-a-url' }],
    ['AUTH_JWT_SECRET', { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'too-short' }],
    ['CONNECTOR', { CONNECTOR: 'stripe-but-not-installed' }],
    ['MESSAGE_TRANSPORT', { MESSAGE_TRANSPORT: 'kafka' }],
    ['MESSAGE_BROKER_HTTP_SENDER_BASE_URL', { MESSAGE_TRANSPORT: 'http' }],
    ['MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL', { MESSAGE_TRANSPORT: 'http', MESSAGE_BROKER_HTTP_SENDER_BASE_URL: 'http://ep.local/' }],
    ['EVENT_PLATFORM_CLIENT_ID', { EVENT_PLATFORM_TOKEN_URL: 'https://auth.local/token' }],
    ['EVENT_PLATFORM_CLIENT_SECRET', { EVENT_PLATFORM_TOKEN_URL: 'https://auth.local/token', EVENT_PLATFORM_CLIENT_ID: 'id' }],
    ['MESSAGE_BROKER_HTTP_HEADER_PREFIX', { MESSAGE_BROKER_HTTP_HEADER_PREFIX: 'X_' }],
    ['MESSAGE_POLL_INTERVAL_MS', { MESSAGE_POLL_INTERVAL_MS: '1.5' }],
    ['OUTBOX_MAX_RETRY_HOURS', { OUTBOX_MAX_RETRY_HOURS: '12' }],
    ['AMQP_URL', { MESSAGE_TRANSPORT: 'rabbitmq' }],
    ['AMQP_URL', { AMQP_URL: 'http://rabbit' }],
    ['AMQP_EXCHANGE', { AMQP_EXCHANGE: 'bad exchange' }],
    ['SANDBOX_PSP_URL', { SANDBOX_PSP_URL: 'nope' }],
    ['SANDBOX_WEBHOOK_DELAY_MS', { SANDBOX_WEBHOOK_DELAY_MS: 'soon' }],
    ['SANDBOX_REFUND_SETTLE_MS', { SANDBOX_REFUND_SETTLE_MS: '-5' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
  ];
  for (const [variable, env] of cases) {
    it(`${variable} ← ${JSON.stringify(env)}`, () => {
      const err = errorOf(env);
      expect(err.variable).toBe(variable);
      expect(err.message.startsWith(`${variable}: `)).toBe(true);
      expect(err.message).not.toContain('\n');
    });
  }

  it('never echoes a secret value in the message', () => {
    const err = errorOf({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'supersecret' });
    expect(err.message).not.toContain('supersecret');
    const keyErr = errorOf({ ENCRYPTION_KEYS: 'k1:c2hvcnRzZWNyZXQ=' });
    expect(keyErr.message).not.toContain('c2hvcnRzZWNyZXQ=');
  });

  it('accepts the boundaries', () => {
    expect(loadConfig({ OUTBOX_MAX_RETRY_HOURS: '24' }).outboxMaxRetryHours).toBe(24);
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
    expect(loadConfig({ MESSAGE_BROKER_HTTP_HEADER_PREFIX: 'X-' }).httpHeaderPrefix).toBe('X-');
    expect(loadConfig({ AUTH_MODE: 'none', HOST: 'localhost' }).authMode).toBe('none');
    expect(loadConfig({ AUTH_MODE: 'none', HOST: '::1' }).authMode).toBe('none');
  });
});

describe('key ring and loopback helpers', () => {
  it('parses a rotation ring: first key encrypts, all listed', () => {
    const second = randomBytes(32).toString('base64');
    const ring = parseKeyRing(`new:${KEY}, old:${second}`);
    expect(ring.map((k) => k.id)).toEqual(['new', 'old']);
    expect(ring[0]!.key.equals(Buffer.from(KEY, 'base64'))).toBe(true);
    expect(ring[1]!.key).toHaveLength(32);
  });

  it('accepts base64url keys', () => {
    const b64url = randomBytes(32).toString('base64url');
    expect(parseKeyRing(`k:${b64url}`)[0]!.key).toHaveLength(32);
  });

  it('recognises loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.5.5.5', 'localhost', '::1', '[::1]', 'LOCALHOST']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

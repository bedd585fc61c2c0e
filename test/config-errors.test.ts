/**
 * Configuration errors teach: each names the variable, what was wrong, the expected format and an example taken from
 * the one table of variables in src/config.ts; and that table is the only place the server reads the environment.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, VARIABLES } from '../src/config.js';
import { configErrorOf as errorOf } from './helpers/config.js';

describe('every configuration error names the variable, the expected format and an example', () => {
  const bad: Array<Record<string, string>> = [
    { PORT: 'abc' },
    { PORT: '70000' },
    { HOST: 'bad host!' },
    { APP_BASE_URL: 'notaurl' },
    { APP_IDENTIFIER: 'has space' },
    { DATABASE_URL: 'mysql://x' },
    { ENCRYPTION_KEYS: 'nocolon' },
    { AUTH_MODE: 'basic' },
    { AUTH_JWT_SECRET: 'short', AUTH_MODE: 'jwt' },
    { CONNECTOR: 'paypal' },
    { CONNECTORS_ENABLED: 'sandbox,paypal' },
    { STRIPE_MAX_DECLINED_ATTEMPTS: '0' },
    { MESSAGE_TRANSPORT: 'kafka' },
    { MESSAGE_TRANSPORT: 'http' },
    { MESSAGE_BROKER_HTTP_HEADER_PREFIX: 'X_' },
    { EVENT_PLATFORM_TOKEN_URL: 'https://auth.local/token' },
    { MESSAGE_POLL_INTERVAL_MS: '1.5' },
    { OUTBOX_MAX_RETRY_HOURS: '1' },
    { MESSAGE_TRANSPORT: 'rabbitmq' },
    { AMQP_EXCHANGE: 'bad exchange' },
    { PRE_ORDER_EXPIRY_MS: '0' },
    { SANDBOX_PSP_URL: 'nope' },
    { SANDBOX_REFUND_SETTLE_MS: 'later' },
    { LOG_LEVEL: 'verbose' },
  ];
  for (const env of bad) {
    it(JSON.stringify(env), () => {
      const err = errorOf(env);
      const spec = VARIABLES.find((v) => v.name === err.variable);
      expect(spec, `${err.variable} is declared in VARIABLES`).toBeDefined();
      expect(err.message).toMatch(new RegExp(`^${err.variable}: .+; expected .+; example: ${err.variable}=\\S`));
      expect(err.message).toContain(`; expected ${spec!.format}; example: ${spec!.name}=${spec!.example}`);
      expect(err.message).not.toContain('\n');
    });
  }

  it('HOST=0.0.0.0 alone explains why AUTH_MODE is jwt and what to set', () => {
    const err = errorOf({ HOST: '0.0.0.0' });
    expect(err.variable).toBe('AUTH_MODE');
    expect(err.message).toContain('HOST "0.0.0.0" is not a loopback address');
    expect(err.message).toContain('AUTH_JWKS_URL');
    expect(err.message).toContain('AUTH_JWT_SECRET');
    expect(err.message).toContain('HOST=127.0.0.1');
    // an explicit AUTH_MODE=jwt gets the shorter message (the user chose jwt)
    expect(errorOf({ AUTH_MODE: 'jwt' }).message).not.toContain('is not a loopback address');
  });

  it('ENCRYPTION_KEYS errors show the format and how to make a key, never the key', () => {
    for (const env of [{ ENCRYPTION_KEYS: 'k1:c2hvcnRzZWNyZXQ=' }, { DATABASE_URL: 'postgres://db/pay' }, { ENCRYPTION_KEYS: 'nocolon' }] as Array<Record<string, string>>) {
      const err = errorOf(env);
      expect(err.variable).toBe('ENCRYPTION_KEYS');
      expect(err.message).toContain('id:base64key');
      expect(err.message).toContain('openssl rand -base64 32');
      expect(err.message).not.toContain('c2hvcnRzZWNyZXQ=');
    }
  });

  it('no example in the table is rejected by the parser (the examples work)', () => {
    const skip = new Set(['ENCRYPTION_KEYS', 'AUTH_JWT_SECRET', 'EVENT_PLATFORM_TOKEN', 'EVENT_PLATFORM_CLIENT_SECRET']); // placeholders for secrets
    const base: Record<string, string> = { ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`, AUTH_JWT_SECRET: 'x'.repeat(32) };
    for (const v of VARIABLES) {
      if (skip.has(v.name)) continue;
      const env: Record<string, string> = { ...base, [v.name]: v.example };
      if (v.name === 'EVENT_PLATFORM_TOKEN_URL') Object.assign(env, { EVENT_PLATFORM_CLIENT_ID: 'id', EVENT_PLATFORM_CLIENT_SECRET: 'secret' });
      if (v.name === 'MESSAGE_TRANSPORT') env.AMQP_URL = 'amqp://localhost';
      if (v.name === 'CONSOLE_OIDC_ISSUER') env.CONSOLE_OIDC_CLIENT_ID = 'acp-console';
      expect(() => loadConfig(env), `${v.name}=${v.example}`).not.toThrow();
    }
  });
});

describe('the environment is read in src/config.ts only', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });

  it('no other source file reads process.env (besides a test-only crash hook); only config.ts reads variables off an env object', () => {
    const allowed = new Set([join('src', 'config.ts')]);
    const offenders: string[] = [];
    for (const f of files('src')) {
      if (allowed.has(f)) continue;
      const reads = readFileSync(f, 'utf8').match(/process\.env(\.[A-Z_]+|\[[^\]]+\])?/g) ?? [];
      for (const r of reads) if (r !== 'process.env.OAP_TEST_CRASH_AFTER_PSP_CAPTURE' && r !== 'process.env') offenders.push(`${f}: ${r}`);
      // `env.NAME` / `env['NAME']` on an environment object (the default-parameter `= process.env` passes it to config.ts)
      for (const r of readFileSync(f, 'utf8').match(/(?<!process\.)\benv(\.[A-Z][A-Z0-9_]+|\[['"][A-Z][A-Z0-9_]+['"]\])/g) ?? []) offenders.push(`${f}: ${r}`);
    }
    expect(offenders).toEqual([]);
  });
});

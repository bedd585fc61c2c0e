/**
 * Console access configuration (docs/console.md): CONSOLE_* variables parsed in src/config.ts (declared in its table,
 * errors with format and example), and the access policy they give (open on loopback without logins, Secure cookies
 * off loopback).
 */
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../src/app/console/passwords.js';
import { loadConfig, VARIABLES } from '../src/config.js';
import { accessPolicy } from '../src/http/console/session.js';
import { configErrorOf } from './helpers/config.js';

const OFF_LOOPBACK = { HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32) };
const SECRET = 's'.repeat(32);

describe('console configuration', () => {
  it('every CONSOLE_* variable is declared in the table', () => {
    for (const n of ['CONSOLE_USERS', 'CONSOLE_SESSION_SECRET', 'CONSOLE_OIDC_ISSUER', 'CONSOLE_OIDC_CLIENT_ID', 'CONSOLE_OIDC_CLIENT_SECRET', 'CONSOLE_OIDC_ROLES_CLAIM']) {
      expect(VARIABLES.some((v) => v.name === n), n).toBe(true);
    }
  });

  it('bad values name the variable, the format and an example', async () => {
    const hash = await hashPassword('a long enough password');
    const cases: Array<[Record<string, string>, string]> = [
      [{ CONSOLE_USERS: 'alice' }, 'CONSOLE_USERS'],
      [{ CONSOLE_USERS: `alice:admin:${hash}` }, 'CONSOLE_USERS'],
      [{ CONSOLE_USERS: 'alice:operator:plaintext' }, 'CONSOLE_USERS'],
      [{ CONSOLE_USERS: `alice:operator:${hash},alice:viewer:${hash}` }, 'CONSOLE_USERS'],
      [{ CONSOLE_SESSION_SECRET: 'short' }, 'CONSOLE_SESSION_SECRET'],
      [{ CONSOLE_OIDC_ISSUER: 'https://login.example.com' }, 'CONSOLE_OIDC_CLIENT_ID'],
      [{ CONSOLE_OIDC_ISSUER: 'not a url', CONSOLE_OIDC_CLIENT_ID: 'c' }, 'CONSOLE_OIDC_ISSUER'],
      [{ ...OFF_LOOPBACK, CONSOLE_OIDC_ISSUER: 'http://login.example.com', CONSOLE_OIDC_CLIENT_ID: 'c', CONSOLE_SESSION_SECRET: SECRET }, 'CONSOLE_OIDC_ISSUER'],
      [{ ...OFF_LOOPBACK, CONSOLE_USERS: `alice:operator:${hash}` }, 'CONSOLE_SESSION_SECRET'],
    ];
    for (const [env, variable] of cases) {
      const err = configErrorOf(env);
      expect(err.variable, JSON.stringify(env)).toBe(variable);
      expect(err.message).toMatch(/; expected .+; example: CONSOLE_/);
      expect(err.message).not.toContain(hash);
    }
  });

  it('access policy: open on loopback without logins; login required with any; Secure cookies off loopback', async () => {
    const hash = await hashPassword('a long enough password');
    expect(accessPolicy(loadConfig({}))).toEqual({ open: true, loginConfigured: false, secure: false });
    expect(accessPolicy(loadConfig({ CONSOLE_USERS: `alice:operator:${hash}` }))).toEqual({ open: false, loginConfigured: true, secure: false });
    const off = loadConfig({ ...OFF_LOOPBACK, CONSOLE_USERS: `alice:viewer:${hash}`, CONSOLE_SESSION_SECRET: SECRET });
    expect(off.console.users).toEqual([{ name: 'alice', role: 'viewer', passwordHash: hash }]);
    expect(accessPolicy(off)).toEqual({ open: false, loginConfigured: true, secure: true });
    expect(accessPolicy(loadConfig(OFF_LOOPBACK))).toEqual({ open: false, loginConfigured: false, secure: true });
    const oidc = loadConfig({ CONSOLE_OIDC_ISSUER: 'http://127.0.0.1:9/oidc', CONSOLE_OIDC_CLIENT_ID: 'c' });
    expect(oidc.console.oidc).toEqual({ issuer: 'http://127.0.0.1:9/oidc', clientId: 'c', clientSecret: undefined, rolesClaim: 'roles' });
  });
});

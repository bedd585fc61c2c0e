/**
 * Console login through an OpenID Connect provider the test runs itself: authorization code flow with PKCE, state and
 * nonce (openid-client); the roles claim decides operator or viewer; a forged or replayed callback is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from './helpers/app.js';
import { cookieOf, csrfOf, get, post, startConsoleApp } from './helpers/console.js';
import { startOidcProvider, type TestOidcProvider } from './helpers/oidc-provider.js';

let app: TestApp;
let idp: TestOidcProvider;

beforeAll(async () => {
  idp = await startOidcProvider();
  app = await startConsoleApp({ CONSOLE_OIDC_ISSUER: idp.issuer, CONSOLE_OIDC_CLIENT_ID: idp.clientId });
}, 60_000);
afterAll(async () => {
  await app?.close();
  await idp?.close();
});

/** Runs the flow like a browser; returns the callback response and the transient cookie. */
async function signIn(): Promise<{ callback: Awaited<ReturnType<typeof get>>; oidcCookie: string; callbackUrl: string }> {
  const start = await get(app, '/console/auth/oidc');
  expect(start.status).toBe(303);
  const authorize = new URL(start.headers.get('location')!);
  expect(authorize.origin + authorize.pathname).toBe(`${idp.issuer}/authorize`);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('state')).toBeTruthy();
  expect(authorize.searchParams.get('nonce')).toBeTruthy();
  const oidcCookie = cookieOf(start.headers, 'acp_console_oidc')!;
  expect(start.headers.getSetCookie().find((c) => c.startsWith('acp_console_oidc='))).toMatch(/SameSite=Lax/i);
  const idpRes = await fetch(authorize, { redirect: 'manual' });
  expect(idpRes.status).toBe(302);
  const callbackUrl = idpRes.headers.get('location')!;
  expect(callbackUrl.startsWith(`${app.url}/console/auth/callback?`)).toBe(true);
  const callback = await get(app, callbackUrl.slice(app.url.length), oidcCookie);
  return { callback, oidcCookie, callbackUrl };
}

describe('console OIDC login', () => {
  it('the login page offers single sign-on', async () => {
    const r = await get(app, '/console/login');
    expect(r.text).toContain('href="/console/auth/oidc"');
  });

  it('an operator signs in with PKCE and can act', async () => {
    idp.nextUser = { sub: 'op-7', email: 'op@example.test', roles: ['operator'] };
    const { callback } = await signIn();
    expect(callback.status).toBe(200);
    expect(idp.lastToken).toEqual({ pkceVerified: true, grantType: 'authorization_code' });
    expect(callback.text).toContain('url=/console');
    const session = cookieOf(callback.headers, 'acp_console')!;
    expect(callback.headers.getSetCookie().find((c) => c.startsWith('acp_console='))).toMatch(/SameSite=Strict/i);
    const page = await get(app, '/console', session);
    expect(page.status).toBe(200);
    expect(page.text).toContain('op@example.test (operator)');
    const act = await post(app, '/console/outbox/none/requeue', { reason: 'x', csrf: csrfOf(page.text) }, session);
    expect(act.status).toBe(404); // allowed to act: the id simply does not exist
  });

  it('without the operator role the identity is a viewer and cannot act', async () => {
    idp.nextUser = { sub: 'v-1', email: 'viewer@example.test' };
    const { callback } = await signIn();
    const session = cookieOf(callback.headers, 'acp_console')!;
    const page = await get(app, '/console', session);
    expect(page.text).toContain('viewer@example.test (viewer)');
    expect((await post(app, '/console/outbox/none/requeue', { reason: 'x', csrf: csrfOf(page.text) }, session)).status).toBe(403);
  });

  it('a callback with a forged state, without the transient cookie, or replayed is refused', async () => {
    const start = await get(app, '/console/auth/oidc');
    const oidcCookie = cookieOf(start.headers, 'acp_console_oidc')!;
    const idpRes = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const cb = new URL(idpRes.headers.get('location')!);
    const forged = new URL(cb);
    forged.searchParams.set('state', 'forged');
    const f = await get(app, forged.pathname + forged.search, oidcCookie);
    expect(f.status).toBe(401);
    expect(cookieOf(f.headers, 'acp_console')).toBeNull();
    const noCookie = await get(app, cb.pathname + cb.search);
    expect(noCookie.status).toBe(401);
    const { callback, oidcCookie: c2, callbackUrl } = await signIn();
    expect(callback.status).toBe(200);
    const replay = await get(app, callbackUrl.slice(app.url.length), c2);
    expect(replay.status).toBe(401); // the code was used once already
  });
});

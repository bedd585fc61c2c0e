/**
 * Console sessions and logins (issue 11, docs/console.md).
 *
 * - Off loopback every page needs a login; on a loopback HOST without any login configured the console is open and
 *   the visitor acts as `loopback` (operator).
 * - Sessions: a signed (HMAC, @fastify/cookie) `HttpOnly; SameSite=Strict` cookie, `Secure` off loopback, 8 hours.
 *   It carries the user, the role and the session's CSRF token; every POST must send that token.
 * - Local accounts: CONSOLE_USERS (scrypt). OIDC: authorization code flow with PKCE, state and nonce through
 *   `openid-client`; the transient values live in a signed `SameSite=Lax` cookie (the provider's redirect back is a
 *   cross-site navigation), and the callback answers a page that moves on to the console (so the Strict session cookie
 *   is sent on the next request).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/cookie';
import type * as Oidc from 'openid-client';
import type { AppConfig, ConsoleRole } from '../../config.js';
import { isLoopbackHost } from '../../config.js';
import { roleFromClaims } from '../../app/console/passwords.js';

export const SESSION_COOKIE = 'acp_console';
const OIDC_COOKIE = 'acp_console_oidc';
const SESSION_TTL_MS = 8 * 60 * 60_000;
const OIDC_TTL_MS = 10 * 60_000;

export interface ConsoleSession {
  /** Actor id written to the audit log: `local:<name>`, `oidc:<sub>`, `loopback`. */
  id: string;
  name: string;
  role: ConsoleRole;
  csrf: string;
  exp: number;
}

export interface AccessPolicy {
  /** No login method configured on a loopback HOST: open, acting as `loopback`. */
  open: boolean;
  /** Any login method configured. */
  loginConfigured: boolean;
  secure: boolean;
}

export function accessPolicy(config: AppConfig): AccessPolicy {
  const loopback = isLoopbackHost(config.host);
  const loginConfigured = config.console.users.length > 0 || config.console.oidc !== undefined;
  return { open: loopback && !loginConfigured, loginConfigured, secure: !loopback };
}

const encode = (v: unknown): string => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
function decode<T>(s: string): T | null {
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as T;
  } catch {
    return null;
  }
}

function readSigned<T>(req: FastifyRequest, name: string): T | null {
  const raw = req.cookies[name];
  if (!raw) return null;
  const u = req.unsignCookie(raw);
  if (!u.valid || u.value === null) return null;
  return decode<T>(u.value);
}

export function readSession(req: FastifyRequest): ConsoleSession | null {
  const s = readSigned<ConsoleSession>(req, SESSION_COOKIE);
  if (!s || typeof s.id !== 'string' || typeof s.csrf !== 'string' || (s.role !== 'viewer' && s.role !== 'operator') || typeof s.exp !== 'number') return null;
  return s.exp > Date.now() ? s : null;
}

export function startSession(reply: FastifyReply, policy: AccessPolicy, who: { id: string; name: string; role: ConsoleRole }): ConsoleSession {
  const session: ConsoleSession = { ...who, csrf: randomBytes(24).toString('base64url'), exp: Date.now() + SESSION_TTL_MS };
  reply.setCookie(SESSION_COOKIE, encode(session), {
    path: '/console',
    httpOnly: true,
    sameSite: 'strict',
    secure: policy.secure,
    signed: true,
    maxAge: SESSION_TTL_MS / 1000,
  });
  return session;
}

export function endSession(reply: FastifyReply, policy: AccessPolicy): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/console', httpOnly: true, sameSite: 'strict', secure: policy.secure });
}

export function csrfMatches(session: ConsoleSession, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---- OIDC ----

interface OidcPending {
  verifier: string;
  state: string;
  nonce: string;
  exp: number;
}

/** openid-client, imported on the first OIDC login: a console without CONSOLE_OIDC_ISSUER never loads it. */
let oidcModule: Promise<typeof Oidc> | undefined;
const loadOidc = (): Promise<typeof Oidc> => (oidcModule ??= import('openid-client'));

export class OidcLogin {
  private discovered: Promise<Oidc.Configuration> | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly policy: AccessPolicy,
  ) {}

  private get settings(): NonNullable<AppConfig['console']['oidc']> {
    return this.config.console.oidc!;
  }

  get redirectUri(): string {
    return `${this.config.appBaseUrl}/console/auth/callback`;
  }

  private configuration(): Promise<Oidc.Configuration> {
    if (!this.discovered) {
      const s = this.settings;
      const issuer = new URL(s.issuer);
      const insecure = issuer.protocol === 'http:';
      this.discovered = loadOidc()
        .then((oidc) => oidc.discovery(issuer, s.clientId, s.clientSecret, s.clientSecret ? undefined : oidc.None(), insecure ? { execute: [oidc.allowInsecureRequests] } : undefined))
        .catch((err: unknown) => {
          this.discovered = undefined; // try again on the next login
          throw err;
        });
    }
    return this.discovered;
  }

  /** The provider's authorization URL; the PKCE verifier, state and nonce go into a signed short-lived cookie. */
  async start(reply: FastifyReply): Promise<string> {
    const [cfg, oidc] = await Promise.all([this.configuration(), loadOidc()]);
    const pending: OidcPending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce(), exp: Date.now() + OIDC_TTL_MS };
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    reply.setCookie(OIDC_COOKIE, encode(pending), { path: '/console/auth', httpOnly: true, sameSite: 'lax', secure: this.policy.secure, signed: true, maxAge: OIDC_TTL_MS / 1000 });
    return url.href;
  }

  /** Exchanges the code (with the PKCE verifier) and checks state and nonce; returns the identity or throws. */
  async finish(req: FastifyRequest, reply: FastifyReply): Promise<{ id: string; name: string; role: ConsoleRole }> {
    const pending = readSigned<OidcPending>(req, OIDC_COOKIE);
    reply.clearCookie(OIDC_COOKIE, { path: '/console/auth' });
    if (!pending || pending.exp < Date.now()) throw new Error('the login took too long or started elsewhere; start again');
    const [cfg, oidc] = await Promise.all([this.configuration(), loadOidc()]);
    const current = new URL(req.url, this.config.appBaseUrl);
    const tokens = await oidc.authorizationCodeGrant(cfg, current, { pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true });
    const claims = tokens.claims();
    if (!claims) throw new Error('the provider sent no ID token');
    const name = typeof claims.email === 'string' ? claims.email : typeof claims.preferred_username === 'string' ? claims.preferred_username : claims.sub;
    return { id: `oidc:${claims.sub}`, name, role: roleFromClaims(claims as Record<string, unknown>, this.settings.rolesClaim) };
  }
}

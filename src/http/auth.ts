/**
 * Bearer authentication (sync-api.md 2.4, messages.md 9.2).
 *
 * AUTH_MODE=jwt: `/private/*`, the bare aliases, the Glue-shaped storefront endpoints and `/event-platform/*`
 * need `Authorization: Bearer <JWT>` verified against AUTH_JWKS_URL (RS256/ES256) or AUTH_JWT_SECRET (HS256),
 * with 60 s clock tolerance, `aud` containing AUTH_AUDIENCE (on `/event-platform/*` also EVENT_PLATFORM_AUDIENCE)
 * and `iss` = AUTH_ISSUER when set. A failure answers 401 UNAUTHORIZED before anything else runs.
 * Webhooks, browser pages, catalog artifacts, the sandbox PSP and operational endpoints never need a token.
 * AUTH_MODE=none (loopback only): nothing is checked. The token itself is never logged.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { AppDeps } from '../app/context.js';
import type { AppConfig } from '../config.js';
import { AppError } from '../domain/errors.js';
import { sendAppError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Verified token claims (AUTH_MODE=jwt on a protected endpoint). */
    auth?: JWTPayload;
  }
}

/** Exact paths (besides the `/private/` and `/event-platform/` prefixes) that need a bearer token. */
export const PROTECTED_EXACT_PATHS: ReadonlySet<string> = new Set([
  '/configure',
  '/disconnect',
  '/initialize-payment',
  '/confirm-pre-order-payment',
  '/cancel-pre-order-payment',
  '/payments/transfers',
  '/payments',
  '/payment-cancellations',
  '/payment-customers',
]);

export type ProtectionKind = 'app' | 'event-platform' | null;

/** Which audience rule applies to a path (a route pattern or a request path without query); null: no token needed. */
export function protectionOf(path: string): ProtectionKind {
  let p = path.split('?')[0]!;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/event-platform' || p.startsWith('/event-platform/')) return 'event-platform';
  if (p === '/private' || p.startsWith('/private/')) return 'app';
  if (PROTECTED_EXACT_PATHS.has(p)) return 'app';
  return null;
}

const GLUE_PATHS = new Set(['/payments', '/payment-cancellations', '/payment-customers']);

const ALG_JWKS = ['RS256', 'ES256'];
const ALG_SECRET = ['HS256'];
const CLOCK_TOLERANCE_S = 60;

export interface TokenVerifier {
  /** Resolves with the claims or rejects with an AppError UNAUTHORIZED whose message names the problem. */
  verify(token: string, audiences: string[]): Promise<JWTPayload>;
  /** A failure of `verify` as one clear message (never echoing the token); `keySetProblem`: the key set was unavailable. */
  explain(err: unknown): { message: string; keySetProblem?: boolean };
}

function unauthorized(message: string): AppError {
  return new AppError('UNAUTHORIZED', message);
}

type JoseErrors = typeof import('jose')['errors'];

/** Maps jose's failures onto one clear message each (never echoing the token). */
function explain(err: unknown, joseErrors: JoseErrors): { message: string; keySetProblem?: boolean } {
  if (err instanceof AppError) return { message: err.message };
  if (err instanceof joseErrors.JWTExpired) return { message: 'The bearer token has expired.' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return { message: 'The bearer token is not issued for this audience.' };
    if (err.claim === 'iss') return { message: 'The bearer token has an unexpected issuer.' };
    if (err.claim === 'nbf') return { message: 'The bearer token is not valid yet.' };
    return { message: `The bearer token claim "${err.claim}" is invalid.` };
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { message: 'The bearer token signature is invalid.' };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { message: 'The bearer token is signed with an algorithm that is not accepted.' };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { message: 'The bearer token is signed with an unknown key.' };
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return { message: 'The bearer token signature is invalid.' };
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return { message: 'The bearer token could not be verified: the key set is unavailable.', keySetProblem: true };
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return { message: 'The bearer token is malformed.' };
  }
  if (err instanceof joseErrors.JOSEError) return { message: 'The bearer token is invalid.' };
  // fetch errors of the remote key set and anything unexpected
  return { message: 'The bearer token could not be verified: the key set is unavailable.', keySetProblem: true };
}

/**
 * The verifier of `AUTH_MODE=jwt`. jose is loaded here, not with the module: with authentication off (the default) the
 * server never loads it (about 2 MB of heap at idle, README "Benchmark").
 */
export async function createTokenVerifier(config: Pick<AppConfig, 'authJwksUrl' | 'authJwtSecret' | 'authIssuer'>): Promise<TokenVerifier> {
  const { createRemoteJWKSet, decodeProtectedHeader, errors: joseErrors, jwtVerify } = await import('jose');
  const jwks: JWTVerifyGetKey | undefined = config.authJwksUrl
    ? createRemoteJWKSet(new URL(config.authJwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 })
    : undefined;
  const secret = config.authJwtSecret ? new TextEncoder().encode(config.authJwtSecret) : undefined;
  return {
    explain: (err) => explain(err, joseErrors),
    async verify(token, audiences) {
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw unauthorized('The bearer token is malformed.');
      }
      const common = { audience: audiences, clockTolerance: CLOCK_TOLERANCE_S, ...(config.authIssuer ? { issuer: config.authIssuer } : {}) };
      if (alg !== undefined && ALG_SECRET.includes(alg)) {
        if (!secret) throw unauthorized('The bearer token is signed with an algorithm that is not accepted.');
        return (await jwtVerify(token, secret, { ...common, algorithms: ALG_SECRET })).payload;
      }
      if (alg !== undefined && ALG_JWKS.includes(alg)) {
        if (!jwks) throw unauthorized('The bearer token is signed with an algorithm that is not accepted.');
        return (await jwtVerify(token, jwks, { ...common, algorithms: ALG_JWKS })).payload;
      }
      throw unauthorized('The bearer token is signed with an algorithm that is not accepted.');
    },
  };
}

/** Extracts the token of `Authorization: Bearer <token>`; undefined when absent or not a bearer credential. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

export async function authRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { config } = deps;
  if (config.authMode !== 'jwt') return;
  const verifier = await createTokenVerifier(config);
  const appAudiences = [config.authAudience];
  const eventPlatformAudiences = [...new Set([config.authAudience, config.eventPlatformAudience])];

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    // The matched route pattern decides (robust against percent-encoding and trailing slashes);
    // the raw path covers requests that match no route (they answer 404/405 anyway).
    const pattern = req.routeOptions.url;
    const kind = pattern !== undefined ? protectionOf(pattern) : protectionOf(req.url);
    if (kind === null) return;
    const fail = (message: string): FastifyReply => {
      const path = (pattern ?? req.url.split('?')[0]!).replace(/\/+$/, '');
      if (GLUE_PATHS.has(path)) reply.type('application/vnd.api+json');
      req.log.info({ reason: message }, 'request rejected: unauthorized');
      return sendAppError(reply, unauthorized(message));
    };
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) {
      return fail(req.headers.authorization ? 'The Authorization header must be "Bearer <token>".' : 'A bearer token is required (Authorization: Bearer <token>).');
    }
    try {
      req.auth = await verifier.verify(token, kind === 'event-platform' ? eventPlatformAudiences : appAudiences);
    } catch (err) {
      const { message, keySetProblem } = verifier.explain(err);
      if (keySetProblem) req.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'JWKS key set unavailable');
      return fail(message);
    }
  });
}

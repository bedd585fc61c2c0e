/**
 * A tiny OpenID Connect provider for tests: discovery, an authorization endpoint that signs in `nextUser` at once,
 * a token endpoint that checks the PKCE verifier (S256), the redirect URI and the client, and a JWKS. RS256 ID tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export interface OidcUser {
  sub: string;
  email: string;
  roles?: string[];
}

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  nextUser: OidcUser;
  /** What the token endpoint saw on its last call. */
  lastToken: { pkceVerified: boolean; grantType: string | null } | null;
  close(): Promise<void>;
}

export async function startOidcProvider(clientId = 'acp-console'): Promise<TestOidcProvider> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { challenge: string; nonce: string | null; redirectUri: string; user: OidcUser }>();
  let issuer = '';
  const state: TestOidcProvider = { issuer: '', clientId, nextUser: { sub: 'u-1', email: 'op@example.test', roles: ['operator'] }, lastToken: null, close: async () => undefined };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/oidc/.well-known/openid-configuration') {
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
      });
    }
    if (url.pathname === '/oidc/jwks') return json(200, { keys: [jwk] });
    if (url.pathname === '/oidc/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== clientId || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
        return json(400, { error: 'invalid_request' });
      }
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { challenge: q.get('code_challenge')!, nonce: q.get('nonce'), redirectUri: q.get('redirect_uri')!, user: state.nextUser });
      const to = new URL(q.get('redirect_uri')!);
      to.searchParams.set('code', code);
      if (q.get('state')) to.searchParams.set('state', q.get('state')!);
      return res.writeHead(302, { location: to.href }).end();
    }
    if (url.pathname === '/oidc/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        void (async () => {
          const f = new URLSearchParams(body);
          const entry = codes.get(f.get('code') ?? '');
          codes.delete(f.get('code') ?? '');
          const verifier = f.get('code_verifier') ?? '';
          const pkceVerified = !!entry && createHash('sha256').update(verifier).digest('base64url') === entry.challenge;
          state.lastToken = { pkceVerified, grantType: f.get('grant_type') };
          if (!entry || !pkceVerified || f.get('redirect_uri') !== entry.redirectUri || f.get('client_id') !== clientId) return json(400, { error: 'invalid_grant' });
          const idToken = await new SignJWT({ email: entry.user.email, ...(entry.user.roles ? { roles: entry.user.roles } : {}), ...(entry.nonce ? { nonce: entry.nonce } : {}) })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .setIssuer(issuer)
            .setAudience(clientId)
            .setSubject(entry.user.sub)
            .setIssuedAt()
            .setExpirationTime('5m')
            .sign(privateKey);
          json(200, { access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 300, id_token: idToken });
        })();
      });
      return;
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  issuer = `http://127.0.0.1:${port}/oidc`;
  state.issuer = issuer;
  state.close = () => new Promise((r) => server.close(() => r()));
  return state;
}

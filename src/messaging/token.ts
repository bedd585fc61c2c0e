/**
 * Bearer token for the Event Platform (`http` transport, messages.md 9.1): either the static
 * EVENT_PLATFORM_TOKEN, or an OAuth 2 client-credentials token fetched from EVENT_PLATFORM_TOKEN_URL with
 * `audience` EVENT_PLATFORM_AUDIENCE, cached until 60 s before it expires. The client secret and the
 * token are never logged.
 */
import type { AppConfig } from '../config.js';

export interface TokenProvider {
  /** The bearer token to send, or undefined when no token source is configured. */
  getToken(): Promise<string | undefined>;
  /** Forgets a cached token (e.g. after the Event Platform answered 401). */
  invalidate(): void;
}

export interface TokenProviderOptions {
  fetch?: typeof fetch;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Timeout of the token request. */
  timeoutMs?: number;
}

/** Cache margin before expiry. */
export const TOKEN_REFRESH_MARGIN_MS = 60_000;
/** Lifetime assumed when the token endpoint does not say (`expires_in` absent). */
const DEFAULT_LIFETIME_MS = 300_000;

type TokenConfig = Pick<
  AppConfig,
  'eventPlatformToken' | 'eventPlatformTokenUrl' | 'eventPlatformClientId' | 'eventPlatformClientSecret' | 'eventPlatformAudience'
>;

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

export function createTokenProvider(config: TokenConfig, opts: TokenProviderOptions = {}): TokenProvider {
  if (config.eventPlatformToken) {
    const token = config.eventPlatformToken;
    return { getToken: async () => token, invalidate: () => undefined };
  }
  if (config.eventPlatformTokenUrl && config.eventPlatformClientId && config.eventPlatformClientSecret) {
    return new ClientCredentialsTokenProvider(
      config.eventPlatformTokenUrl,
      config.eventPlatformClientId,
      config.eventPlatformClientSecret,
      config.eventPlatformAudience,
      opts,
    );
  }
  return { getToken: async () => undefined, invalidate: () => undefined };
}

class ClientCredentialsTokenProvider implements TokenProvider {
  private cached: { token: string; refreshAt: number } | undefined;
  private inflight: Promise<string> | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(
    private readonly url: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
    private readonly audience: string,
    opts: TokenProviderOptions,
  ) {
    this.fetchFn = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async getToken(): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return this.cached.token;
    // One request at a time; concurrent callers share it.
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.clientId,
      client_secret: this.clientSecret,
      audience: this.audience,
    });
    let res: Response;
    try {
      res = await this.fetchFn(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TokenError(`Event Platform token request failed: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw new TokenError(`Event Platform token request answered HTTP ${res.status}`);
    let parsed: { access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new TokenError('Event Platform token response is not JSON');
    }
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') {
      throw new TokenError('Event Platform token response has no access_token');
    }
    const expiresIn = Number(parsed.expires_in);
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_LIFETIME_MS;
    this.cached = { token: parsed.access_token, refreshAt: this.now() + lifetimeMs - TOKEN_REFRESH_MARGIN_MS };
    return parsed.access_token;
  }
}

/**
 * Environment configuration. Every variable of the spec's configuration table (shared/spec/README.md)
 * is read and validated here; a bad value throws a ConfigError whose message is one line naming the variable.
 */
import { isIP } from 'node:net';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type DatabaseConfig =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dataDir: string }
  | { kind: 'pglite-memory' };

export type AuthMode = 'none' | 'jwt';
export type MessageTransport = 'local' | 'http' | 'rabbitmq';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

export interface AppConfig {
  port: number;
  host: string;
  appBaseUrl: string;
  appIdentifier: string;
  database: DatabaseConfig;
  dataDir: string;
  /** Parsed key ring; undefined means "generate/load the local key in DATA_DIR" (embedded mode only). */
  encryptionKeys: EncryptionKey[] | undefined;
  authMode: AuthMode;
  authJwksUrl: string | undefined;
  authJwtSecret: string | undefined;
  authAudience: string;
  authIssuer: string | undefined;
  connector: string;
  messageTransport: MessageTransport;
  httpSenderBaseUrl: string | undefined;
  httpReceiverBaseUrl: string | undefined;
  eventPlatformToken: string | undefined;
  eventPlatformTokenUrl: string | undefined;
  eventPlatformClientId: string | undefined;
  eventPlatformClientSecret: string | undefined;
  eventPlatformAudience: string;
  httpHeaderPrefix: string;
  messageConsumerId: string;
  messagePollIntervalMs: number;
  outboxMaxRetryHours: number;
  amqpUrl: string | undefined;
  amqpExchange: string;
  /** Connectors whose tenants and payments this deployment serves (CONNECTORS_ENABLED; always contains `connector`). */
  connectorsEnabled: string[];
  stripeApiBase: string;
  stripeJsUrl: string;
  stripeMaxDeclinedAttempts: number;
  sandboxPspUrl: string | undefined;
  sandboxWebhookDelayMs: number;
  sandboxRefundSettleMs: number;
  logLevel: LogLevel;
  /** Operator console access (issue 11, docs/console.md). */
  console: ConsoleConfig;
}

export type ConsoleRole = 'viewer' | 'operator';

export interface ConsoleUser {
  name: string;
  role: ConsoleRole;
  /** `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>` (`npm run cli -- console hash-password`). */
  passwordHash: string;
}

export interface ConsoleConfig {
  /** CONSOLE_USERS: `name:role:hash[,name:role:hash...]`. */
  users: ConsoleUser[];
  /** CONSOLE_SESSION_SECRET (>= 32 characters); undefined: a random secret per process (sessions end on restart). */
  sessionSecret: string | undefined;
  /** OIDC login (authorization code + PKCE): CONSOLE_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET, _ROLES_CLAIM. */
  oidc: { issuer: string; clientId: string; clientSecret: string | undefined; rolesClaim: string } | undefined;
}

export const KNOWN_CONNECTORS = ['sandbox', 'stripe'] as const;

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const v = str(env, name);
  if (v === undefined) return def;
  if (!/^[0-9]+$/.test(v)) throw new ConfigError(name, `must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(name, `is not a valid URL`);
  }
  if (!protocols.includes(u.protocol)) {
    throw new ConfigError(name, `must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}, got "${u.protocol.replace(':', '')}"`);
  }
  return v;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
  const v = str(env, name);
  if (v === undefined) return def;
  if (!values.includes(v as T)) throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${v}"`);
  return v as T;
}

/** CONNECTORS_ENABLED: comma-separated known connector ids; default (and always included): CONNECTOR. */
function connectorsEnabled(env: Env, connector: string): string[] {
  const v = str(env, 'CONNECTORS_ENABLED');
  if (v === undefined) return [connector];
  const ids = v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const id of ids) {
    if (!(KNOWN_CONNECTORS as readonly string[]).includes(id)) throw new ConfigError('CONNECTORS_ENABLED', `must list known connectors (${KNOWN_CONNECTORS.join(', ')}), got "${id}"`);
  }
  return [...new Set([connector, ...ids])];
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}

/** Parses `id:base64key[,id:base64key...]`; each key must decode to exactly 32 bytes. */
export function parseKeyRing(value: string, name = 'ENCRYPTION_KEYS'): EncryptionKey[] {
  const keys: EncryptionKey[] = [];
  for (const part of value.split(',')) {
    const entry = part.trim();
    const idx = entry.indexOf(':');
    if (idx <= 0) throw new ConfigError(name, 'each entry must be "id:base64key"');
    const id = entry.slice(0, idx);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new ConfigError(name, `key id "${id}" may only contain letters, digits, "_", "." and "-"`);
    const b64 = entry.slice(idx + 1);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) throw new ConfigError(name, `key "${id}" is not base64`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32) throw new ConfigError(name, `key "${id}" must be 32 bytes, got ${key.length}`);
    if (keys.some((k) => k.id === id)) throw new ConfigError(name, `key id "${id}" appears twice`);
    keys.push({ id, key });
  }
  return keys;
}

/** CONSOLE_USERS: comma-separated `name:role:scrypt$N$r$p$salt$hash` entries. */
function consoleUsers(env: Env): ConsoleUser[] {
  const v = str(env, 'CONSOLE_USERS');
  if (v === undefined) return [];
  const users: ConsoleUser[] = [];
  for (const entry of v.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const [name, role, hash, ...rest] = entry.split(':');
    if (!name || !role || !hash || rest.length > 0) throw new ConfigError('CONSOLE_USERS', 'each entry must be "name:role:hash"');
    if (!/^[A-Za-z0-9_.@-]{1,100}$/.test(name)) throw new ConfigError('CONSOLE_USERS', `user name "${name}" may only contain letters, digits, "_", ".", "@" and "-"`);
    if (role !== 'viewer' && role !== 'operator') throw new ConfigError('CONSOLE_USERS', `role of "${name}" must be viewer or operator, got "${role}"`);
    if (!/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/.test(hash)) {
      throw new ConfigError('CONSOLE_USERS', `password hash of "${name}" must come from "npm run cli -- console hash-password"`);
    }
    if (users.some((u) => u.name === name)) throw new ConfigError('CONSOLE_USERS', `user "${name}" appears twice`);
    users.push({ name, role, passwordHash: hash });
  }
  return users;
}

function consoleConfig(env: Env, loopback: boolean): ConsoleConfig {
  const users = consoleUsers(env);
  const sessionSecret = str(env, 'CONSOLE_SESSION_SECRET');
  if (sessionSecret !== undefined && sessionSecret.length < 32) throw new ConfigError('CONSOLE_SESSION_SECRET', 'must be at least 32 characters');
  const issuer = url(env, 'CONSOLE_OIDC_ISSUER', ['http:', 'https:']);
  const clientId = str(env, 'CONSOLE_OIDC_CLIENT_ID');
  if (issuer !== undefined && clientId === undefined) throw new ConfigError('CONSOLE_OIDC_CLIENT_ID', 'is required with CONSOLE_OIDC_ISSUER');
  if (issuer !== undefined && !loopback && new URL(issuer).protocol !== 'https:' && !isLoopbackHost(new URL(issuer).hostname)) {
    throw new ConfigError('CONSOLE_OIDC_ISSUER', 'must use https off loopback');
  }
  const rolesClaim = str(env, 'CONSOLE_OIDC_ROLES_CLAIM') ?? 'roles';
  if ((users.length > 0 || issuer !== undefined) && !loopback && sessionSecret === undefined) {
    throw new ConfigError('CONSOLE_SESSION_SECRET', 'is required off loopback when console logins are configured (sessions must survive restarts and be shared by instances)');
  }
  return {
    users,
    sessionSecret,
    oidc: issuer === undefined ? undefined : { issuer, clientId: clientId!, clientSecret: str(env, 'CONSOLE_OIDC_CLIENT_SECRET'), rolesClaim },
  };
}

export function loadConfig(env: Env = process.env): AppConfig {
  const port = int(env, 'PORT', 3000, 0, 65535);
  const host = str(env, 'HOST') ?? '127.0.0.1';
  if (!isIP(host.replace(/^\[|\]$/g, '')) && !/^[A-Za-z0-9.-]+$/.test(host)) throw new ConfigError('HOST', `is not a valid address: "${host}"`);

  const appBaseUrl = (url(env, 'APP_BASE_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const appIdentifier = str(env, 'APP_IDENTIFIER') ?? 'open-acp-pay';
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(appIdentifier)) throw new ConfigError('APP_IDENTIFIER', 'may only contain letters, digits, "_", "." and "-"');

  const dataDir = str(env, 'DATA_DIR') ?? './data';
  const dbUrl = str(env, 'DATABASE_URL');
  let database: DatabaseConfig;
  if (dbUrl === undefined) database = { kind: 'pglite', dataDir };
  else if (dbUrl === 'memory://') database = { kind: 'pglite-memory' };
  else {
    url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
    database = { kind: 'postgres', url: dbUrl };
  }

  const keysRaw = str(env, 'ENCRYPTION_KEYS');
  const encryptionKeys = keysRaw === undefined ? undefined : parseKeyRing(keysRaw);
  if (encryptionKeys === undefined && database.kind === 'postgres') {
    throw new ConfigError('ENCRYPTION_KEYS', 'is required with a PostgreSQL DATABASE_URL (a generated local key would not be shared between instances)');
  }

  const loopback = isLoopbackHost(host);
  const authMode = oneOf(env, 'AUTH_MODE', ['none', 'jwt'] as const, loopback ? 'none' : 'jwt');
  if (authMode === 'none' && !loopback) throw new ConfigError('AUTH_MODE', `"none" is only allowed on a loopback HOST, got HOST "${host}"`);
  const authJwksUrl = url(env, 'AUTH_JWKS_URL', ['http:', 'https:']);
  const authJwtSecret = str(env, 'AUTH_JWT_SECRET');
  if (authJwtSecret !== undefined && authJwtSecret.length < 32) throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters');
  if (authMode === 'jwt' && !authJwksUrl && !authJwtSecret) {
    throw new ConfigError('AUTH_MODE', 'jwt needs AUTH_JWKS_URL or AUTH_JWT_SECRET');
  }

  const connector = oneOf(env, 'CONNECTOR', KNOWN_CONNECTORS, 'sandbox');
  const messageTransport = oneOf(env, 'MESSAGE_TRANSPORT', ['local', 'http', 'rabbitmq'] as const, 'local');
  const httpSenderBaseUrl = url(env, 'MESSAGE_BROKER_HTTP_SENDER_BASE_URL', ['http:', 'https:']);
  const httpReceiverBaseUrl = url(env, 'MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL', ['http:', 'https:']);
  const eventPlatformToken = str(env, 'EVENT_PLATFORM_TOKEN');
  const eventPlatformTokenUrl = url(env, 'EVENT_PLATFORM_TOKEN_URL', ['http:', 'https:']);
  const eventPlatformClientId = str(env, 'EVENT_PLATFORM_CLIENT_ID');
  const eventPlatformClientSecret = str(env, 'EVENT_PLATFORM_CLIENT_SECRET');
  if (eventPlatformTokenUrl && (!eventPlatformClientId || !eventPlatformClientSecret)) {
    throw new ConfigError(!eventPlatformClientId ? 'EVENT_PLATFORM_CLIENT_ID' : 'EVENT_PLATFORM_CLIENT_SECRET', 'is required with EVENT_PLATFORM_TOKEN_URL');
  }
  if (messageTransport === 'http') {
    if (!httpSenderBaseUrl) throw new ConfigError('MESSAGE_BROKER_HTTP_SENDER_BASE_URL', 'is required with MESSAGE_TRANSPORT=http');
    if (!httpReceiverBaseUrl) throw new ConfigError('MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL', 'is required with MESSAGE_TRANSPORT=http');
  }
  const httpHeaderPrefix = env.MESSAGE_BROKER_HTTP_HEADER_PREFIX?.trim() ?? '';
  if (httpHeaderPrefix !== '' && !/^[A-Za-z][A-Za-z0-9]*-$/.test(httpHeaderPrefix)) {
    throw new ConfigError('MESSAGE_BROKER_HTTP_HEADER_PREFIX', `must be empty or like "X-", got "${httpHeaderPrefix}"`);
  }
  const amqpUrl = url(env, 'AMQP_URL', ['amqp:', 'amqps:']);
  if (messageTransport === 'rabbitmq' && !amqpUrl) throw new ConfigError('AMQP_URL', 'is required with MESSAGE_TRANSPORT=rabbitmq');
  const amqpExchange = str(env, 'AMQP_EXCHANGE') ?? 'acp';
  if (!/^[A-Za-z0-9_.:-]{1,255}$/.test(amqpExchange)) throw new ConfigError('AMQP_EXCHANGE', 'is not a valid exchange name');

  const logLevel = oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info');

  return {
    port,
    host,
    appBaseUrl,
    appIdentifier,
    database,
    dataDir,
    encryptionKeys,
    authMode,
    authJwksUrl,
    authJwtSecret,
    authAudience: str(env, 'AUTH_AUDIENCE') ?? 'aop-app',
    authIssuer: str(env, 'AUTH_ISSUER'),
    connector,
    messageTransport,
    httpSenderBaseUrl,
    httpReceiverBaseUrl,
    eventPlatformToken,
    eventPlatformTokenUrl,
    eventPlatformClientId,
    eventPlatformClientSecret,
    eventPlatformAudience: str(env, 'EVENT_PLATFORM_AUDIENCE') ?? 'aop-event-platform',
    httpHeaderPrefix,
    messageConsumerId: str(env, 'MESSAGE_CONSUMER_ID') ?? appIdentifier,
    messagePollIntervalMs: int(env, 'MESSAGE_POLL_INTERVAL_MS', 1000, 10, 3_600_000),
    outboxMaxRetryHours: int(env, 'OUTBOX_MAX_RETRY_HOURS', 72, 24, 24 * 365),
    amqpUrl,
    amqpExchange,
    connectorsEnabled: connectorsEnabled(env, connector),
    stripeApiBase: (url(env, 'STRIPE_API_BASE', ['http:', 'https:']) ?? 'https://api.stripe.com').replace(/\/+$/, ''),
    stripeJsUrl: url(env, 'STRIPE_JS_URL', ['http:', 'https:']) ?? 'https://js.stripe.com/v3/',
    stripeMaxDeclinedAttempts: int(env, 'STRIPE_MAX_DECLINED_ATTEMPTS', 5, 1, 100),
    sandboxPspUrl: url(env, 'SANDBOX_PSP_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    sandboxWebhookDelayMs: int(env, 'SANDBOX_WEBHOOK_DELAY_MS', 0, 0, 3_600_000),
    sandboxRefundSettleMs: int(env, 'SANDBOX_REFUND_SETTLE_MS', 200, 0, 3_600_000),
    logLevel,
    console: consoleConfig(env, loopback),
  };
}

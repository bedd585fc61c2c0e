/**
 * Environment configuration. Every environment variable the server reads is declared once in `VARIABLES` below
 * (name, default, format, example, meaning) and parsed here only: `loadConfig` reads its defaults, bounds and allowed
 * values from that table, every `ConfigError` appends the variable's format and example from it, and
 * `scripts/docs.ts` renders it as `docs/configuration.md`. A bad value throws a ConfigError whose message is one line
 * naming the variable, what was wrong, the expected format and an example.
 */
import { isIP } from 'node:net';

export type VariableGroup = 'server' | 'database' | 'security' | 'messaging' | 'connectors' | 'sandbox' | 'operations';

export interface VariableSpec {
  name: string;
  group: VariableGroup;
  /** The default as a user reads it (in the docs); "unset" when there is none. */
  default: string;
  /** The expected format, shown in every error about this variable. */
  format: string;
  /** A value that works (`NAME=example` in errors and docs). Never a real secret. */
  example: string;
  /** What it does. */
  meaning: string;
  /** Integers: the bounds and the default the parser applies. */
  int?: { def: number; min: number; max: number };
  /** Enumerations: the allowed values. */
  values?: readonly string[];
}

export const KNOWN_CONNECTORS = ['sandbox', 'stripe'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const MESSAGE_TRANSPORTS = ['local', 'http', 'rabbitmq'] as const;
export const AUTH_MODES = ['none', 'jwt'] as const;
export const DEFAULT_PRE_ORDER_EXPIRY_MS = 24 * 60 * 60_000;

const KEY_HOWTO = 'make a key with: openssl rand -base64 32';

/** The one table of environment variables (order = order in docs/configuration.md). */
export const VARIABLES: readonly VariableSpec[] = [
  // server
  { name: 'PORT', group: 'server', default: '3000', format: 'integer 0–65535 (0 = any free port)', example: '8080', meaning: 'TCP port the HTTP server listens on.', int: { def: 3000, min: 0, max: 65535 } },
  { name: 'HOST', group: 'server', default: '127.0.0.1', format: 'an IP address or host name', example: '0.0.0.0', meaning: 'Address the HTTP server binds to. A non-loopback address (e.g. `0.0.0.0`) switches `AUTH_MODE` to `jwt`, which then needs `AUTH_JWKS_URL` or `AUTH_JWT_SECRET`.' },
  { name: 'APP_BASE_URL', group: 'server', default: 'http://localhost:$PORT', format: 'http(s) URL, no trailing slash needed', example: 'https://pay.example.com', meaning: 'Public URL shoppers and the PSP reach this server at (payment page links, webhook URLs, redirects). Behind a reverse proxy: the proxy\'s public https URL.' },
  { name: 'APP_IDENTIFIER', group: 'server', default: 'open-acp-pay', format: 'letters, digits, "_", "." and "-" (1–100)', example: 'open-acp-pay', meaning: 'The app\'s identifier in ACP (the `appIdentifier` of messages and the catalog).' },
  { name: 'LOG_LEVEL', group: 'server', default: 'info', format: `one of ${LOG_LEVELS.join(', ')}`, example: 'warn', meaning: 'Minimum level of the JSON log lines written to stdout.', values: LOG_LEVELS },
  // database
  { name: 'DATABASE_URL', group: 'database', default: 'unset (embedded PGlite in `$DATA_DIR/pgdata`)', format: 'postgres://user:password@host:5432/db, postgresql://..., or memory://', example: 'postgres://pay:secret@db:5432/pay', meaning: 'PostgreSQL connection URL for production. Unset: the embedded PGlite database in `DATA_DIR`. `memory://`: an in-memory PGlite (tests; lost on exit).' },
  { name: 'DATABASE_PREPARED_STATEMENTS', group: 'database', default: 'on', format: 'on or off', example: 'off', meaning: 'The statements the server runs again and again are prepared once per connection (the database then skips parsing and planning them; on PostgreSQL about 40 % less database CPU per payment, README "Benchmark"); also on the embedded database. Set `off` behind a connection pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21, or 1.21+ with `max_prepared_statements = 0`).', values: ['on', 'off'] },
  { name: 'DATABASE_EMBEDDED_THREAD', group: 'database', default: 'on', format: 'on or off', example: 'off', meaning: 'The embedded database (PGlite, when `DATABASE_URL` is unset or `memory://`) runs in a worker thread of its own, so its SQL work (PostgreSQL compiled to WebAssembly) runs beside the HTTP server instead of blocking it (README "Benchmark": on two cores about 1.7 times the initialize-payment requests and 2.6 times the webhook acknowledgements per second). `off`: in the server\'s thread (one core; about 15 MB less memory when idle, 35 MB less at peak). No effect with PostgreSQL.', values: ['on', 'off'] },
  { name: 'DATA_DIR', group: 'database', default: './data', format: 'a directory path', example: '/var/lib/open-acp-pay', meaning: 'Where the embedded PGlite database (`pgdata/`) and the generated `encryption.key` live when `DATABASE_URL` is unset.' },
  // security
  { name: 'ENCRYPTION_KEYS', group: 'security', default: 'unset (embedded: generated into `$DATA_DIR/encryption.key`)', format: 'id:base64key[,id:base64key...], each key 32 random bytes in base64; the first key encrypts, all decrypt', example: 'k1:<output of openssl rand -base64 32>', meaning: `Key ring (AES-256-GCM) that encrypts tenant secrets (PSP keys, webhook secrets) at rest. Required with PostgreSQL so that every instance shares it; ${KEY_HOWTO}. See "Key rotation" in docs/operate.md.` },
  { name: 'AUTH_MODE', group: 'security', default: '`none` on a loopback `HOST`, else `jwt`', format: 'none or jwt (none only on a loopback HOST)', example: 'jwt', meaning: 'How calls from the shop and the Event Platform are authenticated. `jwt` requires `Authorization: Bearer <JWT>`, verified with `AUTH_JWKS_URL` or `AUTH_JWT_SECRET`.', values: AUTH_MODES },
  { name: 'AUTH_JWKS_URL', group: 'security', default: 'unset', format: 'http(s) URL of a JSON Web Key Set', example: 'https://auth.example.com/.well-known/jwks.json', meaning: 'Where the public keys (RS256/ES256) that verify bearer tokens are fetched; cached and refreshed on an unknown `kid`.' },
  { name: 'AUTH_JWT_SECRET', group: 'security', default: 'unset', format: 'a shared secret of at least 32 characters (HS256)', example: '<output of openssl rand -base64 48>', meaning: 'Shared HS256 secret that verifies bearer tokens, instead of `AUTH_JWKS_URL`.' },
  { name: 'AUTH_AUDIENCE', group: 'security', default: 'aop-app', format: 'a string', example: 'aop-app', meaning: 'The `aud` a bearer token must contain.' },
  { name: 'AUTH_ISSUER', group: 'security', default: 'unset (not checked)', format: 'a string', example: 'https://auth.example.com/', meaning: 'When set, the `iss` a bearer token must carry.' },
  // connectors
  { name: 'CONNECTOR', group: 'connectors', default: 'sandbox', format: `one of ${KNOWN_CONNECTORS.join(', ')}`, example: 'stripe', meaning: 'The PSP connector new tenants are configured with.', values: KNOWN_CONNECTORS },
  { name: 'CONNECTORS_ENABLED', group: 'connectors', default: 'the value of `CONNECTOR`', format: `comma-separated list of ${KNOWN_CONNECTORS.join(', ')}`, example: 'sandbox,stripe', meaning: 'Every connector whose tenants and payments this deployment serves (always includes `CONNECTOR`).' },
  { name: 'STRIPE_API_BASE', group: 'connectors', default: 'https://api.stripe.com', format: 'http(s) URL', example: 'https://api.stripe.com', meaning: 'Base URL of the Stripe API (change only for a Stripe mock in tests).' },
  { name: 'STRIPE_JS_URL', group: 'connectors', default: 'https://js.stripe.com/v3/', format: 'http(s) URL', example: 'https://js.stripe.com/v3/', meaning: 'URL of Stripe.js loaded by the Stripe payment page.' },
  { name: 'STRIPE_MAX_DECLINED_ATTEMPTS', group: 'connectors', default: '5', format: 'integer 1–100', example: '5', meaning: 'Declined card attempts allowed on one Stripe payment page before the payment fails.', int: { def: 5, min: 1, max: 100 } },
  // messaging
  { name: 'MESSAGE_TRANSPORT', group: 'messaging', default: 'local', format: `one of ${MESSAGE_TRANSPORTS.join(', ')}`, example: 'rabbitmq', meaning: 'How ACP messages travel: `local` (embedded Event Platform at `/event-platform/{channel}`), `http` (Spryker\'s Event Platform), `rabbitmq` (an AMQP broker).', values: MESSAGE_TRANSPORTS },
  { name: 'MESSAGE_BROKER_HTTP_SENDER_BASE_URL', group: 'messaging', default: 'unset', format: 'http(s) URL', example: 'https://events.example.com/publish', meaning: 'With `MESSAGE_TRANSPORT=http`: base URL outgoing messages are POSTed to (`{base}/{channel}`). Required there.' },
  { name: 'MESSAGE_BROKER_HTTP_RECEIVER_BASE_URL', group: 'messaging', default: 'unset', format: 'http(s) URL', example: 'https://events.example.com/consume', meaning: 'With `MESSAGE_TRANSPORT=http`: base URL incoming commands are polled from (`{base}/{channel}`). Required there.' },
  { name: 'MESSAGE_BROKER_HTTP_HEADER_PREFIX', group: 'messaging', default: 'empty', format: 'empty, or letters followed by "-"', example: 'X-', meaning: 'Prefix of the message header names on the `http` transport (`X-` for older Event Platform senders).' },
  { name: 'EVENT_PLATFORM_TOKEN', group: 'messaging', default: 'unset', format: 'a bearer token', example: '<token issued for this app>', meaning: 'Static bearer token sent to the Event Platform (`http` transport).' },
  { name: 'EVENT_PLATFORM_TOKEN_URL', group: 'messaging', default: 'unset', format: 'http(s) URL of an OAuth2 token endpoint', example: 'https://auth.example.com/oauth/token', meaning: 'OAuth2 client-credentials endpoint the Event Platform token is fetched from (with `EVENT_PLATFORM_CLIENT_ID` and `EVENT_PLATFORM_CLIENT_SECRET`).' },
  { name: 'EVENT_PLATFORM_CLIENT_ID', group: 'messaging', default: 'unset', format: 'a string', example: 'open-acp-pay', meaning: 'OAuth2 client id for `EVENT_PLATFORM_TOKEN_URL`.' },
  { name: 'EVENT_PLATFORM_CLIENT_SECRET', group: 'messaging', default: 'unset', format: 'a string', example: '<client secret>', meaning: 'OAuth2 client secret for `EVENT_PLATFORM_TOKEN_URL`.' },
  { name: 'EVENT_PLATFORM_AUDIENCE', group: 'messaging', default: 'aop-event-platform', format: 'a string', example: 'aop-event-platform', meaning: 'A token whose `aud` contains this value is also accepted on `/event-platform/*`.' },
  { name: 'MESSAGE_CONSUMER_ID', group: 'messaging', default: 'the value of `APP_IDENTIFIER`', format: 'a string', example: 'open-acp-pay', meaning: 'Consumer id this app reads commands under (`http` transport, RabbitMQ queue names).' },
  { name: 'MESSAGE_POLL_INTERVAL_MS', group: 'messaging', default: '1000', format: 'integer of milliseconds, 10–3600000', example: '500', meaning: 'How often the outbox relay and the command poller look for work.', int: { def: 1000, min: 10, max: 3_600_000 } },
  { name: 'OUTBOX_MAX_RETRY_HOURS', group: 'messaging', default: '72', format: 'integer of hours, 24–8760', example: '72', meaning: 'How long an undeliverable outgoing message is retried before it is marked dead.', int: { def: 72, min: 24, max: 24 * 365 } },
  { name: 'AMQP_URL', group: 'messaging', default: 'unset', format: 'amqp:// or amqps:// URL', example: 'amqp://guest:guest@rabbitmq:5672', meaning: 'With `MESSAGE_TRANSPORT=rabbitmq`: the broker. Required there.' },
  { name: 'AMQP_EXCHANGE', group: 'messaging', default: 'acp', format: 'letters, digits, "_", ".", ":" and "-" (1–255)', example: 'acp', meaning: 'Topic exchange messages are published to (routing key = channel name).' },
  // security: operator console access (docs/console.md)
  { name: 'CONSOLE_USERS', group: 'security', default: 'unset (no local accounts)', format: 'comma-separated name:role:hash, role viewer or operator, hash from "npm run cli -- console hash-password"', example: 'alice:operator:scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', meaning: 'Local operator accounts of the console at `/console`. With any console login configured (this or `CONSOLE_OIDC_ISSUER`) every console page needs a login; on a loopback `HOST` without any, the console is open.' },
  { name: 'CONSOLE_SESSION_SECRET', group: 'security', default: 'unset (random per process; loopback only)', format: 'at least 32 characters', example: 'output-of-openssl-rand-base64-48-goes-here', meaning: 'Signs the console session cookies. Required off loopback when a console login is configured; the same value on every instance.' },
  { name: 'CONSOLE_OIDC_ISSUER', group: 'security', default: 'unset', format: 'http(s) URL of an OpenID Connect issuer (https off loopback)', example: 'https://login.example.com/realms/ops', meaning: 'Console single sign-on (authorization code flow with PKCE). Register the redirect URI `<APP_BASE_URL>/console/auth/callback`.' },
  { name: 'CONSOLE_OIDC_CLIENT_ID', group: 'security', default: 'unset', format: 'a string', example: 'acp-console', meaning: 'The console\'s client id at `CONSOLE_OIDC_ISSUER`. Required with it.' },
  { name: 'CONSOLE_OIDC_CLIENT_SECRET', group: 'security', default: 'unset (public client, PKCE only)', format: 'a string', example: '<client secret>', meaning: 'Client secret for `CONSOLE_OIDC_CLIENT_ID`, when the provider registered a confidential client.' },
  { name: 'CONSOLE_OIDC_ROLES_CLAIM', group: 'security', default: 'roles', format: 'an ID token claim name', example: 'roles', meaning: 'ID token claim (string or array) holding the console roles: containing `operator` makes the user an operator, anything else a viewer.' },
  // operations
  { name: 'PRE_ORDER_EXPIRY_MS', group: 'operations', default: '86400000 (24 h)', format: 'positive integer of milliseconds', example: '3600000', meaning: 'Pre-order payments never linked to an order are canceled (at the PSP and here) after this long.', int: { def: DEFAULT_PRE_ORDER_EXPIRY_MS, min: 1, max: Number.MAX_SAFE_INTEGER } },
  { name: 'WEBHOOK_INLINE_CONCURRENCY', group: 'operations', default: '4', format: 'integer 0–100', example: '8', meaning: 'Webhook requests one instance processes right after acknowledging them, at most this many at once; beyond that (and with 0) the webhook worker processes them at once from the inbox, so acknowledgements stay fast under load.', int: { def: 4, min: 0, max: 100 } },
  { name: 'WEBHOOK_ACK_FIRST_MS', group: 'operations', default: '100', format: 'integer of milliseconds, 0–10000', example: '500', meaning: 'Acknowledgements first: while more than 4 webhook requests of an instance wait for their answer (a burst), each webhook processing step of that instance (inline and the worker\'s) waits for them up to this long, so the PSP\'s answers get the CPU and connections; the inbox holds the events meanwhile. 0: off.', int: { def: 100, min: 0, max: 10_000 } },
  // sandbox
  { name: 'SANDBOX_PSP_URL', group: 'sandbox', default: 'unset (sandbox PSP in-process at `/sandbox`)', format: 'http(s) URL ending with /sandbox', example: 'http://127.0.0.1:4010/sandbox', meaning: 'A sandbox PSP running as its own process (`node dist/src/sandbox/main.js`) instead of in-process.' },
  { name: 'SANDBOX_WEBHOOK_DELAY_MS', group: 'sandbox', default: '0', format: 'integer of milliseconds, 0–3600000', example: '2000', meaning: 'Delay before the in-process sandbox PSP sends its webhooks (to watch the asynchronous path).', int: { def: 0, min: 0, max: 3_600_000 } },
  { name: 'SANDBOX_REFUND_SETTLE_MS', group: 'sandbox', default: '200', format: 'integer of milliseconds, 0–3600000', example: '200', meaning: 'How long a sandbox refund stays pending before it settles.', int: { def: 200, min: 0, max: 3_600_000 } },
  { name: 'SANDBOX_PUBLIC_URL', group: 'sandbox', default: 'http://localhost:$PORT', format: 'http(s) URL', example: 'http://psp.example.com:4010', meaning: 'Standalone sandbox PSP only (`node dist/src/sandbox/main.js`, default `PORT` 4010, default `DATA_DIR` `./data-sandbox`): the URL browsers reach it at.' },
];

const BY_NAME = new Map(VARIABLES.map((v) => [v.name, v]));

export function variableSpec(name: string): VariableSpec {
  const v = BY_NAME.get(name);
  if (!v) throw new Error(`config.ts: ${name} is not declared in VARIABLES`);
  return v;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    // `variable` may carry a note ("ENCRYPTION_KEYS (from /data/encryption.key)"); the table entry is its first word.
    const spec = BY_NAME.get(variable.split(' ')[0]!);
    super(spec ? `${variable}: ${problem}; expected ${spec.format}; example: ${spec.name}=${spec.example}` : `${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}
export type DatabaseConfig =
  | { kind: 'postgres'; url: string; /** Named (prepared) statements for repeated SQL; default on. */ preparedStatements?: boolean }
  | { kind: 'pglite'; dataDir: string; preparedStatements?: boolean; /** PGlite in a worker thread of its own; default on. */ thread?: boolean }
  | { kind: 'pglite-memory'; preparedStatements?: boolean; thread?: boolean };

export type AuthMode = (typeof AUTH_MODES)[number];
export type MessageTransport = (typeof MESSAGE_TRANSPORTS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

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
  /** PRE_ORDER_EXPIRY_MS: unlinked pre-order payments are canceled after this long. */
  preOrderExpiryMs: number;
  /** Webhook requests processed inline at once per instance (0: worker only). */
  webhookInlineConcurrency: number;
  /** WEBHOOK_ACK_FIRST_MS: how long a processing step waits for queueing webhook answers (0: off). */
  webhookAckFirstMs: number;
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


type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[variableSpec(name).name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** Integer variable: default and bounds from the table. */
function int(env: Env, name: string): number {
  const { int: bounds } = variableSpec(name);
  if (!bounds) throw new Error(`config.ts: ${name} has no integer bounds`);
  const v = str(env, name);
  if (v === undefined) return bounds.def;
  if (!/^[0-9]+$/.test(v)) throw new ConfigError(name, `must be an integer, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < bounds.min || n > bounds.max) throw new ConfigError(name, `must be between ${bounds.min} and ${bounds.max}, got ${v}`);
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

/** Enumerated variable: allowed values from the table. */
function oneOf<T extends string>(env: Env, name: string, def: T): T {
  const values = variableSpec(name).values ?? [];
  const v = str(env, name);
  if (v === undefined) return def;
  if (!values.includes(v)) throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${v}"`);
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
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) throw new ConfigError(name, `key "${id}" is not base64 (${KEY_HOWTO})`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32) throw new ConfigError(name, `key "${id}" must be 32 bytes, got ${key.length} (${KEY_HOWTO})`);
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
  const port = int(env, 'PORT');
  const host = str(env, 'HOST') ?? '127.0.0.1';
  if (!isIP(host.replace(/^\[|\]$/g, '')) && !/^[A-Za-z0-9.-]+$/.test(host)) throw new ConfigError('HOST', `is not a valid address: "${host}"`);

  const appBaseUrl = (url(env, 'APP_BASE_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const appIdentifier = str(env, 'APP_IDENTIFIER') ?? 'open-acp-pay';
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(appIdentifier)) throw new ConfigError('APP_IDENTIFIER', `may only contain letters, digits, "_", "." and "-", got "${appIdentifier}"`);

  const dataDir = str(env, 'DATA_DIR') ?? './data';
  const dbUrl = str(env, 'DATABASE_URL');
  let database: DatabaseConfig;
  const preparedStatements = oneOf<'on' | 'off'>(env, 'DATABASE_PREPARED_STATEMENTS', 'on') === 'on';
  const thread = oneOf<'on' | 'off'>(env, 'DATABASE_EMBEDDED_THREAD', 'on') === 'on';
  if (dbUrl === undefined) database = { kind: 'pglite', dataDir, preparedStatements, thread };
  else if (dbUrl === 'memory://') database = { kind: 'pglite-memory', preparedStatements, thread };
  else {
    url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
    database = { kind: 'postgres', url: dbUrl, preparedStatements };
  }

  const keysRaw = str(env, 'ENCRYPTION_KEYS');
  const encryptionKeys = keysRaw === undefined ? undefined : parseKeyRing(keysRaw);
  if (encryptionKeys === undefined && database.kind === 'postgres') {
    throw new ConfigError('ENCRYPTION_KEYS', `is required with a PostgreSQL DATABASE_URL (a generated local key would not be shared between instances; ${KEY_HOWTO})`);
  }

  const loopback = isLoopbackHost(host);
  const authModeSet = str(env, 'AUTH_MODE') !== undefined;
  const authMode = oneOf<AuthMode>(env, 'AUTH_MODE', loopback ? 'none' : 'jwt');
  if (authMode === 'none' && !loopback) throw new ConfigError('AUTH_MODE', `"none" is only allowed on a loopback HOST, got HOST "${host}" (set AUTH_JWKS_URL or AUTH_JWT_SECRET for jwt, or HOST=127.0.0.1)`);
  const authJwksUrl = url(env, 'AUTH_JWKS_URL', ['http:', 'https:']);
  const authJwtSecret = str(env, 'AUTH_JWT_SECRET');
  if (authJwtSecret !== undefined && authJwtSecret.length < 32) throw new ConfigError('AUTH_JWT_SECRET', `must be at least 32 characters, got ${authJwtSecret.length}`);
  if (authMode === 'jwt' && !authJwksUrl && !authJwtSecret) {
    throw new ConfigError(
      'AUTH_MODE',
      authModeSet
        ? 'jwt needs AUTH_JWKS_URL (e.g. AUTH_JWKS_URL=https://auth.example.com/.well-known/jwks.json) or AUTH_JWT_SECRET (at least 32 characters)'
        : `is jwt because HOST "${host}" is not a loopback address (anyone on the network could call the API), and jwt needs AUTH_JWKS_URL (e.g. AUTH_JWKS_URL=https://auth.example.com/.well-known/jwks.json) or AUTH_JWT_SECRET (at least 32 characters); for a local run use HOST=127.0.0.1`,
    );
  }

  const connector = oneOf<(typeof KNOWN_CONNECTORS)[number]>(env, 'CONNECTOR', 'sandbox');
  const messageTransport = oneOf<MessageTransport>(env, 'MESSAGE_TRANSPORT', 'local');
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
  if (!/^[A-Za-z0-9_.:-]{1,255}$/.test(amqpExchange)) throw new ConfigError('AMQP_EXCHANGE', `is not a valid exchange name: "${amqpExchange}"`);

  const logLevel = oneOf<LogLevel>(env, 'LOG_LEVEL', 'info');

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
    messagePollIntervalMs: int(env, 'MESSAGE_POLL_INTERVAL_MS'),
    outboxMaxRetryHours: int(env, 'OUTBOX_MAX_RETRY_HOURS'),
    amqpUrl,
    amqpExchange,
    connectorsEnabled: connectorsEnabled(env, connector),
    stripeApiBase: (url(env, 'STRIPE_API_BASE', ['http:', 'https:']) ?? 'https://api.stripe.com').replace(/\/+$/, ''),
    stripeJsUrl: url(env, 'STRIPE_JS_URL', ['http:', 'https:']) ?? 'https://js.stripe.com/v3/',
    stripeMaxDeclinedAttempts: int(env, 'STRIPE_MAX_DECLINED_ATTEMPTS'),
    preOrderExpiryMs: int(env, 'PRE_ORDER_EXPIRY_MS'),
    webhookInlineConcurrency: int(env, 'WEBHOOK_INLINE_CONCURRENCY'),
    webhookAckFirstMs: int(env, 'WEBHOOK_ACK_FIRST_MS'),
    sandboxPspUrl: url(env, 'SANDBOX_PSP_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    sandboxWebhookDelayMs: int(env, 'SANDBOX_WEBHOOK_DELAY_MS'),
    sandboxRefundSettleMs: int(env, 'SANDBOX_REFUND_SETTLE_MS'),
    logLevel,
    console: consoleConfig(env, loopback),
  };
}

/** The standalone sandbox PSP (`node dist/src/sandbox/main.js`): its own defaults (PORT 4010, DATA_DIR ./data-sandbox). */
export interface SandboxConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  logLevel: LogLevel;
  /** SANDBOX_PUBLIC_URL, undefined: http://localhost:$PORT (or the bound URL when PORT=0). */
  publicUrl: string | undefined;
  sandboxWebhookDelayMs: number;
  sandboxRefundSettleMs: number;
}

export function loadSandboxConfig(env: Env = process.env): SandboxConfig {
  const dbUrl = str(env, 'DATABASE_URL');
  if (dbUrl !== undefined && dbUrl !== 'memory://') url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const database: DatabaseConfig =
    dbUrl === undefined ? { kind: 'pglite', dataDir: str(env, 'DATA_DIR') ?? './data-sandbox' } : dbUrl === 'memory://' ? { kind: 'pglite-memory' } : { kind: 'postgres', url: dbUrl };
  return {
    port: str(env, 'PORT') === undefined ? 4010 : int(env, 'PORT'),
    host: str(env, 'HOST') ?? '127.0.0.1',
    database,
    logLevel: oneOf<LogLevel>(env, 'LOG_LEVEL', 'info'),
    publicUrl: url(env, 'SANDBOX_PUBLIC_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    sandboxWebhookDelayMs: int(env, 'SANDBOX_WEBHOOK_DELAY_MS'),
    sandboxRefundSettleMs: int(env, 'SANDBOX_REFUND_SETTLE_MS'),
  };
}

/**
 * Assembles and runs the server: database, migrations, key ring, connector, HTTP, background workers;
 * and stops them in order on shutdown.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { AppDeps } from './app/context.js';
import { parseKeyRing, type AppConfig, type EncryptionKey } from './config.js';
import { allSecretFields, ConnectorRegistry } from './connectors/registry.js';
import type { InProcessHttp } from './connectors/types.js';
import { inProcessHttp } from './http/in-process.js';
import { buildServer } from './http/server.js';
import { createWorkers } from './workers.js';
import { migrate, openDb, setAfterCommitErrorSink } from './store/db.js';
import { checkKeyRing } from './store/key-check.js';
import { TenantCache } from './store/tenant-cache.js';
import { backfillTenantConnector } from './store/tenants.js';
import { SecretBox } from './store/secret-box.js';

/** A background loop (outbox relay, webhook retries, ...). `stop` resolves once in-flight work is flushed. */
export interface Worker {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
}

/** After this long, HTTP connections still open at shutdown are closed (in-flight requests have had their time). */
export const SHUTDOWN_REQUESTS_MS = 5_000;

export interface Runtime {
  app: FastifyInstance;
  deps: AppDeps;
  /** Where this process listens, e.g. `http://127.0.0.1:3000`. */
  listenUrl: string;
  workers: Worker[];
  close(): Promise<void>;
}

/** Log paths never written in clear: the authorization header and every secret field any connector declares. */
export const SECRET_LOG_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  ...allSecretFields().flatMap((f) => [f, `*.${f}`]),
];

export function createLogger(config: AppConfig): Logger {
  return pino({ level: config.logLevel, redact: { paths: SECRET_LOG_PATHS, censor: '********' } });
}

/** The key ring: ENCRYPTION_KEYS, else a key generated once into DATA_DIR (embedded mode), else an ephemeral one (memory://). */
export function loadKeyRing(config: AppConfig, log: Logger): EncryptionKey[] {
  if (config.encryptionKeys) return config.encryptionKeys;
  if (config.database.kind === 'pglite-memory') return [{ id: 'ephemeral', key: randomBytes(32) }];
  const file = join(config.dataDir, 'encryption.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, `local:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    log.warn({ file }, 'ENCRYPTION_KEYS is not set: generated a local encryption key; set ENCRYPTION_KEYS in production');
  }
  return parseKeyRing(readFileSync(file, 'utf8').trim(), `ENCRYPTION_KEYS (from ${file})`);
}

export async function startRuntime(config: AppConfig, opts: { log?: Logger; startWorkers?: boolean } = {}): Promise<Runtime> {
  const log = opts.log ?? createLogger(config);
  let listenUrl = `http://127.0.0.1:${config.port}`;
  let ownRoutes: InProcessHttp | undefined; // set once the server listens
  const connectors = new ConnectorRegistry(config, { config, listenUrl: () => listenUrl, inProcessHttp: () => ownRoutes, log });
  setAfterCommitErrorSink((err) => log.error({ err }, 'after-commit callback failed (the transaction is committed)'));
  const db = await openDb(config.database);
  let secrets: SecretBox;
  try {
    await migrate(db, connectors.migrationDirs());
    await backfillTenantConnector(db, config.connector);
    secrets = new SecretBox(loadKeyRing(config, log));
    await checkKeyRing(db, secrets); // a wrong ENCRYPTION_KEYS stops here with one line naming the key id
  } catch (err) {
    await db.close();
    throw err;
  }
  const tenants = new TenantCache(db);
  try {
    await tenants.start();
  } catch (err) {
    await db.close();
    throw err;
  }
  const deps: AppDeps = { config, db, log, secrets, connectors, tenants };
  let app: FastifyInstance | undefined;
  let address: string;
  try {
    app = await buildServer(deps);
    address = await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    // e.g. EADDRINUSE: release the database (PGlite holds the data dir) before reporting
    await app?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  const port = Number(new URL(address).port);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host.replace(/^\[|\]$/g, '')}]` : config.host;
  listenUrl = `http://${host}:${port}`;
  ownRoutes = inProcessHttp(app);
  // PORT=0 (tests): the derived default base URL would name port 0; an explicit APP_BASE_URL is kept.
  if (config.port === 0 && config.appBaseUrl === 'http://localhost:0') config.appBaseUrl = listenUrl;

  let workers: Worker[];
  try {
    workers = createWorkers(deps);
  } catch (err) {
    await app.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  if (opts.startWorkers !== false) for (const w of workers) w.start();

  const server = app;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // 1. Stop taking work: no new connections; in-flight requests (bounded by their own budgets) may finish, and
      //    after SHUTDOWN_REQUESTS_MS the remaining connections are closed.
      const serverClosed = server.close();
      const requestsCut = setTimeout(() => server.server.closeAllConnections?.(), SHUTDOWN_REQUESTS_MS);
      requestsCut.unref();
      // 2. At the same time every worker stops: each leaves the rest of its batch (releasing those leases) and finishes
      //    the item in hand. They stop in parallel so one busy worker does not hold the others.
      await Promise.all(
        workers.map(async (w) => {
          try {
            await w.stop();
          } catch (err) {
            log.error({ err, worker: w.name }, 'worker did not stop cleanly');
          }
        }),
      );
      await serverClosed;
      clearTimeout(requestsCut);
      await tenants.stop();
      await db.close();
    })());

  return { app: server, deps, listenUrl, workers, close };
}

/**
 * The sandbox PSP on its own (no app): its own HTTP server, its own database (PGlite or PostgreSQL) holding only the
 * `sandbox_*` tables, and its webhook dispatcher. Point the app at it with `SANDBOX_PSP_URL=<url>/sandbox`.
 *
 * Environment (parsed by `loadSandboxConfig` in src/config.ts): PORT (4010), HOST (127.0.0.1), SANDBOX_PUBLIC_URL (how
 * browsers reach this process, default http://localhost:$PORT), DATABASE_URL (postgres://..., memory://, unset = PGlite
 * in DATA_DIR, default ./data-sandbox), SANDBOX_WEBHOOK_DELAY_MS (0), SANDBOX_REFUND_SETTLE_MS (200), LOG_LEVEL (info).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import qs from 'qs';
import { loadSandboxConfig } from '../config.js';
import type { Worker } from '../runtime.js';
import { listMigrations, openDb, type Db } from '../store/db.js';
import { sandboxMigrationsDir } from '../paths.js';
import { sandboxWorker } from './dispatcher.js';
import { SANDBOX_PREFIX, sandboxRoutes } from './routes.js';

export interface StandaloneSandbox {
  app: FastifyInstance;
  db: Db;
  /** e.g. `http://127.0.0.1:4010` (the API is under `${url}/sandbox`). */
  url: string;
  worker: Worker;
  close(): Promise<void>;
}

/** Applies only the sandbox's migration (tracked in `schema_migrations` like the app's). */
export async function migrateSandbox(db: Db): Promise<void> {
  const m = listMigrations([sandboxMigrationsDir]).find((x) => x.version === '002_sandbox');
  if (!m) throw new Error('migrations/sandbox/002_sandbox.sql is missing');
  await db.session(async (s) => {
    await s.query('SELECT pg_advisory_lock($1)', [7270012]);
    try {
      await s.query('CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const done = (await s.query('SELECT 1 FROM schema_migrations WHERE version=$1', [m.version])).rows.length > 0;
      if (done) return;
      await s.query('BEGIN');
      try {
        await s.exec(m.sql);
        await s.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
        await s.query('COMMIT');
      } catch (err) {
        await s.query('ROLLBACK');
        throw err;
      }
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [7270012]);
    }
  });
}

export async function startStandaloneSandbox(env: Record<string, string | undefined> = process.env, log?: Logger): Promise<StandaloneSandbox> {
  const sc = loadSandboxConfig(env);
  const { port, host, database } = sc;
  const logger = log ?? pino({ level: sc.logLevel, redact: { paths: ['req.headers.authorization', '*.secret', '*.clientSecret', '*.card'], censor: '********' } });
  const config = {
    appBaseUrl: sc.publicUrl ?? `http://localhost:${port}`,
    sandboxWebhookDelayMs: sc.sandboxWebhookDelayMs,
    sandboxRefundSettleMs: sc.sandboxRefundSettleMs,
  };

  const db = await openDb(database);
  await migrateSandbox(db);
  const app = Fastify({ loggerInstance: logger as unknown as FastifyBaseLogger, bodyLimit: 1024 * 1024, forceCloseConnections: 'idle' });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch {
      const err = new Error('The request body is not valid JSON.') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, qs.parse(body as string, { depth: 5 })));
  app.get('/health', async () => ({ status: 'ok' }));
  await sandboxRoutes(app, { db, log: logger, config });
  const address = await app.listen({ port, host });
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${new URL(address).port}`;
  if (port === 0 && !sc.publicUrl) config.appBaseUrl = url;

  const worker = sandboxWorker({ db, log: logger, config });
  worker.start();
  let closing: Promise<void> | undefined;
  return {
    app,
    db,
    url,
    worker,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await worker.stop();
        await db.close();
      })()),
  };
}

export { SANDBOX_PREFIX };

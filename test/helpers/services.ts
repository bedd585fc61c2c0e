/**
 * Real services for tests. Outside CI a missing service skips its tests with a printed reason;
 * with REQUIRE_POSTGRES=1 / REQUIRE_RABBITMQ=1 / REQUIRE_BROWSER=1 (set by .ci/run) it fails them instead.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { migrate, openDb, type Db } from '../../src/store/db.js';

export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const AMQP_TEST_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const required = (name: string): boolean => ['1', 'true', 'yes'].includes((process.env[name] ?? '').toLowerCase());

async function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function availability(name: string, envFlag: string, check: () => Promise<boolean>): Promise<boolean> {
  const ok = await check().catch(() => false);
  if (ok) return true;
  if (required(envFlag)) throw new Error(`${name} is required (${envFlag}=1) but not reachable`);
  process.stdout.write(`[skip] ${name} not available; its tests are skipped (set ${envFlag}=1 to make them fail instead)\n`);
  return false;
}

export const postgresAvailable = (): Promise<boolean> =>
  availability('PostgreSQL', 'REQUIRE_POSTGRES', async () => {
    const u = new URL(POSTGRES_ADMIN_URL);
    if (!(await tcpOpen(u.hostname, Number(u.port || 5432)))) return false;
    const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await c.connect();
    await c.end();
    return true;
  });

export const rabbitAvailable = (): Promise<boolean> =>
  availability('RabbitMQ', 'REQUIRE_RABBITMQ', async () => {
    const u = new URL(AMQP_TEST_URL);
    return tcpOpen(u.hostname, Number(u.port || 5672));
  });

export const browserAvailable = (): Promise<boolean> => availability('Chromium', 'REQUIRE_BROWSER', async () => existsSync(CHROMIUM_PATH));

/** Creates a fresh PostgreSQL database and returns its URL and a drop function. */
export async function createTempDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `oap_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(POSTGRES_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh PostgreSQL database opened through the Db port (not migrated); `cleanup` closes and drops it. */
export async function openTempPostgresDb(): Promise<{ db: Db; cleanup: () => Promise<void> }> {
  const tmp = await createTempDatabase();
  const db = await openDb({ kind: 'postgres', url: tmp.url });
  return {
    db,
    cleanup: async () => {
      await db.close();
      await tmp.drop();
    },
  };
}

/**
 * A fresh, migrated PostgreSQL database for the enclosing `describe`: created before its tests, closed and dropped
 * after them. Returns its getter (the database exists once the tests run).
 */
export function migratedTempDatabase(): () => Db {
  let temp: Awaited<ReturnType<typeof openTempPostgresDb>> | undefined;
  beforeAll(async () => {
    temp = await openTempPostgresDb();
    await migrate(temp.db);
  });
  afterAll(async () => {
    await temp?.cleanup();
  });
  return () => temp!.db;
}

/** Debian Chromium through playwright-core on a fresh profile directory (removed by `context.close()`). */
export async function launchChromium(): Promise<import('playwright-core').BrowserContext> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'oap-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const close = context.close.bind(context);
  context.close = async (options) => {
    await close(options);
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch {
      /* a leftover temp profile is harmless */
    }
  };
  return context;
}

/**
 * Starts the whole server (HTTP on a free port, in-memory PGlite by default, sandbox PSP in-process)
 * the way `npm start` does, for tests that go through the public surface.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger, startRuntime, type Runtime } from '../../src/runtime.js';

export const TEST_KEYS = `k1:${randomBytes(32).toString('base64')}`;

export interface TestApp extends Runtime {
  url: string;
  /** fetch against the app with JSON defaults; `tenant` sets X-Tenant-Identifier. */
  request(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string>; tenant?: string; raw?: string }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
}

/** `opts.log`: a logger of the test's own (e.g. one that keeps every line to search it). */
export async function startTestApp(env: Record<string, string> = {}, opts: { startWorkers?: boolean; log?: Logger } = {}): Promise<TestApp> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: 'memory://', ENCRYPTION_KEYS: TEST_KEYS, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  const rt = await startRuntime(config, { log: opts.log ?? createLogger(config), startWorkers: opts.startWorkers });
  const url = rt.listenUrl;
  const request: TestApp['request'] = async (path, init = {}) => {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.tenant !== undefined) headers['x-tenant-identifier'] = init.tenant;
    let body: string | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    const res = await fetch(url + path, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    const text = await res.text();
    let parsed: any = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  return Object.assign(rt, { url, request });
}

/**
 * Statements of the app's periodic housekeeping, which may fall into any traced window (the slower the machine, the
 * longer the window): the table-statistics worker (src/store/maintenance.ts), the webhook inbox's expiry of events
 * never linked to an order, and the reconciliation job's claims of due records (every second).
 */
const HOUSEKEEPING = [
  /FROM pg_class c JOIN pg_namespace n/,
  /pg_try_advisory_xact_lock\(7270012, 3\)/,
  /^\s*(SET LOCAL default_statistics_target|ANALYZE)\b/,
  /SET state = 'expired', reason = 'no order linked/,
  /^\s*UPDATE (payment_operations|refunds) SET next_attempt_at = \$1\s+WHERE id IN \(SELECT id FROM/,
  /^\s*SELECT id, attempts FROM refunds WHERE status IN/,
  /^\s*SELECT \* FROM transfers WHERE status = 'pending' AND created_at </,
];

/** The SQL texts `fn` sends through the app's Db (its statement trace, switched off again afterwards), housekeeping left out. */
export async function statementsOf(app: Pick<Runtime, 'deps'>, fn: () => Promise<unknown>): Promise<string[]> {
  const trace: string[] = [];
  app.deps.db.stats.trace = trace;
  try {
    await fn();
  } finally {
    app.deps.db.stats.trace = undefined;
  }
  return trace.filter((q) => !HOUSEKEEPING.some((h) => h.test(q)));
}

/**
 * Replaces a tenant's stored secrets with plain SQL (as a restore or another writer would) and waits until the app's
 * tenant cache serves the new row: the cache learns of such a change through the row's notification, not at once.
 */
export async function setTenantSecrets(app: Pick<Runtime, 'deps'>, tenant: string, secrets: Record<string, string>): Promise<void> {
  await app.deps.db.query('UPDATE tenants SET secrets = $2::jsonb WHERE tenant_identifier = $1', [tenant, JSON.stringify(secrets)]);
  await expect.poll(async () => (await app.deps.tenants.get(tenant))?.secrets, { timeout: 10_000 }).toEqual(secrets);
}

/** The tenant's stored (encrypted) secrets. */
export async function tenantSecrets(app: Pick<Runtime, 'deps'>, tenant: string): Promise<Record<string, string>> {
  return (await app.deps.db.query<{ secrets: Record<string, string> }>('SELECT secrets FROM tenants WHERE tenant_identifier = $1', [tenant])).rows[0]!.secrets;
}

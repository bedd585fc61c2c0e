/**
 * `npm run bench`: throughput and latency of the app against a floor, on PGlite and on PostgreSQL.
 *
 * Floor: a bare Fastify route doing one insert-and-update transaction through the same Db port (no hooks,
 * no validation, no app logic): the best any endpoint that writes can do on this database.
 * Targets: real endpoints of the full server (`startRuntime`), each reported with ratio = target / floor throughput.
 * Add a target by appending to `targets` (setup prepares tenants etc. and returns the request to repeat).
 *
 * Load: CONCURRENCY clients (keep-alive fetch) each sending back to back for DURATION_MS after a warm-up.
 * Env: BENCH_CONCURRENCY (16), BENCH_DURATION_MS (4000), BENCH_WARMUP_MS (1000), BENCH_POSTGRES_URL
 * (admin URL, default postgres://postgres@127.0.0.1:5432/postgres; skipped when unreachable).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import pg from 'pg';
import { loadConfig, type DatabaseConfig } from '../src/config.js';
import { createLogger, startRuntime, type Runtime } from '../src/runtime.js';
import { openDb, type Db } from '../src/store/db.js';
import { runConsolePaymentsBench } from './console-payments.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 4000);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);
const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ENCRYPTION_KEYS = `bench:${randomBytes(32).toString('base64')}`;

export interface BenchRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A database a run uses: an env fragment for the full app and a DatabaseConfig for the floor. */
export interface BenchDatabase {
  label: 'PGlite' | 'PostgreSQL';
  /** A fresh, empty database each call. */
  fresh(): Promise<{ env: Record<string, string>; config: DatabaseConfig; drop(): Promise<void> }>;
}

export interface Target {
  name: string;
  /** Called once on a started app; returns the request for client `client`'s `i`-th call. */
  setup(app: Runtime): Promise<(client: number, i: number) => BenchRequest>;
}

/** Sample configure body accepted by the sandbox connector form. */
export function configureBody(): unknown {
  return {
    data: {
      type: 'configuration',
      attributes: { configuration: JSON.stringify({ secretKey: 'sk_sandbox_benchmark01', webhookSecret: 'whsec_0123456789abcdef', isLive: false }) },
    },
  };
}

export const targets: Target[] = [
  {
    name: 'POST /private/configure',
    async setup() {
      // one tenant per client: repeated configure of an unchanged form is the idempotent path after the first call
      return (client) => ({
        path: '/private/configure',
        method: 'POST',
        headers: { 'x-tenant-identifier': `bench-tenant-${client}` },
        body: configureBody(),
      });
    },
  },
  {
    name: 'POST /private/initialize-payment',
    async setup(app) {
      const tenant = 'bench-init-tenant';
      const res = await fetch(`${app.listenUrl}/private/configure`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tenant-identifier': tenant },
        body: JSON.stringify(configureBody()),
      });
      if (res.status !== 200) throw new Error(`bench setup: configure answered ${res.status}`);
      const run = randomBytes(4).toString('hex');
      return (client, i) => ({
        path: '/private/initialize-payment',
        method: 'POST',
        headers: { 'x-tenant-identifier': tenant },
        body: {
          orderData: {
            orderReference: `BENCH-${run}-${client}-${i}`,
            grandTotal: 12345,
            currencyCode: 'EUR',
            paymentMethod: 'credit-card',
            items: [{ idSalesOrderItem: i + 1, name: 'Shirt', sku: 'S-1', quantity: 1, unitPrice: 12345 }],
          },
          redirectSuccessUrl: 'https://shop.example/en/payment/order-success',
          redirectCancelUrl: 'https://shop.example/en/payment/order-cancel',
          checkoutSummaryPageUrl: 'https://shop.example/en/checkout/summary',
        },
      });
    },
  },
];

interface Result {
  requests: number;
  errors: number;
  statuses: Map<number, number>;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Runs CONCURRENCY loops against base URL; only requests started after the warm-up are measured. */
async function load(baseUrl: string, next: (client: number, i: number) => BenchRequest): Promise<Result> {
  const start = performance.now();
  const measureFrom = start + WARMUP_MS;
  const end = measureFrom + DURATION_MS;
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let errors = 0;
  const client = async (c: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const req = next(c, i);
      let status = 0;
      try {
        const res = await fetch(baseUrl + req.path, {
          method: req.method ?? 'GET',
          headers: { ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(req.headers ?? {}) },
          body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= end) {
        latencies.push(t1 - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status < 200 || status >= 300) errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, c) => client(c)));
  latencies.sort((a, b) => a - b);
  const seconds = DURATION_MS / 1000;
  return { requests: latencies.length, errors, statuses, seconds, throughput: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function runFloor(db: Db): Promise<Result> {
  await db.query('CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, tenant text NOT NULL, payload jsonb NOT NULL, n integer NOT NULL DEFAULT 0, updated_at timestamptz)');
  const app = Fastify({ logger: false });
  app.post('/floor', async (req) => {
    const body = req.body as { tenant?: string };
    return db.tx(async (tx) => {
      const r = await tx.query<{ id: number }>('INSERT INTO bench_floor (tenant, payload) VALUES ($1, $2) RETURNING id', [body.tenant ?? 'x', JSON.stringify(body)]);
      await tx.query('UPDATE bench_floor SET n = n + 1, updated_at = now() WHERE id = $1', [r.rows[0]!.id]);
      return { id: r.rows[0]!.id };
    });
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    return await load(address, (client, i) => ({ path: '/floor', method: 'POST', body: { tenant: `bench-${client}`, i } }));
  } finally {
    await app.close();
  }
}

async function runTarget(target: Target, env: Record<string, string>): Promise<Result> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ENCRYPTION_KEYS, LOG_LEVEL: 'silent', ...env });
  const rt = await startRuntime(config, { log: createLogger(config) });
  try {
    const next = await target.setup(rt);
    return await load(rt.listenUrl, next);
  } finally {
    await rt.close();
  }
}

const pglite: BenchDatabase = {
  label: 'PGlite',
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'oap-bench-'));
    return {
      env: { DATA_DIR: dir },
      config: { kind: 'pglite', dataDir: dir },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

const postgres: BenchDatabase = {
  label: 'PostgreSQL',
  async fresh() {
    const name = `oap_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(POSTGRES_ADMIN_URL);
    u.pathname = `/${name}`;
    return {
      env: { DATABASE_URL: u.toString() },
      config: { kind: 'postgres', url: u.toString() },
      drop: async () => {
        const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  },
};

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function row(cells: string[]): string {
  const widths = [28, 11, 9, 9, 9, 8, 24];
  return cells.map((c, i) => c.padEnd(widths[i] ?? 10)).join(' ');
}

async function main(): Promise<void> {
  const t0 = Date.now();
  process.stdout.write(`Open ACP Pay bench: ${CONCURRENCY} concurrent clients, ${WARMUP_MS} ms warm-up + ${DURATION_MS} ms measured per line, node ${process.version}\n\n`);
  process.stdout.write(row(['target', 'database', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'statuses']) + '\n');
  const databases: BenchDatabase[] = [pglite];
  if (await postgresReachable()) databases.push(postgres);
  else process.stdout.write(`(PostgreSQL at ${POSTGRES_ADMIN_URL.replace(/\/\/[^@]*@/, '//')} not reachable: skipped)\n`);

  for (const database of databases) {
    const floorDb = await database.fresh();
    let floor: Result;
    try {
      const db = await openDb(floorDb.config);
      try {
        floor = await runFloor(db);
      } finally {
        await db.close();
      }
    } finally {
      await floorDb.drop();
    }
    const statuses = (r: Result): string => [...r.statuses].map(([s, n]) => `${s === 0 ? 'err' : s}×${n}`).join(' ');
    process.stdout.write(row(['floor (insert+update tx)', database.label, fmt(floor.throughput, 0), fmt(floor.p50, 2), fmt(floor.p99, 2), '1.00', statuses(floor)]) + '\n');
    for (const target of targets) {
      const fresh = await database.fresh();
      try {
        const r = await runTarget(target, fresh.env);
        process.stdout.write(row([target.name, database.label, fmt(r.throughput, 0), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.throughput / floor.throughput, 2), statuses(r)]) + '\n');
      } catch (err) {
        process.stdout.write(row([target.name, database.label, 'failed', '', '', '', (err as Error).message.split('\n')[0]!]) + '\n');
      } finally {
        await fresh.drop();
      }
    }
  }
  if (databases.includes(postgres)) await runConsolePaymentsBench(); // console payments list at 1,000,000 payments (issue 11)
  process.stdout.write(`\ndone in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

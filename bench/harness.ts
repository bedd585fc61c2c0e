/**
 * What the benchmark lines share: the databases (a fresh PGlite data dir or PostgreSQL database per use), the app
 * started in this process, the sandbox PSP started as its own process, and the load generator process (load.ts).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { loadConfig, type DatabaseConfig } from '../src/config.js';
import { createLogger, startRuntime, type Runtime } from '../src/runtime.js';
import type { Db } from '../src/store/db.js';
import { INIT_AMOUNT, initializeBody, type Job, type Order, type Summary } from './load.js';
import { createTempDatabase, POSTGRES_ADMIN_URL, postgresReachable } from './postgres.js';
import { benchAppEnv } from './app-env.js';

const here = dirname(fileURLToPath(import.meta.url));

export { POSTGRES_ADMIN_URL };
export const ENCRYPTION_KEYS = `bench:${randomBytes(32).toString('base64')}`;
export const SECRET_KEY = 'sk_sandbox_benchmark01';
export const WEBHOOK_SECRET = 'whsec_0123456789abcdef';

/** Sample configure body accepted by the sandbox connector form. */
export function configureBody(): unknown {
  return {
    data: {
      type: 'configuration',
      attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, isLive: false }) },
    },
  };
}

export interface FreshDatabase {
  /** Env fragment for the app (DATA_DIR or DATABASE_URL). */
  env: Record<string, string>;
  config: DatabaseConfig;
  drop(): Promise<void>;
}

/** A database a run uses. */
export interface BenchDatabase {
  label: 'PGlite' | 'PostgreSQL';
  /** A fresh, empty database each call. */
  fresh(): Promise<FreshDatabase>;
}

export const pglite: BenchDatabase = {
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

export { postgresReachable };

export const postgres: BenchDatabase = {
  label: 'PostgreSQL',
  async fresh() {
    const tmp = await createTempDatabase('oap_bench');
    return { env: { DATABASE_URL: tmp.url }, config: { kind: 'postgres', url: tmp.url }, drop: tmp.drop };
  },
};

/** Runs one job in a fresh load-generator process and returns its summary. */
export function runLoad(job: Job): Promise<Summary> {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answered = false;
    child.once('message', (m: { ok: boolean; summary?: Summary; error?: string }) => {
      answered = true;
      // NaN travels as null over IPC (JSON): back to NaN
      if (m.ok) resolve({ ...m.summary!, p50: m.summary!.p50 ?? NaN, p99: m.summary!.p99 ?? NaN, max: m.summary!.max ?? NaN });
      else reject(new Error(`load generator failed: ${m.error}`));
    });
    child.once('exit', (code) => {
      if (!answered) reject(new Error(`load generator exited with ${code} before answering`));
    });
    child.once('error', reject);
    child.send(job);
  });
}

/** The full server in this process (`startRuntime`), on a fresh database it drops on close. */
export interface BenchApp {
  rt: Runtime;
  url: string;
  /** Base URL of the sandbox PSP API (`.../sandbox`). */
  sandboxUrl: string;
  close(): Promise<void>;
}

export async function startApp(database: BenchDatabase, opts: { env?: Record<string, string>; startWorkers?: boolean } = {}): Promise<BenchApp> {
  const fresh = await database.fresh();
  try {
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ENCRYPTION_KEYS, LOG_LEVEL: process.env.BENCH_APP_LOG_LEVEL ?? 'silent', ...fresh.env, ...benchAppEnv(), ...(opts.env ?? {}) });
    const rt = await startRuntime(config, { log: createLogger(config), startWorkers: opts.startWorkers });
    return {
      rt,
      url: rt.listenUrl,
      sandboxUrl: config.sandboxPspUrl ?? `${rt.listenUrl}/sandbox`,
      close: async () => {
        try {
          await rt.close();
        } finally {
          await fresh.drop();
        }
      },
    };
  } catch (err) {
    await fresh.drop();
    throw err;
  }
}

/** The standalone sandbox PSP (`node dist/src/sandbox/main.js`) in its own process, on its own fresh database. */
export interface SandboxProcess {
  /** `http://127.0.0.1:<port>/sandbox`: the value for SANDBOX_PSP_URL. */
  url: string;
  child: ChildProcess;
  close(): Promise<void>;
}

export async function startSandboxProcess(database: BenchDatabase, env: Record<string, string> = {}): Promise<SandboxProcess> {
  const fresh = await database.fresh();
  // BENCH_PSP_NODE_ARGS: Node flags for the PSP process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/psp` to profile it
  const nodeArgs = (process.env.BENCH_PSP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(here, '..', 'src', 'sandbox', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...fresh.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer): void => {
    out += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const m = /listening on (http:\/\/\S+\/sandbox)/.exec(out);
        if (m) resolve(m[1]!);
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => reject(new Error(`sandbox PSP exited with ${code}: ${out.slice(0, 500)}`)));
    });
    return {
      url,
      child,
      close: async () => {
        if (child.exitCode === null) {
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          child.kill('SIGTERM');
          await exited;
        }
        await fresh.drop();
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    await fresh.drop();
    throw err;
  }
}

/** Runs fn on an app pointed (SANDBOX_PSP_URL) at a sandbox PSP process; both on fresh databases of `database`'s kind. */
export async function withPspProcess<T>(
  database: BenchDatabase,
  opts: { pspEnv?: Record<string, string>; startWorkers?: boolean },
  fn: (app: BenchApp) => Promise<T>,
): Promise<T> {
  const psp = await startSandboxProcess(database, opts.pspEnv);
  try {
    const app = await startApp(database, { env: { SANDBOX_PSP_URL: psp.url }, startWorkers: opts.startWorkers });
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  } finally {
    await psp.close();
  }
}

export interface CallResult {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

/** One request from this process (set-up and the statement counts; never for timed load). */
export async function call(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: init.method ?? (init.body !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
    headers,
    body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
    redirect: 'manual',
  });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

export async function expectStatus(r: Promise<CallResult> | CallResult, status: number, what: string): Promise<CallResult> {
  const res = await r;
  if (res.status !== status) throw new Error(`bench: ${what} answered ${res.status} (expected ${status}): ${res.text.slice(0, 300)}`);
  return res;
}

export async function configureTenant(app: { url: string }, tenant: string): Promise<void> {
  await expectStatus(call(`${app.url}/private/configure`, { headers: { 'x-tenant-identifier': tenant }, body: configureBody() }), 200, `configure ${tenant}`);
}

/** Pays like a storefront through the sandbox API: confirm with the payment's clientSecret and a test card. */
export async function pay(sandboxUrl: string, transactionId: string): Promise<void> {
  const id = encodeURIComponent(transactionId);
  const p = await expectStatus(call(`${sandboxUrl}/v1/payments/${id}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } }), 200, 'sandbox payment');
  await expectStatus(
    call(`${sandboxUrl}/v1/payments/${id}/confirm`, {
      body: { clientSecret: p.body.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: new Date().getUTCFullYear() + 3, cvc: '123' } },
    }),
    200,
    'sandbox confirm',
  );
}

/** Runs fn over items with at most `concurrency` at once. */
export async function inParallel<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The floor of the HTTP lines: a bare Fastify route (no hooks, no validation, no app logic) doing one insert-and-update
 * transaction through the same Db port, the best any endpoint that writes can do on this database.
 */
/**
 * The floor of the HTTP lines: a bare Fastify route (no hooks, no validation, no app logic) doing one transaction
 * through the same Db port. `three-insert` (the default) is the floor issue 12 defines: one transaction of three inserts
 * (a record, its history row and an outbox row, as a new payment writes); `insert-update` is the floor used before
 * (one insert and an update of the same row), measured as a second reference.
 */
export type FloorShape = 'three-insert' | 'insert-update';
export async function startFloor(db: Db, shape: FloorShape = 'three-insert'): Promise<{ url: string; close(): Promise<void> }> {
  await db.query('CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, tenant text NOT NULL, payload jsonb NOT NULL, n integer NOT NULL DEFAULT 0, updated_at timestamptz)');
  await db.query('CREATE TABLE IF NOT EXISTS bench_floor_history (id bigserial PRIMARY KEY, record_id bigint NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  await db.query('CREATE TABLE IF NOT EXISTS bench_floor_outbox (id bigserial PRIMARY KEY, tenant text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  const app = Fastify({ logger: false });
  app.post('/floor', async (req) => {
    const body = req.body as { tenant?: string };
    const tenant = body.tenant ?? 'x';
    const payload = JSON.stringify(body);
    return db.tx(async (tx) => {
      const r = await tx.query<{ id: number }>('INSERT INTO bench_floor (tenant, payload) VALUES ($1, $2) RETURNING id', [tenant, payload]);
      const id = r.rows[0]!.id;
      if (shape === 'insert-update') {
        await tx.query('UPDATE bench_floor SET n = n + 1, updated_at = now() WHERE id = $1', [id]);
      } else {
        await tx.query('INSERT INTO bench_floor_history (record_id, status) VALUES ($1, $2)', [id, 'new']);
        await tx.query('INSERT INTO bench_floor_outbox (tenant, payload) VALUES ($1, $2)', [tenant, payload]);
      }
      return { id };
    });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
}

/** Authorized payments with one item each, ready for CapturePayment. */
export async function authorizedOrders(app: BenchApp, tenant: string, n: number, timeoutMs = 60_000): Promise<Order[]> {
  const run = randomBytes(4).toString('hex');
  const orders = await inParallel(Array.from({ length: n }), 10, async (_, i) => {
    const orderReference = `CAP-${run}-${i}`;
    const r = await expectStatus(call(`${app.url}/private/initialize-payment`, { headers: { 'x-tenant-identifier': tenant }, body: initializeBody(orderReference) }), 200, 'initialize');
    await pay(app.sandboxUrl, r.body.transactionId as string);
    return { orderReference, items: [1], amount: INIT_AMOUNT };
  });
  await until(
    async () =>
      (await app.rt.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE tenant_identifier = $1 AND status = 'authorized'`, [tenant])).rows[0]!.n >= n,
    timeoutMs,
    `${n} authorized payments`,
  );
  return orders;
}

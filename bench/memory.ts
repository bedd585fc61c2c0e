/**
 * Start-up and memory of the built server (issue 12): start-to-ready on an existing database, idle RSS, peak RSS under
 * a burst, on PostgreSQL and on the embedded PGlite default, each as a ratio to a floor measured in the same run.
 *
 * App: `node dist/src/main.js` exactly as `npm start` runs it (after its build-stamp check), spawned fresh each time.
 * Floor: a bare `node` process (this file with `--floor`) that imports Fastify, connects to the same database (PostgreSQL:
 * a `pg` pool and one `SELECT 1`; PGlite: opens the same data dir with the app's start parameters and V8 flags) and answers `/ready`
 * with a `SELECT 1`: what any server on this database cannot go below.
 *
 * Per database: the app starts once on a fresh database (PostgreSQL: a temporary database that this first start
 * migrates; PGlite: an empty DATA_DIR, initdb + migrations), then STARTS restarts of the app and of the floor,
 * alternating, on the now existing database. Figures:
 * - start-to-ready: spawn until `GET /ready` answers 200 (the median of the restarts);
 * - idle RSS: VmRSS after ready + SETTLE_MS (median of the restarts);
 * - peak RSS: VmHWM of the last restart after a burst of BURST requests at BURST_CONCURRENCY (app: initialize-payment,
 *   configure, and GETs of /ready, /metrics, /app/manifest, /openapi.json in turn; floor: GET /ready).
 * RSS is printed in MB (10^6 bytes, the unit of the targets).
 *
 * Run: `npm run build && node dist/bench/memory.js` (or as part of `npm run bench`).
 * Env: BENCH_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres; skipped when unreachable),
 * BENCH_STARTS (5), BENCH_BURST (2000), BENCH_BURST_CONCURRENCY (50), BENCH_SETTLE_MS (2000), BENCH_APP_ENV (settings for the
 * app, `NAME=value,...`; experiments).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchAppEnv } from './app-env.js';

const thisFile = fileURLToPath(import.meta.url);
const mainJs = join(dirname(thisFile), '..', 'src', 'main.js');

const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const BURST = Number(process.env.BENCH_BURST ?? 2000);
const BURST_CONCURRENCY = Number(process.env.BENCH_BURST_CONCURRENCY ?? 50);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 2000);
/** The PGlite start parameters of src/store/db.ts openDb and the V8 flags src/main.ts sets for the embedded database: the floor opens the data dir the same way. */
const PGLITE_START_PARAMS = ['-c', 'shared_buffers=16MB'];
const PGLITE_V8_FLAGS = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'];

const TARGETS = {
  PostgreSQL: { readyMs: 1000, idleMB: 100 },
  PGlite: { readyMs: 2000, idleMB: 250 },
} as const;
type Label = keyof typeof TARGETS;

// ---------------------------------------------------------------------------------------------------------------- floor

/** `node dist/bench/memory.js --floor`: the bare server (env FLOOR_DATABASE_URL or FLOOR_DATA_DIR). */
async function floorServer(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  let ping: () => Promise<unknown>;
  let close: () => Promise<unknown>;
  if (process.env.FLOOR_DATABASE_URL) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: process.env.FLOOR_DATABASE_URL, max: 10 });
    await pool.query('SELECT 1');
    ping = () => pool.query('SELECT 1');
    close = () => pool.end();
  } else {
    const { setFlagsFromString } = await import('node:v8');
    for (const flag of PGLITE_V8_FLAGS) setFlagsFromString(flag);
    const { PGlite } = await import('@electric-sql/pglite');
    const lite = await PGlite.create(join(process.env.FLOOR_DATA_DIR!, 'pgdata'), { startParams: [...PGlite.defaultStartParams, ...PGLITE_START_PARAMS] });
    await lite.query('SELECT 1');
    ping = () => lite.query('SELECT 1');
    close = () => lite.close();
  }
  const app = Fastify({ logger: false });
  app.get('/ready', async () => {
    await ping();
    return { status: 'ready' };
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`floor listening on ${address}\n`);
  process.on('SIGTERM', () => {
    void app
      .close()
      .then(close)
      .finally(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------------------- processes

interface Started {
  child: ChildProcess;
  url: string;
  readyMs: number;
}

function status(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: BURST_CONCURRENCY });

/** One request on the keep-alive agent; resolves with the status (0 when the connection failed). */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown; fresh?: boolean } = {}): Promise<number> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolveStatus) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: opts.fresh ? false : agent,
        headers: { ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}), ...opts.headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolveStatus(res.statusCode ?? 0));
        res.on('error', () => resolveStatus(0));
      },
    );
    req.on('error', () => resolveStatus(0));
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Spawns a server, waits for its "listening on" line, then polls /ready until 200; readyMs counts from the spawn. */
async function startServer(args: string[], env: Record<string, string>, cwd: string): Promise<Started> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((ok, fail) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        ok(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => fail(new Error(`${args.join(' ')} exited with ${code}: ${(out + err).slice(-500)}`)));
  });
  const deadline = t0 + 60_000;
  for (;;) {
    if ((await request(`${url}/ready`, { fresh: true })) === 200) break;
    if (performance.now() > deadline) throw new Error(`${url}/ready did not answer 200 within 60 s`);
    await sleep(2);
  }
  return { child, url, readyMs: performance.now() - t0 };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((ok) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      ok();
    });
    child.kill('SIGTERM');
  });
}

/** Runs `n` requests from `concurrency` loops; returns how many answered 2xx. */
async function burst(n: number, concurrency: number, next: (i: number) => Promise<number>): Promise<number> {
  let i = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < n) {
        const s = await next(i++);
        if (s >= 200 && s < 300) ok++;
      }
    }),
  );
  return ok;
}

function configureBody(): unknown {
  return {
    data: {
      type: 'configuration',
      attributes: { configuration: JSON.stringify({ secretKey: 'sk_sandbox_startup0001', webhookSecret: 'whsec_0123456789abcdef', isLive: false }) },
    },
  };
}

/** The app's burst: initialize-payment, configure, and cheap GETs in turn (the sandbox connector in-process). */
async function appBurst(url: string): Promise<number> {
  const run = randomBytes(4).toString('hex');
  const tenant = (i: number): string => `startup-tenant-${i % 20}`;
  for (let t = 0; t < 20; t++) await request(`${url}/private/configure`, { method: 'POST', headers: { 'x-tenant-identifier': tenant(t) }, body: configureBody() });
  const gets = ['/ready', '/metrics', '/app/manifest', '/openapi.json'];
  return burst(BURST, BURST_CONCURRENCY, (i) => {
    switch (i % 3) {
      case 0:
        return request(`${url}/private/initialize-payment`, {
          method: 'POST',
          headers: { 'x-tenant-identifier': tenant(i) },
          body: {
            orderData: {
              orderReference: `STARTUP-${run}-${i}`,
              grandTotal: 12345,
              currencyCode: 'EUR',
              paymentMethod: 'credit-card',
              items: [{ idSalesOrderItem: 1, name: 'Shirt', sku: 'S-1', quantity: 1, unitPrice: 12345 }],
            },
            redirectSuccessUrl: 'https://shop.example/en/payment/order-success',
            redirectCancelUrl: 'https://shop.example/en/payment/order-cancel',
            checkoutSummaryPageUrl: 'https://shop.example/en/checkout/summary',
          },
        });
      case 1:
        return request(`${url}/private/configure`, { method: 'POST', headers: { 'x-tenant-identifier': tenant(i) }, body: configureBody() });
      default:
        return request(url + gets[Math.floor(i / 3) % gets.length]);
    }
  });
}

// ------------------------------------------------------------------------------------------------------------ measure

interface Figures {
  readyMs: number[];
  idle: number[];
  peak: number;
  /** 2xx answers of the burst. */
  burstOk: number;
}

interface Side {
  args: string[];
  env: Record<string, string>;
  burst(url: string): Promise<number>;
}

async function measureOnce(side: Side, cwd: string, figures: Figures, withBurst: boolean): Promise<void> {
  const s = await startServer(side.args, side.env, cwd);
  try {
    figures.readyMs.push(s.readyMs);
    await sleep(SETTLE_MS);
    figures.idle.push(status(s.child.pid!).rss);
    if (withBurst) {
      figures.burstOk = await side.burst(s.url);
      figures.peak = status(s.child.pid!).hwm;
    }
  } finally {
    await stopServer(s.child);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
const ms = (x: number): string => `${x.toFixed(0)} ms`;
const range = (xs: number[], f: (x: number) => string): string => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

function row(cells: string[]): string {
  const widths = [11, 30, 10, 10, 7, 18, 26];
  return cells.map((c, i) => c.padEnd(widths[i] ?? 10)).join(' ').trimEnd();
}

interface Database {
  label: Label;
  /** Creates the database, returns the app's and the floor's env and a drop. */
  create(): Promise<{ appEnv: Record<string, string>; floorEnv: Record<string, string>; drop(): Promise<void> }>;
}

async function measureDatabase(database: Database, out: (line: string) => void): Promise<void> {
  const cwd = mkdtempSync(join(tmpdir(), 'oap-startup-cwd-'));
  const db = await database.create();
  try {
    const app: Side = { args: [mainJs], env: { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...db.appEnv, ...benchAppEnv() }, burst: appBurst };
    const floor: Side = {
      args: [thisFile, '--floor'],
      env: db.floorEnv,
      burst: (url) => burst(BURST, BURST_CONCURRENCY, () => request(`${url}/ready`)),
    };
    // First start on the fresh database (migrations; PGlite: initdb too): reported, not part of the ratios.
    const first: Figures = { readyMs: [], idle: [], peak: NaN, burstOk: 0 };
    await measureOnce(app, cwd, first, false);
    const a: Figures = { readyMs: [], idle: [], peak: NaN, burstOk: 0 };
    const f: Figures = { readyMs: [], idle: [], peak: NaN, burstOk: 0 };
    for (let i = 0; i < STARTS; i++) {
      const last = i === STARTS - 1;
      await measureOnce(floor, cwd, f, last);
      await measureOnce(app, cwd, a, last);
    }
    const t = TARGETS[database.label];
    const verdict = (v: number, max: number, f: (x: number) => string): string => `≤ ${f(max)}: ${v <= max ? 'met' : 'NOT met'}`;
    const readyA = median(a.readyMs);
    const readyF = median(f.readyMs);
    const idleA = median(a.idle);
    const idleF = median(f.idle);
    const L = database.label;
    out(row([L, 'start-to-ready (median)', ms(readyA), ms(readyF), (readyA / readyF).toFixed(2), verdict(readyA, t.readyMs, ms), `app ${range(a.readyMs, ms)}`]));
    out(row([L, 'idle RSS (median)', mb(idleA), mb(idleF), (idleA / idleF).toFixed(2), verdict(idleA / 1e6, t.idleMB, (x) => `${x.toFixed(0)} MB`), `app ${range(a.idle, mb)}`]));
    out(row([L, `peak RSS (${BURST} req, c=${BURST_CONCURRENCY})`, mb(a.peak), mb(f.peak), (a.peak / f.peak).toFixed(2), '', `2xx: app ${a.burstOk}, floor ${f.burstOk}`]));
    out(row([L, 'first start (fresh database)', ms(first.readyMs[0]!), '', '', '', `idle RSS ${mb(first.idle[0]!)}`]));
  } finally {
    await db.drop();
    rmSync(cwd, { recursive: true, force: true });
  }
}

const pglite: Database = {
  label: 'PGlite',
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'oap-startup-'));
    return { appEnv: { DATA_DIR: dir }, floorEnv: { FLOOR_DATA_DIR: dir }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

const postgres: Database = {
  label: 'PostgreSQL',
  async create() {
    const { createTempDatabase } = await import('./postgres.js'); // not at the top: the floor process must not load pg
    const db = await createTempDatabase('oap_startup');
    return {
      appEnv: { DATABASE_URL: db.url, ENCRYPTION_KEYS: `startup:${randomBytes(32).toString('base64')}` },
      floorEnv: { FLOOR_DATABASE_URL: db.url },
      drop: db.drop,
    };
  },
};

/** Start-to-ready, idle and peak RSS of `dist/src/main.js` on PostgreSQL and PGlite, each against the bare floor. */
export async function runStartupBench(out: (line: string) => void): Promise<void> {
  out(`Start-up and memory of dist/src/main.js (${STARTS} restarts on an existing database, alternating with the floor; RSS in MB = 10^6 bytes; node ${process.version})`);
  out(row(['database', 'figure', 'app', 'floor', 'ratio', 'target', 'detail']));
  const databases: Database[] = [];
  const { POSTGRES_ADMIN_URL, postgresReachable } = await import('./postgres.js');
  if (await postgresReachable()) databases.push(postgres);
  else out(`(PostgreSQL at ${POSTGRES_ADMIN_URL.replace(/\/\/[^@]*@/, '//')} not reachable: skipped)`);
  databases.push(pglite);
  try {
    for (const database of databases) {
      try {
        await measureDatabase(database, out);
      } catch (err) {
        out(row([database.label, 'failed', (err as Error).message.split('\n')[0]!]));
      }
    }
  } finally {
    agent.destroy();
  }
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === thisFile;
if (invokedDirectly && process.argv[2] === '--floor') {
  floorServer().catch((err: unknown) => {
    process.stderr.write(`floor failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else if (invokedDirectly) {
  runStartupBench((line) => process.stdout.write(`${line}\n`)).catch((err: unknown) => {
    process.stderr.write(`startup bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

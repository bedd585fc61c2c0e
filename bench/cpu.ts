/**
 * `node dist/bench/cpu.js`: CPU time per request, split by process, on PostgreSQL: this process (the app with its
 * in-process sandbox PSP), the PostgreSQL backends (summed from /proc) and the load generator. Throughput on a shared
 * 2-core VM moves by 25 % from run to run; CPU per request moves far less and says where the time goes (how the
 * README's "Benchmark" figures on prepared statements and statement counts were measured).
 *
 * Lines: the floor (the same bare Fastify three-insert transaction as `npm run bench`; `floor-iu`: the insert+update
 * floor used before), initialize-payment (`init`; `init-psp`: with the sandbox PSP in its own process, whose CPU is
 * shown apart), and the command path (CapturePayment published → PaymentCaptured received, c=50). Env: CPU_LINES
 * (floor,init,capture; also floor-iu, init-psp, webhook), CPU_DURATION_MS (5000), CPU_CAPTURES (400), CPU_CONCURRENCY (50),
 * CPU_WORKERS (1; 0: the init-psp app without its workers, so without the relay's share), CPU_TRACE (1: the app's statements
 * per request by text, for the lines that print statements), CPU_SQL (experiments: SQL run on
 * the `init` line's database after its migrations, e.g. dropping an index to see what it costs). Linux only (reads /proc);
 * PostgreSQL at BENCH_POSTGRES_URL. The machine's speed drifts by up to a third between runs: compare lines against
 * the load generator's CPU per request of the same run (its work per request is fixed). Per request: the CPU of
 * warm-up and run over every request sent (warm-up included); the load generator's CPU for the job only (it reports
 * it; its start-up is not counted).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { openDb, type Db } from '../src/store/db.js';
import { authorizedOrders, configureTenant, WEBHOOK_SECRET, postgres, postgresReachable, runLoad, startApp, startFloor, until, withPspProcess, type FloorShape } from './harness.js';
import { INIT_AMOUNT, type Summary } from './load.js';

const TICK_MS = 10; // USER_HZ 100
const env = (name: string, def: number): number => (process.env[name] ? Number(process.env[name]) : def);
const DURATION_MS = env('CPU_DURATION_MS', 5000);
const CAPTURES = env('CPU_CAPTURES', 400);
const CONCURRENCY = env('CPU_CONCURRENCY', 50);
const LINES = (process.env.CPU_LINES ?? 'floor,init,capture').split(',').map((s) => s.trim());
const TRACE = process.env.CPU_TRACE === '1';

/** User + system CPU (ms) of every process whose command line matches. */
function cpuOf(match: (cmdline: string) => boolean): number {
  let ms = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ms += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      /* the process ended meanwhile */
    }
  }
  return ms;
}
const postgresCpu = (): number => cpuOf((c) => c.startsWith('postgres'));
const loadCpu = (): number => cpuOf((c) => c.includes('load.js'));
const pspCpu = (): number => cpuOf((c) => c.includes('sandbox/main.js'));

/**
 * `db`: the app's database handle, whose statements and exchanges (its workers' included) are printed per request too:
 * under load, grouped statements (`src/store/coalesce.ts`) make them fewer than the one-at-a-time counts of `npm run bench`.
 */
async function measure(name: string, requests: (s: Summary) => number, run: () => Promise<Summary>, db?: Db): Promise<void> {
  const stats0 = db ? { ...db.stats } : undefined;
  if (db && TRACE) db.stats.trace = [];
  const pg0 = postgresCpu();
  const me0 = process.cpuUsage();
  let load = 0;
  const psp0 = pspCpu();
  const sampler = setInterval(() => (load = Math.max(load, loadCpu())), 100); // the load process is gone once it answered
  const s = await run();
  clearInterval(sampler);
  const me = process.cpuUsage(me0);
  const pgMs = postgresCpu() - pg0;
  const pspMs = pspCpu() - psp0; // a sandbox PSP process (init-psp line), else 0
  // The CPU of warm-up and run together, so per request of both (`sent`: every request, warm-up included); the load
  // process reports its own CPU for the job (its start-up excluded), else the sampled total of its process.
  const n = s.sent ?? requests(s);
  if (s.cpuMs !== undefined) load = s.cpuMs;
  const per = (ms: number): string => (ms / n).toFixed(2).padStart(6);
  if (db?.stats.trace) {
    // CPU_TRACE=1: which statements, per request (the text's first 90 characters)
    const byText = new Map<string, number>();
    for (const q of db.stats.trace) {
      const k = q.replace(/\s+/g, ' ').trim().slice(0, 90);
      byText.set(k, (byText.get(k) ?? 0) + 1);
    }
    delete db.stats.trace;
    for (const [k, c] of [...byText].sort((a, b) => b[1] - a[1])) console.log(`  ${(c / n).toFixed(2).padStart(6)}  ${k}`);
  }
  const sql = db && stats0 ? `  statements ${((db.stats.statements - stats0.statements) / n).toFixed(2)}, exchanges ${((db.stats.exchanges - stats0.exchanges) / n).toFixed(2)} per request` : '';
  console.log(
    `${name.padEnd(12)} ${String(n).padStart(6)} ${s.throughput.toFixed(0).padStart(6)}/s  p50 ${s.p50?.toFixed(1).padStart(5)} p99 ${s.p99.toFixed(1).padStart(5)} ms   CPU ms per request: app ${per((me.user + me.system) / 1000)} (system ${per(me.system / 1000)})  PostgreSQL ${per(pgMs)}  load ${per(load)}${pspMs > 0 ? `  PSP process ${per(pspMs)}` : ''}${sql}`,
  );
}

async function floor(shape: FloorShape): Promise<void> {
  const fresh = await postgres.fresh();
  const db = await openDb(fresh.config);
  try {
    const floor = await startFloor(db, shape);
    await measure(shape === 'three-insert' ? 'floor' : 'floor-iu', (s) => s.requests, () => runLoad({ type: 'http', baseUrl: floor.url, concurrency: CONCURRENCY, warmupMs: 1000, durationMs: DURATION_MS, scenario: { kind: 'floor' } }));
    await floor.close();
  } finally {
    await db.close();
    await fresh.drop();
  }
}

async function initialize(): Promise<void> {
  const app = await startApp(postgres);
  try {
    if (process.env.CPU_SQL) await app.rt.deps.db.query(process.env.CPU_SQL);
    await configureTenant(app, 'cpu-init');
    await measure(
      'initialize',
      (s) => s.requests,
      () => runLoad({ type: 'http', baseUrl: app.url, concurrency: CONCURRENCY, warmupMs: 1000, durationMs: DURATION_MS, scenario: { kind: 'initialize', tenant: 'cpu-init', run: randomBytes(4).toString('hex') } }),
      app.rt.deps.db,
    );
  } finally {
    await app.close();
  }
}

/** initialize-payment with the sandbox PSP in its own process: the PSP's share of the CPU shows separately. */
async function initializeOwnPsp(): Promise<void> {
  await withPspProcess(postgres, { startWorkers: process.env.CPU_WORKERS !== '0' }, async (app) => {
    await configureTenant(app, 'cpu-init-psp');
    await measure(
      'init-psp',
      (s) => s.requests,
      () => runLoad({ type: 'http', baseUrl: app.url, concurrency: CONCURRENCY, warmupMs: 1000, durationMs: DURATION_MS, scenario: { kind: 'initialize', tenant: 'cpu-init-psp', run: randomBytes(4).toString('hex') } }),
      app.rt.deps.db,
    );
  });
}

/**
 * Webhook receive-to-ack (`webhook`): payments created first (not measured), then signed `payment.authorized` events
 * for them at c=50; the CPU of the ack window (processing that runs meanwhile included), then separately the CPU of
 * processing what was acknowledged but not yet processed (the drain), per event.
 */
async function webhook(): Promise<void> {
  const app = await startApp(postgres);
  try {
    const tenant = 'cpu-webhook';
    await configureTenant(app, tenant);
    const init = await runLoad({ type: 'http', baseUrl: app.url, concurrency: CONCURRENCY, warmupMs: 1000, durationMs: DURATION_MS, scenario: { kind: 'initialize', tenant, run: randomBytes(4).toString('hex') }, collect: 'transactionId' });
    const db = app.rt.deps.db;
    const unprocessed = async (): Promise<number> =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_inbox WHERE state IN ('received', 'retrying', 'waiting_for_payment')`)).rows[0]!.n;
    await until(async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state = 'pending'`)).rows[0]!.n === 0, 60_000, 'outbox drained');
    let sent = 0;
    await measure(
      'webhook',
      (s) => s.requests,
      async () => {
        const s = await runLoad({ type: 'http', baseUrl: app.url, concurrency: CONCURRENCY, warmupMs: 1000, durationMs: DURATION_MS, scenario: { kind: 'webhook', tenant, secret: WEBHOOK_SECRET, amount: INIT_AMOUNT, transactionIds: init.collected ?? [] } });
        sent = s.sent ?? s.requests;
        return s;
      },
      db,
    );
    const left = await unprocessed();
    const t0 = Date.now();
    await measure('wh-drain', () => Math.max(1, sent), async () => {
      await until(async () => (await unprocessed()) === 0, 600_000, 'the webhook inbox to be processed');
      return { throughput: left / ((Date.now() - t0) / 1000), p99: Date.now() - t0, sent: Math.max(1, sent) } as Summary;
    });
    console.log(`             ${left} of ${sent} events left at the last ack, processed in ${Date.now() - t0} ms`);
  } finally {
    await app.close();
  }
}

async function capture(): Promise<void> {
  const app = await startApp(postgres);
  try {
    const tenant = 'cpu-cmd';
    await configureTenant(app, tenant);
    const orders = await authorizedOrders(app, tenant, CAPTURES, 120_000);
    const db = app.rt.deps.db;
    await until(async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state = 'pending'`)).rows[0]!.n === 0, 60_000, 'outbox drained');
    // every command counts (warm-up 0): the CPU is measured over the whole run
    await measure(
      'capture',
      () => CAPTURES,
      () => runLoad({ type: 'roundtrip', baseUrl: app.url, concurrency: 50, warmup: 0, pollMs: 5, timeoutMs: 30_000, kind: 'capture', tenant, orders, count: orders.length }),
      db,
    );
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  if (!(await postgresReachable())) {
    console.log('PostgreSQL not reachable: nothing measured');
    return;
  }
  console.log(`CPU per request on PostgreSQL, c=50 (app = this process incl. the in-process sandbox PSP); node ${process.version}`);
  if (LINES.includes('floor')) await floor('three-insert');
  if (LINES.includes('floor-iu')) await floor('insert-update');
  if (LINES.includes('init')) await initialize();
  if (LINES.includes('init-psp')) await initializeOwnPsp();
  if (LINES.includes('webhook')) await webhook();
  if (LINES.includes('capture')) await capture();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

/**
 * `npm run bench`: the hot paths of issue 12 against a floor measured in the same run, on PGlite and on PostgreSQL,
 * then the SQL statements / transactions / exchanges of each hot path.
 *
 * Floor: a bare Fastify route doing one transaction of three inserts through the same Db port (no hooks, no
 * validation, no app logic), the floor issue 12 defines: the best any endpoint that writes can do on this database.
 * Measured right before each initialize line (a shared VM's speed drifts within minutes); the insert+update floor of
 * the earlier rounds is printed as a reference.
 * Lines (the full server, `startRuntime`, in this process; a fresh database per server):
 * - initialize-payment, sandbox PSP in-process (default) and in its own process (SANDBOX_PSP_URL, its own database);
 * - webhook receive-to-ack: signed sandbox `payment.authorized` events (distinct event ids) for the payments the
 *   initialize line created, each first event a state change;
 * - the command path: `CapturePayment` published on the local Event Platform for an authorized payment → until a
 *   consumer polling `GET /event-platform/payment-events` receives `PaymentCaptured`. Its floor is the same
 *   publish → receive round trip of a plain message on the local hub (one insert, no processing), same poller.
 * Load: a separate process (load.ts) with CONCURRENCY keep-alive clients; every figure is also given as a ratio to
 * its floor (throughput: line / floor, higher is better; p99: line / floor, lower is better).
 *
 * Rounds: every database's lines run BENCH_ROUNDS times (3; databases alternate), each line against the floor of its own
 * round; a table of medians follows and the targets are judged on the medians (a shared VM's speed moves by a third
 * within minutes, so one round decides nothing).
 * Env: BENCH_ROUNDS (3), BENCH_CONCURRENCY (50), BENCH_DURATION_MS (5000), BENCH_WARMUP_MS (1000), BENCH_COMMANDS (200 measured, after
 * BENCH_COMMAND_WARMUP 50), BENCH_COMMAND_CONCURRENCY (= BENCH_CONCURRENCY), BENCH_SERIAL_COMMANDS (30 more at c=1; 0: none), BENCH_POLL_MS (5), BENCH_DATABASES
 * (pglite,postgres), BENCH_COUNTS (1), BENCH_STARTUP (1: bench/memory.ts), BENCH_RELAY (1: bench/relay.ts), BENCH_RELAY_RUNS
 * (= BENCH_ROUNDS: the relay line's runs, judged on the medians), BENCH_CONSOLE (1: console
 * payments list at 1,000,000 payments, issue 11),
 * BENCH_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres; skipped when unreachable),
 * BENCH_APP_LOG_LEVEL (silent: the app's log level), BENCH_APP_ENV (settings for the apps, `NAME=value,...`, e.g.
 * `WEBHOOK_INLINE_CONCURRENCY=0`; experiments only), BENCH_PSP_NODE_ARGS (Node flags for the sandbox PSP process,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/psp`), BENCH_PLANS (1: after each database's lines, the app's named statements
 * planned most often on one of its connections, from `pg_prepared_statements`: a statement planned on every run is
 * re-planned work, README "Benchmark").
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { openDb } from '../src/store/db.js';
import { runConsolePaymentsBench } from './console-payments.js';
import { runStartupBench } from './memory.js';
import { runRelayBench, type RelayResult } from './relay.js';
import { HOT_PATHS, measureCounts, type Count } from './counts.js';
import {
  authorizedOrders,
  configureTenant,
  pglite,
  postgres,
  postgresReachable,
  POSTGRES_ADMIN_URL,
  runLoad,
  startApp,
  startFloor,
  type FloorShape,
  until,
  WEBHOOK_SECRET,
  withPspProcess,
  type BenchApp,
  type BenchDatabase,
} from './harness.js';
import { INIT_AMOUNT, type Order, type Summary } from './load.js';

export { configureBody, type BenchDatabase } from './harness.js';

const env = (name: string, def: number): number => (process.env[name] === undefined || process.env[name] === '' ? def : Number(process.env[name]));
const CONCURRENCY = env('BENCH_CONCURRENCY', 50);
const DURATION_MS = env('BENCH_DURATION_MS', 5000);
const WARMUP_MS = env('BENCH_WARMUP_MS', 1000);
const COMMANDS = env('BENCH_COMMANDS', 200);
const COMMAND_WARMUP = env('BENCH_COMMAND_WARMUP', 50);
const COMMAND_CONCURRENCY = env('BENCH_COMMAND_CONCURRENCY', CONCURRENCY);
const POLL_MS = env('BENCH_POLL_MS', 5);
const SERIAL_COMMANDS = env('BENCH_SERIAL_COMMANDS', 30);
/** Every database's lines this many times (alternating databases); figures and targets are the medians over rounds. */
const ROUNDS = Math.max(1, Math.floor(env('BENCH_ROUNDS', 3)));

export type Out = (line: string) => void;

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const WIDTHS = [44, 11, 8, 8, 8, 7, 7];
export function row(cells: string[]): string {
  return cells.map((c, i) => (i < WIDTHS.length ? c.padEnd(WIDTHS[i]!) : c)).join(' ').trimEnd();
}
const statusesOf = (s: Summary): string => Object.entries(s.statuses).map(([k, n]) => `${k}×${n}`).join(' ');

interface Line {
  name: string;
  database: string;
  s: Summary;
  /** The floor it is compared with; null for a floor line itself. */
  floor: Summary | null;
  /** e.g. the concurrency of a line measured at several. */
  tag: string;
}
/** Every measured line of every round, for the medians and the summary of the targets. */
const lines: Line[] = [];

function printLine(out: Out, name: string, database: string, s: Summary, floor: Summary | null, note = '', tag = ''): void {
  lines.push({ name, database, s, floor, tag });
  const ratio = floor ? fmt(s.throughput / floor.throughput, 2) : '1.00';
  const p99x = floor ? `${fmt(s.p99 / floor.p99, 1)}×` : '1.0×';
  const notes = [statusesOf(s), note, s.note ? `(${s.note.split('\n')[0]!.slice(0, 120)})` : ''].filter(Boolean).join('; ');
  out(row([name, database, fmt(s.throughput, 0), fmt(s.p50, 2), fmt(s.p99, 2), ratio, p99x, notes]));
}

/**
 * The app's named statements with the most custom plans on the connection that answers (PGlite has one; on PostgreSQL
 * one of the pool's): PostgreSQL plans a statement with its parameters for five runs, then keeps a generic plan only if
 * estimated no dearer, so a statement with far more custom plans than five is planned again on every run.
 */
async function printPlans(out: Out, app: BenchApp, database: string): Promise<void> {
  const r = await app.rt.deps.db.query<{ generic_plans: number | string; custom_plans: number | string; statement: string }>(
    `SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'), 100) AS statement
     FROM pg_prepared_statements ORDER BY custom_plans DESC, generic_plans DESC LIMIT 12`,
  );
  out(`\nprepared statements of the app (${database}, one connection): custom / generic plans, statement`);
  for (const x of r.rows) out(`  ${String(x.custom_plans).padStart(7)} / ${String(x.generic_plans).padEnd(7)} ${x.statement}`);
}

function printFailed(out: Out, name: string, database: string, err: unknown): void {
  out(row([name, database, 'failed', '', '', '', '', (err as Error).message.split('\n')[0]!.slice(0, 200)]));
}

/** The floor on a fresh database of the given kind (see startFloor for the shapes). */
async function floorLine(database: BenchDatabase, shape: FloorShape = 'three-insert'): Promise<Summary> {
  const fresh = await database.fresh();
  try {
    const db = await openDb(fresh.config);
    try {
      const floor = await startFloor(db, shape);
      try {
        return await runLoad({ type: 'http', baseUrl: floor.url, concurrency: CONCURRENCY, warmupMs: WARMUP_MS, durationMs: DURATION_MS, scenario: { kind: 'floor' } });
      } finally {
        await floor.close();
      }
    } finally {
      await db.close();
    }
  } finally {
    await fresh.drop();
  }
}

const initializeJob = (app: BenchApp, tenant: string) =>
  runLoad({
    type: 'http',
    baseUrl: app.url,
    concurrency: CONCURRENCY,
    warmupMs: WARMUP_MS,
    durationMs: DURATION_MS,
    scenario: { kind: 'initialize', tenant, run: randomBytes(4).toString('hex') },
    collect: 'transactionId',
  });

/** The hub floor and the capture line at one concurrency (`orders`: authorized, the first `warmup` not measured). */
async function commandLines(out: Out, app: BenchApp, label: string, tenant: string, orders: Order[], concurrency: number, warmup: number): Promise<void> {
  const common = { type: 'roundtrip', baseUrl: app.url, concurrency, warmup, pollMs: POLL_MS, timeoutMs: 30_000 } as const;
  const hub = await runLoad({ ...common, kind: 'hub', tenant: 'bench-hub', orders: [], count: orders.length });
  printLine(out, `floor: publish → receive on the local hub`, label, hub, null, `c=${concurrency}, poll ${POLL_MS} ms`, `c=${concurrency}`);
  const cap = await runLoad({ ...common, kind: 'capture', tenant, orders, count: orders.length });
  printLine(out, `CapturePayment → PaymentCaptured (local)`, label, cap, hub, `c=${concurrency}, ${orders.length - warmup} commands; vs hub floor`, `c=${concurrency}`);
}

/** The lines of one database. */
async function runDatabase(out: Out, database: BenchDatabase): Promise<void> {
  const label = database.label;
  // The floor issue 12 defines (three inserts in one transaction), right before the initialize line; the insert+update
  // floor of the earlier rounds as a reference. The speed of a shared VM drifts within minutes, so the line with the
  // PSP in its own process gets a floor measured right before it too.
  const floorIu = await floorLine(database, 'insert-update');
  printLine(out, 'floor (insert+update tx, used before)', label, floorIu, null);
  const floor = await floorLine(database);
  printLine(out, 'floor (three-insert tx, bare Fastify)', label, floor, null);

  // One app (in-process sandbox): initialize, then webhooks for the payments it created, then the command path.
  const app = await startApp(database);
  try {
    const tenant = 'bench-init';
    await configureTenant(app, tenant);
    let created: string[] = [];
    try {
      const init = await initializeJob(app, tenant);
      created = init.collected ?? [];
      printLine(out, 'initialize-payment, sandbox in-process', label, init, floor);
    } catch (err) {
      printFailed(out, 'initialize-payment, sandbox in-process', label, err);
    }

    try {
      if (created.length === 0) throw new Error('no payments from the initialize line');
      const wh = await runLoad({
        type: 'http',
        baseUrl: app.url,
        concurrency: CONCURRENCY,
        warmupMs: WARMUP_MS,
        durationMs: DURATION_MS,
        scenario: { kind: 'webhook', tenant, secret: WEBHOOK_SECRET, amount: INIT_AMOUNT, transactionIds: created },
      });
      const sent = wh.sent ?? 0;
      // Acknowledged is not processed: beyond WEBHOOK_INLINE_CONCURRENCY the worker processes the inbox after the
      // answers. The next line starts once it is empty; how long that took is part of this line's figures.
      const drainStart = Date.now();
      const unprocessed = async (): Promise<number> =>
        Number((await app.rt.deps.db.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_inbox WHERE state IN ('received', 'retrying', 'waiting_for_payment')`)).rows[0]!.n);
      await until(async () => (await unprocessed()) === 0, 600_000, 'the webhook inbox to be processed').catch(() => undefined);
      const drainMs = Date.now() - drainStart;
      const left = await unprocessed();
      const processedPerS = sent / ((WARMUP_MS + DURATION_MS + drainMs) / 1000);
      const note =
        (sent > created.length ? `${created.length} first authorizations + ${sent - created.length} repeats (warm-up incl.)` : `each of ${sent} events a first authorization`) +
        `; all processed ${(drainMs / 1000).toFixed(1)} s after the last ack (${processedPerS.toFixed(0)} events/s over warm-up + run + drain${left > 0 ? `; ${left} NOT processed` : ''})`;
      printLine(out, 'webhook receive-to-ack', label, wh, floor, note);
    } catch (err) {
      printFailed(out, 'webhook receive-to-ack', label, err);
    }

    try {
      const cmdTenant = 'bench-cmd';
      await configureTenant(app, cmdTenant);
      const orders = await authorizedOrders(app, cmdTenant, COMMANDS + COMMAND_WARMUP + (SERIAL_COMMANDS > 0 ? SERIAL_COMMANDS + 5 : 0));
      await commandLines(out, app, label, cmdTenant, orders.slice(0, COMMANDS + COMMAND_WARMUP), COMMAND_CONCURRENCY, COMMAND_WARMUP);
      // one at a time: the path's own latency, without the queue that c=50 builds in front of the command processor
      if (SERIAL_COMMANDS > 0) await commandLines(out, app, label, cmdTenant, orders.slice(COMMANDS + COMMAND_WARMUP), 1, 5);
    } catch (err) {
      printFailed(out, 'CapturePayment → PaymentCaptured (local)', label, err);
    }
  } finally {
    if (process.env.BENCH_PLANS === '1') await printPlans(out, app, label).catch((err: unknown) => printFailed(out, 'prepared statements', label, err));
    await app.close();
  }

  // The sandbox PSP in its own process (its own fresh database of the same kind): the PSP's work leaves this process.
  const floor2 = await floorLine(database);
  printLine(out, 'floor (three-insert tx), again', label, floor2, null);
  try {
    const init = await withPspProcess(database, {}, async (app2) => {
      await configureTenant(app2, 'bench-init');
      return initializeJob(app2, 'bench-init');
    });
    printLine(out, 'initialize-payment, SANDBOX_PSP_URL process', label, init, floor2);
  } catch (err) {
    printFailed(out, 'initialize-payment, SANDBOX_PSP_URL process', label, err);
  }
}

const pad = (s: string, n: number): string => s.padEnd(n);
const countCell = (c: Count | undefined): string => (c ? `${c.statements} / ${c.transactions} / ${c.exchanges}` : '-');

async function runCounts(out: Out, database: BenchDatabase): Promise<void> {
  const r = await measureCounts(database);
  out(`\nSQL statements / transactions / exchanges per operation (${r.database}; second of two rounds, workers stopped; statements`);
  out('without BEGIN/COMMIT; exchanges: waits for the database, one per statement (BEGIN travels with the first) and per COMMIT)');
  out(`${pad('hot path', 40)} ${pad('app only*', 14)} ${pad('app + in-process sandbox', 26)} notes`);
  for (const p of HOT_PATHS) {
    const a = r.appOnly.get(p);
    const b = r.withSandbox.get(p);
    out(`${pad(p, 40)} ${pad(countCell(a), 14)} ${pad(countCell(b), 26)} ${a?.note ?? ''}`.trimEnd());
  }
  out('* sandbox PSP in its own process (SANDBOX_PSP_URL, own database): only the app\'s statements are counted');
}

interface Target {
  name: string;
  value: string;
  met: boolean | null;
}

/** The relay's result (bench/relay.ts), when it ran. */
let relay: RelayResult | null = null;

const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/**
 * The relay line `runs` times (BENCH_RELAY_RUNS, default BENCH_ROUNDS), each against its own amqplib floors, judged
 * like every other line on the medians: of the rates, and of each run's ratio to its own floor.
 */
async function relayRuns(out: (line: string) => void, runs: number): Promise<RelayResult | null> {
  const results: RelayResult[] = [];
  for (let i = 1; i <= runs; i++) {
    if (runs > 1) out(`\nrelay run ${i} of ${runs}`);
    const r = await runRelayBench(out).catch((err: unknown) => (out(`relay bench failed: ${(err as Error).stack ?? String(err)}`), null));
    if (r) results.push(r);
  }
  if (results.length === 0) return null;
  if (results.length === 1) return results[0]!;
  const rate = median(results.map((r) => r.rate));
  const ratio = median(results.map((r) => r.rate / r.floor));
  out(
    `\nrelay, median of ${results.length} runs: ${Math.round(rate).toLocaleString('en-US')} msg/s (${results.map((r) => Math.round(r.rate).toLocaleString('en-US')).join(' / ')}), ` +
      `ratio ${ratio.toFixed(2)} of its own floor (${results.map((r) => (r.rate / r.floor).toFixed(2)).join(' / ')})`,
  );
  return { rate, floor: rate / ratio };
}

/** One line over every round: medians of its figures and of its ratios to the floor measured with it in each round. */
interface Aggregate {
  name: string;
  database: string;
  tag: string;
  rounds: Line[];
  throughput: number;
  p50: number;
  p99: number;
  ratio: number;
  p99x: number;
  /** Every round answered and none had errors. */
  clean: boolean;
}

function aggregates(): Aggregate[] {
  const groups = new Map<string, Line[]>();
  for (const l of lines) {
    const key = `${l.database}\u0000${l.name}\u0000${l.tag}`;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  return [...groups.values()].map((rounds) => ({
    name: rounds[0]!.name,
    database: rounds[0]!.database,
    tag: rounds[0]!.tag,
    rounds,
    throughput: median(rounds.map((l) => l.s.throughput)),
    p50: median(rounds.map((l) => l.s.p50)),
    p99: median(rounds.map((l) => l.s.p99)),
    ratio: rounds[0]!.floor ? median(rounds.map((l) => l.s.throughput / l.floor!.throughput)) : 1,
    p99x: rounds[0]!.floor ? median(rounds.map((l) => l.s.p99 / l.floor!.p99)) : 1,
    clean: rounds.every((l) => l.s.requests > 0 && l.s.errors === 0),
  }));
}

function printMedians(out: Out): void {
  out(`\nMedians of ${ROUNDS} rounds (each ratio is taken against the floor measured in the same round, then the median)`);
  out(row(['line', 'database', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'p99×', 'p99 ms of each round']));
  for (const a of aggregates()) {
    out(row([a.tag ? `${a.name} ${a.tag}` : a.name, a.database, fmt(a.throughput, 0), fmt(a.p50, 2), fmt(a.p99, 2), fmt(a.ratio, 2), `${fmt(a.p99x, 1)}×`, a.rounds.map((l) => fmt(l.s.p99, 1)).join(' / ')]));
  }
}

function targets(): Target[] {
  const t: Target[] = [];
  if (relay) {
    t.push({ name: 'relay to RabbitMQ ≥ 5,000 messages/s', value: `${relay.rate.toFixed(0)} msg/s`, met: relay.rate >= 5000 });
    t.push({ name: 'relay to RabbitMQ ≥ 0.5 of raw amqplib with confirms', value: (relay.rate / relay.floor).toFixed(2), met: relay.rate / relay.floor >= 0.5 });
  }
  const all = aggregates();
  const find = (name: string, db: string): Aggregate | undefined => all.find((a) => a.name === name && a.database === db);
  for (const [name, label] of [
    ['initialize-payment, sandbox in-process', 'in-process PSP'],
    ['initialize-payment, SANDBOX_PSP_URL process', 'PSP in own process'],
  ] as const) {
    const a = find(name, 'PostgreSQL');
    t.push({ name: `initialize on PostgreSQL (${label}): throughput ≥ 0.5 of floor`, value: fmt(a?.ratio ?? NaN, 2), met: a ? a.clean && a.ratio >= 0.5 : null });
    t.push({ name: `initialize on PostgreSQL (${label}): p99 ≤ 3× floor p99`, value: `${fmt(a?.p99x ?? NaN, 1)}×`, met: a ? a.clean && a.p99x <= 3 : null });
  }
  for (const db of ['PostgreSQL', 'PGlite']) {
    const w = find('webhook receive-to-ack', db);
    if (w) t.push({ name: `webhook receive-to-ack p99 < 50 ms (${db}, c=${CONCURRENCY})`, value: `${fmt(w.p99, 1)} ms`, met: w.clean && w.p99 < 50 });
    for (const c of all.filter((a) => a.name === 'CapturePayment → PaymentCaptured (local)' && a.database === db)) {
      t.push({ name: `capture command → PaymentCaptured p99 < 500 ms (${db}, ${c.tag})`, value: `${fmt(c.p99, 1)} ms`, met: c.clean && c.p99 < 500 });
    }
  }
  return t;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const out: Out = (line) => process.stdout.write(`${line}\n`);
  out(
    `Open ACP Pay bench: c=${CONCURRENCY} from a separate load process, ${WARMUP_MS} ms warm-up + ${DURATION_MS} ms measured per line, ` +
      `${COMMANDS} commands at c=${COMMAND_CONCURRENCY}; node ${process.version}`,
  );
  out(`machine: ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at start (other work on the machine skews every line)`);
  out('ratio = throughput / floor throughput (higher is better); p99× = p99 / floor p99 (lower is better)\n');
  out(row(['line', 'database', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'p99×', 'notes']));

  const wanted = (process.env.BENCH_DATABASES ?? 'pglite,postgres').split(',').map((s) => s.trim().toLowerCase());
  const databases: BenchDatabase[] = [];
  if (wanted.includes('pglite')) databases.push(pglite);
  if (wanted.includes('postgres')) {
    if (await postgresReachable()) databases.push(postgres);
    else out(`(PostgreSQL at ${POSTGRES_ADMIN_URL.replace(/\/\/[^@]*@/, '//')} not reachable: skipped)`);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) out(`round ${round} of ${ROUNDS}`);
    for (const database of databases) await runDatabase(out, database);
  }
  if (ROUNDS > 1) printMedians(out);

  // relay → RabbitMQ messages/s against raw amqplib with confirms (bench/relay.ts)
  // start-to-ready on an existing database, idle and peak RSS, PostgreSQL and embedded (bench/memory.ts)
  if (env('BENCH_STARTUP', 1) !== 0) await runStartupBench(out).catch((err: unknown) => out(`startup bench failed: ${(err as Error).stack ?? String(err)}`));
  if (env('BENCH_RELAY', 1) !== 0) relay = await relayRuns(out, Math.max(1, Math.floor(env('BENCH_RELAY_RUNS', ROUNDS))));

  if (env('BENCH_COUNTS', 1) !== 0) {
    const countsDb = databases.includes(postgres) ? postgres : databases[0];
    if (countsDb) await runCounts(out, countsDb).catch((err: unknown) => out(`statement counts failed: ${(err as Error).stack ?? String(err)}`));
  }

  out(`\nTargets (issue 12)${ROUNDS > 1 ? `: medians of ${ROUNDS} rounds` : ''}`);
  for (const t of targets()) out(`  ${pad(t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met', 12)} ${pad(t.name, 72)} ${t.value}`);

  if (env('BENCH_CONSOLE', 1) !== 0 && databases.includes(postgres)) {
    // console payments list at 1,000,000 payments (issue 11)
    await runConsolePaymentsBench(out).catch((err: unknown) => out(`console payments bench failed: ${(err as Error).message}`));
  }
  out(`\ndone in ${((Date.now() - t0) / 1000).toFixed(1)} s (load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

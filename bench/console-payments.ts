/**
 * Console payments list at scale (issue 11): 1,000,000 payments in a temporary PostgreSQL database, then
 * `GET /console/payments` (open on loopback: no login configured) with the filters operators use, sequentially,
 * N requests each; prints p50 / p95 / max per query and overall. Goal: p95 under 100 ms.
 *
 * Run by `npm run bench` after the throughput table (PostgreSQL only), or alone: `node dist/bench/console-payments.js`.
 * Env: BENCH_CONSOLE_PAYMENTS (1000000), BENCH_CONSOLE_REQUESTS (40 per query), BENCH_POSTGRES_URL.
 */
import { createHash, randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { createTempDatabase } from './postgres.js';
import { createLogger, startRuntime } from '../src/runtime.js';

const ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PAYMENTS = Number(process.env.BENCH_CONSOLE_PAYMENTS ?? 1_000_000);
const REQUESTS = Number(process.env.BENCH_CONSOLE_REQUESTS ?? 40);

const SEED = `INSERT INTO payments (id, tenant_identifier, transaction_id, order_reference, status, amount, currency, payment_method, connector, order_data, created_at, updated_at)
SELECT 'pay-' || i, 'shop-' || (i % 20), 'sbx_pay_' || md5(i::text), 'DE--' || i,
       (ARRAY['new','authorized','authorization_failed','capture_requested','partially_captured','captured','capture_failed','canceled','cancellation_failed'])[1 + (i % 9)],
       1000 + (i % 50000), 'EUR', 'credit-card', 'sandbox', '{}'::jsonb,
       now() - make_interval(secs => i * 2.5), now()
FROM generate_series($1::int, $2::int) AS i`;
/** Seeded in chunks: one 1,000,000-row insert outlasted the server's 55 s statement timeout on a slow machine. */
const SEED_CHUNK = 100_000;

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function runConsolePaymentsBench(out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const tmp = await createTempDatabase('oap_bench_console', ADMIN_URL);
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: tmp.url, ENCRYPTION_KEYS: `b:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'silent' });
  const rt = await startRuntime(config, { log: createLogger(config), startWorkers: false });
  try {
    const t0 = Date.now();
    for (let from = 1; from <= PAYMENTS; from += SEED_CHUNK) await rt.deps.db.query(SEED, [from, Math.min(PAYMENTS, from + SEED_CHUNK - 1)]);
    await rt.deps.db.query('ANALYZE payments');
    out(`\nConsole payments list: ${PAYMENTS.toLocaleString('en')} payments seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s (PostgreSQL), ${REQUESTS} sequential requests per query`);
    const first = await (await fetch(`${rt.listenUrl}/console/payments`)).text();
    const after = /href="\/console\/payments\?after=([^"]+)"/.exec(first)?.[1];
    const mid = Math.floor(PAYMENTS / 2);
    const queries: Array<[string, string]> = [
      ['newest first', ''],
      ['next page (keyset)', after ? `after=${after}` : ''],
      ['by order reference', `q=DE--${mid}`],
      ['by transaction id', `q=sbx_pay_${md5(String(mid))}`],
      ['tenant', 'tenant=shop-7'],
      ['status', 'status=capture_failed'],
      ['tenant + status', 'tenant=shop-3&status=captured'],
      ['date range (1 day)', `from=${day(-10)}&to=${day(-10)}`],
      ['tenant + date range', `tenant=shop-11&from=${day(-20)}&to=${day(-5)}`],
    ];
    const all: number[] = [];
    for (const [label, qs] of queries) {
      const times: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const s = performance.now();
        const res = await fetch(`${rt.listenUrl}/console/payments${qs ? `?${qs}` : ''}`);
        await res.text();
        if (res.status !== 200) throw new Error(`${label}: HTTP ${res.status}`);
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      all.push(...times);
      out(`  ${label.padEnd(24)} p50 ${pct(times, 50).toFixed(1).padStart(6)} ms   p95 ${pct(times, 95).toFixed(1).padStart(6)} ms   max ${times[times.length - 1]!.toFixed(1).padStart(6)} ms`);
    }
    all.sort((a, b) => a - b);
    out(`  ${'all queries'.padEnd(24)} p50 ${pct(all, 50).toFixed(1).padStart(6)} ms   p95 ${pct(all, 95).toFixed(1).padStart(6)} ms   (goal: p95 < 100 ms)`);
  } finally {
    await rt.close();
    await tmp.drop();
  }
}

function day(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

/** The seed's transaction ids are 'sbx_pay_' || md5(i::text). */
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

function invokedDirectly(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  runConsolePaymentsBench().catch((err: unknown) => {
    process.stderr.write(`console bench failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

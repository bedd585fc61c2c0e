/**
 * `node dist/bench/message-clock.js`: transactions of ONE tenant that each write one outgoing message (the outbox
 * statement every payment change runs), CLOCK_CONCURRENCY (50) at a time for CLOCK_DURATION_MS (5000) on PostgreSQL
 * (BENCH_POSTGRES_URL), through the app's own pool. What it shows: whether the message clock (messages.md 2.3) makes
 * one shop's writes wait for each other's commits. CLOCK_RUNS (3) runs, each on a fresh database.
 */
import { enqueue } from '../src/messaging/outbox.js';
import { migrate, openDb } from '../src/store/db.js';
import { postgres, postgresReachable } from './harness.js';

const env = (name: string, def: number): number => (process.env[name] ? Number(process.env[name]) : def);
const CONCURRENCY = env('CLOCK_CONCURRENCY', 50);
const DURATION_MS = env('CLOCK_DURATION_MS', 5000);
const RUNS = env('CLOCK_RUNS', 3);

async function run(): Promise<void> {
  const fresh = await postgres.fresh();
  const db = await openDb(fresh.config);
  try {
    await migrate(db);
    const latencies: number[] = [];
    let next = 0;
    const end = Date.now() + DURATION_MS;
    const client = async (): Promise<void> => {
      while (Date.now() < end) {
        const i = next++;
        const t = performance.now();
        await db.tx((tx) =>
          enqueue(tx, 'bench', [{ tenantIdentifier: 'one-shop', channel: 'payment-events', name: 'PaymentUpdated', eventKey: `e${i}`, orderingKey: `payment/${i}`, payload: { i } }]),
        );
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    latencies.sort((a, b) => a - b);
    const at = (q: number): string => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]!.toFixed(1);
    console.log(`one tenant's message writes, c=${CONCURRENCY}: ${((latencies.length * 1000) / DURATION_MS).toFixed(0)} transactions/s, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`);
  } finally {
    await db.close();
    await fresh.drop();
  }
}

if (!(await postgresReachable())) console.log('PostgreSQL not reachable: nothing measured');
else for (let i = 0; i < RUNS; i++) await run();

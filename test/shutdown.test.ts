/**
 * SIGTERM under a backlog (issue 10 item 6): right after a load of 50 concurrent initialize-payments, the process
 * stops taking work, finishes or abandons its in-flight batches, releases its leases (so another instance picks the
 * rows up at once) and exits 0 before the forced exit (which would exit 1 with "shutdown did not finish").
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../src/store/db.js';
import { configureTenant } from './helpers/commands.js';
import { ensureBuild, freePort, startAppProcess, type AppProcess } from './helpers/process.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();
const KEY = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
const T = 'shutdown-tenant';
const LOAD_MS = 10_000;
const CONCURRENCY = 50;

describe.skipIf(!pgOk)('SIGTERM under a backlog', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let proc: AppProcess | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'oap-shutdown-'));

  beforeAll(async () => {
    await ensureBuild();
    temp = await createTempDatabase();
  }, 240_000);
  afterAll(async () => {
    if (proc?.alive()) proc.child.kill('SIGKILL');
    await temp?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('exits 0 within the shutdown budget after 50 concurrent initialize-payments, leaving no leased rows behind', async () => {
    const port = await freePort();
    proc = await startAppProcess(port, { ...(process.env.SHUTDOWN_PG ? { DATABASE_URL: temp.url } : { DATA_DIR: dataDir }), ENCRYPTION_KEYS: KEY, SANDBOX_REFUND_SETTLE_MS: '50' });
    const app = { url: proc.url };
    await configureTenant(app, T);
    let sent = 0;
    let ok = 0;
    const end = Date.now() + LOAD_MS;
    const worker = async (): Promise<void> => {
      while (Date.now() < end) {
        const ref = `DE--${randomBytes(5).toString('hex')}`;
        sent++;
        const r = await fetch(`${proc!.url}/private/initialize-payment`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-tenant-identifier': T },
          body: JSON.stringify({
            orderData: { orderReference: ref, grandTotal: 1000, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [{ idSalesOrderItem: 1, name: 'I', sku: 'S', quantity: 1, unitPrice: 1000 }] },
            redirectSuccessUrl: 'https://shop.example/ok',
            redirectCancelUrl: 'https://shop.example/cancel',
          }),
        }).catch(() => null);
        if (r?.status === 200) ok++;
        await r?.text().catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    const ms = Date.now() - t0;
    process.stdout.write(`[shutdown] initialize sent=${sent} ok=${ok} stop_ms=${ms} exit=${exit.code}\n`);
    expect(ok).toBeGreaterThan(0);
    expect(proc.output()).not.toMatch(/did not finish/);
    expect(exit).toEqual({ code: 0, signal: null });

    // nothing stays leased by the stopped process: another instance would pick every row up at once
    const db = await openDb(process.env.SHUTDOWN_PG ? { kind: 'postgres', url: temp.url } : { kind: 'pglite', dataDir });
    try {
      const leased = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state = 'pending' AND lease_until > now()`);
      expect(leased.rows[0]!.n).toBe(0);
    } finally {
      await db.close();
    }
  }, 180_000);
});

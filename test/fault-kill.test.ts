/**
 * Fault suite: SIGKILL under load on PostgreSQL. The app (a real `node main.js` process, the sandbox PSP in it, its
 * rows in the same database) is killed three times while payments go through their whole life and restarted at
 * once; afterwards every payment's outcome events were delivered exactly once and the PSP captured and refunded each
 * payment exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureFaultTenant, exactlyOnce, FaultClient, hubEvents, loadWhileKilling, paymentLife, printFigures, publishViaEventPlatform, Rows, runPayments } from './helpers/fault.js';
import { ensureBuild, freePort, startAppProcess, type AppProcess } from './helpers/process.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();
const KEY = `k1:${Buffer.alloc(32, 3).toString('base64')}`;
const T = 'fault-kill';
const KILLS = Number(process.env.FAULT_KILLS ?? 3);
const PAYMENTS = 16;

describe.skipIf(!pgOk)('fault: SIGKILL under load', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let proc: AppProcess | undefined;
  let rows: Rows;

  beforeAll(async () => {
    await ensureBuild();
    temp = await createTempDatabase();
    rows = new Rows(temp.url);
  }, 240_000);
  afterAll(async () => {
    if (proc?.alive()) proc.child.kill('SIGKILL');
    await rows?.close();
    await temp?.drop();
  });

  it('loses and duplicates nothing: outcome events once each, one capture and one refund per payment at the PSP', async () => {
    const port = await freePort();
    const env = { DATABASE_URL: temp.url, ENCRYPTION_KEYS: KEY, SANDBOX_REFUND_SETTLE_MS: '50' };
    proc = await startAppProcess(port, env);
    const client = new FaultClient(() => [`http://127.0.0.1:${port}`]);
    await configureFaultTenant(client, T);

    const { runs, kills, recoveryMs } = await loadWhileKilling(
      KILLS,
      async () => {
        proc!.child.kill('SIGKILL');
        await proc!.exited;
        proc = await startAppProcess(port, env);
        await client.call('/ready'); // retried until it answers below 500
      },
      (keepGoing) => runPayments(PAYMENTS, 4, (run) => paymentLife(client, rows, T, publishViaEventPlatform(client), run), keepGoing),
    );
    const { lost, duplicated } = await exactlyOnce(rows, rows, T, runs, hubEvents(rows, T));
    printFigures('sigkill', { kills, payments: runs.length, lost, duplicated, fiveXX: client.fiveXX, recoveryMs });
    expect(kills).toBeGreaterThan(0);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
  }, 150_000);
});

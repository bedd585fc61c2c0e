/**
 * Fault suite: two app processes on one PostgreSQL database behind a round-robin balancer (requests and the sandbox
 * PSP's webhooks alike), one of them SIGKILLed and restarted repeatedly under load. The outbox relays, command and
 * webhook workers of both share the work (advisory locks, FOR UPDATE SKIP LOCKED, leases): nothing is lost, nothing
 * is done twice, and both instances did work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureFaultTenant, exactlyOnce, FaultClient, hubEvents, loadWhileKilling, paymentLife, printFigures, publishViaEventPlatform, Rows, runPayments } from './helpers/fault.js';
import { ensureBuild, freePort, startAppProcess, type AppProcess } from './helpers/process.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';
import { RoundRobinProxy } from './helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();
const KEY = `k1:${Buffer.alloc(32, 4).toString('base64')}`;
const T = 'fault-two';
const KILLS = 3;
const PAYMENTS = 16;

describe.skipIf(!pgOk)('fault: two instances, one killed repeatedly', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let rows: Rows;
  const procs: Array<AppProcess | undefined> = [undefined, undefined];
  let balancer: RoundRobinProxy;

  beforeAll(async () => {
    await ensureBuild();
    temp = await createTempDatabase();
    rows = new Rows(temp.url);
  }, 240_000);
  afterAll(async () => {
    for (const p of procs) if (p?.alive()) p.child.kill('SIGKILL');
    await balancer?.close();
    await rows?.close();
    await temp?.drop();
  });

  it('share the work with no duplicate and lose nothing', async () => {
    const ports = [await freePort(), await freePort()];
    balancer = new RoundRobinProxy(() => ports);
    await balancer.start();
    const env = { DATABASE_URL: temp.url, ENCRYPTION_KEYS: KEY, SANDBOX_REFUND_SETTLE_MS: '50', APP_BASE_URL: balancer.url };
    procs[0] = await startAppProcess(ports[0]!, env);
    procs[1] = await startAppProcess(ports[1]!, env);
    const client = new FaultClient(() => [balancer.url]);
    await configureFaultTenant(client, T);

    const { runs, kills, recoveryMs } = await loadWhileKilling(
      KILLS,
      async () => {
        procs[1]!.child.kill('SIGKILL');
        await procs[1]!.exited;
        procs[1] = await startAppProcess(ports[1]!, env);
      },
      (keepGoing) => runPayments(PAYMENTS, 4, (run) => paymentLife(client, rows, T, publishViaEventPlatform(client), run), keepGoing),
    );
    const { lost, duplicated } = await exactlyOnce(rows, rows, T, runs, hubEvents(rows, T));
    printFigures('two-instances', { kills, payments: runs.length, lost, duplicated, fiveXX: client.fiveXX, recoveryMs });
    expect(procs[0]!.alive()).toBe(true); // the survivor never went down
    expect(kills).toBeGreaterThan(0);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
  }, 150_000);
});
